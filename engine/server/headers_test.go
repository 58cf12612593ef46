package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
)

// The shared header values (hvJSON, …) are assigned to every response; whatever a later
// writer does to a response's header through http.Header must leave them as they are.
func TestSharedHeaderValuesStayConstant(t *testing.T) {
	for _, tc := range []struct {
		key  string
		v    []string
		want string
	}{
		{"Content-Type", hvJSON, "application/json"},
		{"Content-Type", hvEventStream, "text/event-stream; charset=utf-8"},
		{"Cache-Control", hvNoCache, "no-cache"},
		{"Connection", hvKeepAlive, "keep-alive"},
		{"X-Accel-Buffering", hvNo, "no"},
		{"Content-Length", contentLength(0), "0"},
		{"Content-Length", contentLength(466), "466"},
		{"Content-Length", contentLength(len(sharedLengths) - 1), strconv.Itoa(len(sharedLengths) - 1)},
	} {
		if len(tc.v) != 1 || cap(tc.v) != 1 || tc.v[0] != tc.want {
			t.Fatalf("%s = %q (cap %d), want one value %q", tc.key, tc.v, cap(tc.v), tc.want)
		}
		h := http.Header{}
		h[tc.key] = tc.v
		h.Add(tc.key, "other")
		h.Set(tc.key, "replaced")
		c := h.Clone()
		c[tc.key][0] = "cloned"
		h.Del(tc.key)
		if len(tc.v) != 1 || tc.v[0] != tc.want {
			t.Errorf("%s changed to %q", tc.key, tc.v)
		}
	}
}

// An answer's pooled buffer goes back to the pool in the pool's own slice header, and a
// request that ends without a stream error pays nothing for telling the two apart: each
// allocated once per request before.
func TestAnswerPlumbingAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(200, func() {
		held := answerBuffers.Get().(*[]byte)
		b := append((*held)[:0], `{"id":"x"}`...)
		releaseJSON(held, b)
	}); n != 0 {
		t.Errorf("releasing an answer buffer: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(200, func() {
		if streamEnded(nil) != nil {
			t.Fatal("streamEnded found a stream end in no error")
		}
	}); n != 0 {
		t.Errorf("streamEnded(nil): %v allocations, want 0", n)
	}
	if streamEnded(errNoBody) != nil || streamEnded(fmt.Errorf("w: %w", &streamEnd{api: &APIError{}})) == nil {
		t.Error("streamEnded does not tell a stream end from another error")
	}
}

var errNoBody = errors.New("no body")

// Every shared Content-Length value is its index in decimal, and lengths past the table
// are formatted as before.
func TestContentLengthValues(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 99, 100, 2048, len(sharedLengths) - 1, len(sharedLengths), 1 << 20} {
		if v := contentLength(n); len(v) != 1 || v[0] != strconv.Itoa(n) {
			t.Errorf("contentLength(%d) = %q", n, v)
		}
	}
	for i, v := range sharedLengths {
		if v != strconv.Itoa(i) {
			t.Fatalf("sharedLengths[%d] = %q", i, v)
		}
	}
}
