// Package reqtest holds the chat request bodies real clients send (testdata/requests)
// and the helpers to read them, for the tests of every package a request passes through
// (engine/server decodes and validates them, engine/pipeline turns them into features).
package reqtest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/auth"
)

// Bodies returns the request bodies under testdata/requests, keyed by file name.
func Bodies(tb testing.TB) map[string][]byte {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("reqtest: cannot locate its own testdata")
	}
	paths, err := filepath.Glob(filepath.Join(filepath.Dir(file), "testdata", "requests", "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(paths) == 0 {
		tb.Fatal("no request bodies in reqtest/testdata/requests")
	}
	out := make(map[string][]byte, len(paths))
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(p)] = raw
	}
	return out
}

// Chat decodes body as a chat request the way the server does (adapters.DecodeChatRequest),
// failing the test when it does not decode.
func Chat(tb testing.TB, body string) *adapters.ChatRequest {
	tb.Helper()
	req := &adapters.ChatRequest{}
	if err := adapters.DecodeChatRequest([]byte(body), req); err != nil {
		tb.Fatalf("unmarshal %s: %v", body, err)
	}
	return req
}

// Anonymous is the caller of an open-mode gateway (no keys, loopback).
func Anonymous(tb testing.TB) *auth.Caller {
	tb.Helper()
	c, err := auth.New(nil, true).Authenticate("")
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
