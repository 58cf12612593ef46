package test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/test/bundletest"
	"github.com/gavel-gw/gavel/test/fakeupstream"
	"github.com/gavel-gw/gavel/test/internal/policybundle"
)

// countingBundleServer serves one tarball with an ETag (its digest), answers 304 to a
// matching If-None-Match, and counts requests and the bodies it actually sent.
type countingBundleServer struct {
	*httptest.Server
	mu             sync.Mutex
	body           []byte
	etag           string
	requests, sent int
}

func newCountingBundleServer(t *testing.T, body []byte) *countingBundleServer {
	s := &countingBundleServer{}
	s.set(body)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests++
		body, etag := s.body, s.etag
		notModified := r.Header.Get("If-None-Match") == etag
		if !notModified {
			s.sent++
		}
		s.mu.Unlock()
		if notModified {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Content-Type", "application/gzip")
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *countingBundleServer) set(body []byte) {
	s.mu.Lock()
	s.body, s.etag = body, fmt.Sprintf(`"%x"`, sha256.Sum256(body))
	s.mu.Unlock()
}

func (s *countingBundleServer) counts() (requests, sent int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.sent
}

// A gzip bomb on the bundle server: gavel stops reading at max_expanded_bytes, keeps
// deciding with the active revision, reports the failure once in /readyz, the status and
// the metrics, and does not download or expand the bomb again on the checks that follow.
func TestBundleServerBomb(t *testing.T) {
	priv, pubFile := policybundle.ESKeys(t)
	tests := []struct {
		name    string
		signing string
		good    func(rev string) []byte
	}{
		{"unsigned", "", func(rev string) []byte {
			b, err := policy.Build(context.Background(), []string{bundle(t, rev, soloTo("a"))}, rev)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := policy.WriteBundle(&buf, b); err != nil {
				t.Fatal(err)
			}
			return buf.Bytes()
		}},
		{"signing on", fmt.Sprintf("  signing: {public_key_file: %s, algorithm: ES256}\n", pubFile), func(rev string) []byte {
			return policybundle.Signed(t, rev, soloTo("a"), priv, nil)
		}},
	}
	bomb := bundletest.Bomb(128, 256<<10) // 32 MiB expanded, every file within max_file_bytes
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newCountingBundleServer(t, tc.good("bomb-1"))
			var provs string
			for _, n := range []string{"a", "b"} {
				up := fakeupstream.New()
				t.Cleanup(up.Close)
				provs += fmt.Sprintf("  - {name: %s, type: openai, base_url: %q, api_key: k, max_retries: 0}\n", n, up.URL())
			}
			g := start(t, fmt.Sprintf("bundle:\n  url: %s/bundles/gavel.tar.gz\n  polling: {min_delay: 100ms, max_delay: 200ms}\n%s"+
				"  persist_dir: %s\n  max_expanded_bytes: 1048576\n  max_file_bytes: 524288\nproviders:\n%s",
				srv.URL, tc.signing, t.TempDir(), provs), nil)
			if r, rev := route(t, g); r != "a/m1" || rev != "bomb-1" {
				t.Fatalf("first bundle: route %s revision %s", r, rev)
			}

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			srv.set(bomb)
			eventually(t, "the bomb to be rejected", func() bool {
				return strings.Contains(g.text(t, "/metrics"), `gavel_bundle_download_errors_total{reason="too_large"} 1`)
			})
			reqs, _ := srv.counts()
			eventually(t, "five more checks", func() bool {
				n, _ := srv.counts()
				return n >= reqs+5
			})
			runtime.ReadMemStats(&after)

			// Sent once (then 304s to its own ETag), expanded once up to the bound.
			if _, sent := srv.counts(); sent != 2 {
				t.Errorf("bodies sent = %d, want 2 (the first bundle, the bomb once)", sent)
			}
			m := g.text(t, "/metrics")
			if !strings.Contains(m, `gavel_bundle_download_errors_total{reason="too_large"} 1`) ||
				!strings.Contains(m, `gavel_bundle_activations_total{outcome="ok"} 1`) ||
				!strings.Contains(m, `gavel_bundle_activations_total{outcome="error"} 0`) {
				t.Errorf("metrics after repeated checks:\n%s", grepLines(m, "gavel_bundle_"))
			}
			// Everything the process allocated meanwhile, bomb included: the expansion
			// is discarded as it is counted, so far below its 32 MiB.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 12<<20 {
				t.Errorf("allocated %d bytes while the bomb was served, want < 12 MiB", alloc)
			} else {
				t.Logf("allocated %d bytes while the bomb was served", alloc)
			}

			if r, rev := route(t, g); r != "a/m1" || rev != "bomb-1" {
				t.Errorf("with the bomb served: route %s revision %s", r, rev)
			}
			resp, body := g.get(t, "/readyz")
			b, _ := body["bundle"].(map[string]any)
			server, _ := b["server"].(map[string]any)
			if resp.StatusCode != 200 || b["revision"] != "bomb-1" || server["last_error_reason"] != "too_large" ||
				!strings.Contains(fmt.Sprint(server["last_error"]), "max_expanded_bytes (1048576)") {
				t.Errorf("readyz with the bomb served: %d %v", resp.StatusCode, body)
			}
			_, st := g.get(t, "/v1/gavel/status")
			gs, _ := st["bundles"].(map[string]any)["gavel"].(map[string]any)
			if gs["active_revision"] != "bomb-1" || gs["code"] != "bundle_error" || !strings.Contains(fmt.Sprint(gs["message"]), "max_expanded_bytes") {
				t.Errorf("status with the bomb served: %v", st)
			}

			// The next good bundle activates and clears the error.
			srv.set(tc.good("bomb-2"))
			eventually(t, "revision bomb-2", func() bool {
				_, rev := route(t, g)
				return rev == "bomb-2"
			})
			_, body = g.get(t, "/readyz")
			if server, _ := body["bundle"].(map[string]any)["server"].(map[string]any); server["last_error"] != nil {
				t.Errorf("readyz after a good bundle: %v", body)
			}
		})
	}
}
