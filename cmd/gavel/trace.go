package main

import (
	"bufio"
	"os"
	"runtime/trace"
)

// startTrace is a debugging aid for latency work (GAVEL_TRACE=PATH): it records a runtime
// execution trace of the whole serving lifetime to PATH, for `go tool trace PATH`. A CPU
// profile says where time goes on average; the trace says what ran on the P while one slow
// request waited (a GC mark phase, a ticker's goroutine, the decision-log writer), which is
// what the tail at one connection is made of. It costs a few percent of CPU and about a
// megabyte per thousand requests; it returns the function that stops and flushes it.
func startTrace(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := trace.Start(w); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		trace.Stop()
		err := w.Flush()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}, nil
}
