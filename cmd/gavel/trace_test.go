package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// GAVEL_TRACE writes a whole runtime trace (`go tool trace` reads it) once stopped.
func TestStartTrace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.trace")
	stop, err := startTrace(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := startTrace(filepath.Join(t.TempDir(), "second")); err == nil {
		t.Error("a second trace started while one runs")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("go 1.")) || len(b) < 100 {
		t.Fatalf("trace file: %d bytes, starts %q", len(b), b[:min(len(b), 16)])
	}
	if _, err := startTrace(filepath.Join(t.TempDir(), "no", "such", "dir")); err == nil {
		t.Error("no error for an unwritable path")
	}
}
