package decisionlog

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// DefaultFileMaxBackups is how many rotated files are kept when rotation is on.
const DefaultFileMaxBackups = 3

// syncEvery bounds how much a crash can lose: the file is fsynced at most this often, never
// per line (an fsync costs milliseconds).
const syncEvery = time.Second

// FileConfig configures the file sink.
type FileConfig struct {
	Path string
	// MaxBytes rotates the file before it would grow past this size (path → path.1 →
	// path.2 …); 0 never rotates.
	MaxBytes int64
	// MaxBackups is how many rotated files are kept; default DefaultFileMaxBackups.
	MaxBackups int
}

// File appends events to a file as JSON lines.
type File struct {
	cfg      FileConfig
	obs      Observer
	mu       sync.Mutex
	f        *os.File
	w        *bufio.Writer
	size     int64
	lastSync time.Time
	err      error // a failed rotation: events are dropped until the next one succeeds
}

var (
	_ Sink    = (*File)(nil)
	_ Flusher = (*File)(nil)
	_ Closer  = (*File)(nil)
)

// NewFile opens (creating it and its directories) the file for appending.
func NewFile(cfg FileConfig, obs Observer) (*File, error) {
	if cfg.MaxBackups <= 0 {
		cfg.MaxBackups = DefaultFileMaxBackups
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o750); err != nil {
		return nil, fmt.Errorf("decision log file: %w", err)
	}
	s := &File{cfg: cfg, obs: observerOrNop(obs), lastSync: time.Now()}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *File) open() error {
	f, err := os.OpenFile(s.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("decision log file: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("decision log file: %w", err)
	}
	s.f, s.size = f, info.Size()
	if s.w == nil {
		s.w = bufio.NewWriterSize(f, 64<<10)
	} else {
		s.w.Reset(f)
	}
	return nil
}

// Name implements Sink.
func (s *File) Name() string { return "file" }

// Write implements Sink.
func (s *File) Write(line []byte) {
	s.mu.Lock()
	err := s.write(line)
	s.mu.Unlock()
	count(s.obs, "file", err)
}

func (s *File) write(line []byte) error {
	if s.err != nil {
		// The last rotation could not reopen the file: try again, without shifting backups.
		if s.err = s.open(); s.err != nil {
			return s.err
		}
	}
	if s.cfg.MaxBytes > 0 && s.size > 0 && s.size+int64(len(line)) > s.cfg.MaxBytes {
		if s.err = s.rotate(); s.err != nil {
			return s.err
		}
	}
	n, err := s.w.Write(line)
	s.size += int64(n)
	return err
}

// rotate closes the current file and shifts it to path.1 (older ones up by one, the
// oldest beyond MaxBackups removed), then starts a new file.
func (s *File) rotate() error {
	if s.f != nil {
		s.w.Flush()
		s.f.Sync()
		s.f.Close()
		s.f = nil
	}
	for i := s.cfg.MaxBackups - 1; i >= 1; i-- {
		os.Rename(s.backup(i), s.backup(i+1))
	}
	if err := os.Rename(s.cfg.Path, s.backup(1)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("decision log rotate: %w", err)
	}
	return s.open()
}

func (s *File) backup(i int) string { return s.cfg.Path + "." + strconv.Itoa(i) }

// Flush implements Flusher: the buffer goes to the OS now, to the disk at most once per
// syncEvery.
func (s *File) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return
	}
	s.w.Flush()
	if time.Since(s.lastSync) >= syncEvery {
		s.f.Sync()
		s.lastSync = time.Now()
	}
}

// Close implements Closer.
func (s *File) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return s.err
	}
	err := s.w.Flush()
	if serr := s.f.Sync(); err == nil {
		err = serr
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.f = nil
	return err
}
