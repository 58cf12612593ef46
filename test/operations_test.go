package test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/engine/policy"
)

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// bundleServer serves one unsigned bundle at /bundle.tar.gz on loopback.
func bundleServer(t *testing.T, revision string) string {
	t.Helper()
	b, err := policy.Build(context.Background(), []string{bundle(t, revision, twoProviders(nil))}, "")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := policy.WriteBundle(&buf, b); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(buf.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/bundle.tar.gz"
}

// The counters alerts take increase() of exist at 0 from startup: a counter born at its
// first event would hide a short burst that then recovers.
func TestAlertCountersStartAtZero(t *testing.T) {
	dir := t.TempDir()
	yaml := fmt.Sprintf(`ledger: {store: redis, redis: {addr: %s}}
decision_log: {file: %s}
bundle: {url: %s, persist_dir: %s, polling: {min_delay: 1h, max_delay: 2h}}
`, closedAddr(t), filepath.Join(dir, "decisions.log"), bundleServer(t, "zero-1"), filepath.Join(dir, "bundles"))
	g := start(t, yaml, nil)
	metrics := g.text(t, "/metrics")
	want := []string{
		`gavel_ledger_unavailable_total{op="reserve"} 0`,
		`gavel_ledger_unavailable_total{op="commit"} 0`,
		`gavel_ledger_unavailable_total{op="snapshot"} 0`,
		`gavel_decision_log_dropped_total{sink="buffer"} 0`,
		`gavel_decision_log_dropped_total{sink="file"} 0`,
		`gavel_decision_log_events_total{outcome="error",sink="file"} 0`,
		`gavel_bundle_download_errors_total{reason="verify"} 0`,
		`gavel_bundle_download_errors_total{reason="network"} 0`,
		`gavel_bundle_download_errors_total{reason="http"} 0`,
		`gavel_bundle_download_errors_total{reason="compile"} 0`,
		`gavel_bundle_activations_total{outcome="error"} 0`,
		`gavel_bundle_activations_total{outcome="ok"} 1`, // the first download
	}
	for _, w := range want {
		if !strings.Contains(metrics, w+"\n") {
			name, _, _ := strings.Cut(w, "{")
			t.Errorf("missing %s; have:\n%s", w, grepLines(metrics, name))
		}
	}
}
