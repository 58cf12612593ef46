package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
)

// heapProfileOnSignal is a debugging aid for memory work (GAVEL_HEAPPROFILE=PREFIX): each
// SIGUSR1 collects garbage and writes the live heap (inuse_space) to PREFIX.N.pb.gz, N from
// 1. Profiles taken early and late in a long run, compared with `go tool pprof -base`, show
// what a growing heap holds. It returns the function that stops listening.
func heapProfileOnSignal(log *slog.Logger, prefix string) (stop func()) {
	// One sample per 64 KiB allocated rather than 512: a per-request retention of a few
	// hundred bytes shows in a diff of two profiles after thousands of requests, not
	// only after millions.
	runtime.MemProfileRate = heapProfileRate
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	done := make(chan struct{})
	go func() {
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			case <-sig:
			}
			path := fmt.Sprintf("%s.%d.pb.gz", prefix, n)
			if err := writeHeapProfile(path); err != nil {
				log.Error("heap profile", "path", path, "err", err)
				continue
			}
			log.Info("heap profile written", "path", path)
		}
	}()
	return func() { signal.Stop(sig); close(done) }
}

// writeHeapProfile collects garbage first, so the profile holds live objects only. It
// writes beside path and renames, so whoever waits for path (the drills' soak, which then
// reads the collected heap from /metrics) sees a whole profile or none.
func writeHeapProfile(path string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	// Twice: the first collection only moves sync.Pool contents (a pooled gzip writer
	// is most of a megabyte) to the pools' victim caches; the second frees them.
	runtime.GC()
	runtime.GC()
	err = pprof.Lookup("heap").WriteTo(f, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// heapProfileRate is runtime.MemProfileRate while GAVEL_HEAPPROFILE is set.
const heapProfileRate = 64 << 10
