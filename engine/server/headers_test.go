package server

import (
	"net/http"
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
