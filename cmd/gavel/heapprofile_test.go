package main

import (
	"compress/gzip"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// SIGUSR1 writes numbered heap profiles, each whole (gzip'd pprof) when its name appears.
func TestHeapProfileOnSignal(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "heap")
	stop := heapProfileOnSignal(slog.New(slog.NewTextHandler(io.Discard, nil)), prefix)
	defer stop()
	for n := 1; n <= 2; n++ {
		path := prefix + "." + string(rune('0'+n)) + ".pb.gz"
		if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat(path); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s 10 s after SIGUSR1", path)
			}
			time.Sleep(10 * time.Millisecond)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if b, err := io.ReadAll(zr); err != nil || len(b) == 0 {
			t.Fatalf("%s: %d bytes, %v", path, len(b), err)
		}
		f.Close()
	}
}
