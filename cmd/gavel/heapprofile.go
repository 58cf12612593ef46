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

// writeHeapProfile collects garbage first, so the profile holds live objects only.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
