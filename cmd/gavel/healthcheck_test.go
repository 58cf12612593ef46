package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	var ready atomic.Bool // set by the test, read by the server's goroutine
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz":
			fmt.Fprint(w, `{"status":"ok"}`)
		case r.URL.Path == "/readyz" && ready.Load():
			fmt.Fprint(w, `{"status":"ready"}`)
		case r.URL.Path == "/readyz":
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"status":"not_ready","reasons":["no policy bundle is active"]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	wildcard := filepath.Join(dir, "wildcard.yaml") // gavel in a container listens on every interface
	os.WriteFile(wildcard, []byte("listen: 0.0.0.0:"+port+"\n"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("lisen: 127.0.0.1:1\n"), 0o644)
	dead := deadAddr(t)

	tests := []struct {
		name     string
		args     []string
		notReady bool
		code     int
		out, err string
	}{
		{"alive", []string{"--addr", addr}, false, 0, "/healthz ok", ""},
		{"ready", []string{"--addr", addr, "--path", "/readyz"}, false, 0, "/readyz ok", ""},
		{"not ready", []string{"--addr", addr, "--path", "/readyz"}, true, 1, "", "/readyz answered 503"},
		{"alive while not ready", []string{"--addr", addr}, true, 0, "/healthz ok", ""},
		{"listen address from the config, wildcard host", []string{"--config", wildcard}, false, 0, "/healthz ok", ""},
		{"nothing listening", []string{"--addr", dead}, false, 1, "", "connection refused"},
		{"config with an unknown field", []string{"--config", bad}, false, 1, "", "lisen"},
		{"another path", []string{"--addr", addr, "--path", "/metrics"}, false, 1, "", "--path must be"},
		{"address without a port", []string{"--addr", "127.0.0.1"}, false, 1, "", "missing port"},
		{"stray argument", []string{"--addr", addr, "now"}, false, 1, "", "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ready.Store(!tc.notReady)
			var out, errb bytes.Buffer
			code := run(append([]string{"healthcheck"}, tc.args...), &out, &errb)
			if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.err) {
				t.Fatalf("exit %d (want %d)\nstdout: %q (want %q)\nstderr: %q (want %q)", code, tc.code, out.String(), tc.out, errb.String(), tc.err)
			}
		})
	}
}

func TestDialable(t *testing.T) {
	tests := []struct{ listen, want string }{
		{"0.0.0.0:8080", "127.0.0.1:8080"},
		{":8080", "127.0.0.1:8080"},
		{"[::]:8080", "[::1]:8080"},
		{"127.0.0.1:9000", "127.0.0.1:9000"},
		{"10.0.0.7:8080", "10.0.0.7:8080"},
		{"gavel.internal:8080", "gavel.internal:8080"},
	}
	for _, tc := range tests {
		if got, err := dialable(tc.listen); err != nil || got != tc.want {
			t.Errorf("dialable(%q) = %q, %v; want %q", tc.listen, got, err, tc.want)
		}
	}
	if _, err := dialable("0.0.0.0:"); err == nil {
		t.Error("an address without a port was accepted")
	}
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
