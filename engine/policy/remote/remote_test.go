package remote

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/compile"

	"github.com/gavel-gw/gavel/engine/policy"
)

// decisionRego is a minimal valid policy whose route names the revision, so a test can
// see which bundle decided.
func decisionRego(route string) string {
	return fmt.Sprintf("package gavel\n\ndecision := {\"allow\": true, \"targets\": [{\"provider\": %q, \"model\": \"m\"}]}\n", route)
}

// build returns a bundle tarball; sign, when set, signs it first with key id kid.
func build(t testing.TB, revision, rego string, sign *bundle.SigningConfig, kid string) []byte {
	t.Helper()
	b := bundle.Bundle{
		Manifest: bundle.Manifest{Revision: revision, Roots: &[]string{"gavel"}},
		Data:     map[string]any{"gavel": map[string]any{}},
		Modules:  []bundle.ModuleFile{{URL: "/gavel/policy.rego", Path: "/gavel/policy.rego", Raw: []byte(rego)}},
	}
	if sign != nil {
		if err := b.GenerateSignature(sign, kid, true); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).UseModulePath(true).Write(b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tamper rewrites a signed bundle's policy after signing, keeping the signature.
func tamper(t testing.TB, tarball []byte) []byte {
	t.Helper()
	b, err := bundle.NewReader(bytes.NewReader(tarball)).WithSkipBundleVerification(true).Read() // not a t.Skip: runs in CI
	if err != nil {
		t.Fatal(err)
	}
	b.Modules[0].Raw = []byte(decisionRego("evil"))
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).UseModulePath(true).Write(b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bundleServer serves one bundle the way OPA's bundle servers do: ETag, If-None-Match →
// 304, and optionally long polling (Prefer: wait=N until the bundle changes).
type bundleServer struct {
	*httptest.Server
	mu       sync.Mutex
	body     []byte
	etag     string
	status   int // non-zero: answer every request with it
	longPoll bool
	changed  chan struct{}
	reqs     []http.Header
	notMod   int
	noETag   bool // answer without ETag and never 304, as some static servers do
	bodies   int  // 200s with a body sent
}

func newBundleServer(t testing.TB, body []byte) *bundleServer {
	s := &bundleServer{changed: make(chan struct{})}
	s.set(body)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *bundleServer) set(body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body = body
	s.etag = fmt.Sprintf(`"%x"`, sha256.Sum256(body))
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *bundleServer) fail(status int) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

func (s *bundleServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r.Header.Clone())
	if s.status != 0 {
		s.mu.Unlock()
		w.WriteHeader(s.status)
		return
	}
	wait := s.longPoll && strings.Contains(r.Header.Get("Prefer"), "wait=") && r.Header.Get("If-None-Match") == s.etag
	changed := s.changed
	s.mu.Unlock()
	if wait {
		select {
		case <-changed:
		case <-time.After(time.Second):
		case <-r.Context().Done():
			return
		}
	}
	s.mu.Lock()
	body, etag := s.body, s.etag
	ct := "application/gzip"
	if s.longPoll {
		ct = longPollContentType
	}
	if !s.noETag && r.Header.Get("If-None-Match") == etag {
		s.notMod++
		s.mu.Unlock()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.bodies++
	noETag := s.noETag
	s.mu.Unlock()
	if !noETag {
		w.Header().Set("ETag", etag)
	}
	w.Header().Set("Content-Type", ct)
	w.Write(body)
}

func (s *bundleServer) requests() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.reqs...)
}

func (s *bundleServer) notModified() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notMod
}

// recorder is a Metrics that remembers what it was told.
type recorder struct {
	mu          sync.Mutex
	activations map[bool]int
	errors      map[string]int
	checks      int
}

func newRecorder() *recorder {
	return &recorder{activations: map[bool]int{}, errors: map[string]int{}}
}

func (r *recorder) BundleActivation(ok bool, _ time.Duration) {
	r.mu.Lock()
	r.activations[ok]++
	r.mu.Unlock()
}

func (r *recorder) BundleDownloadError(reason string) {
	r.mu.Lock()
	r.errors[reason]++
	r.mu.Unlock()
}

func (r *recorder) BundleChecked(time.Time) {
	r.mu.Lock()
	r.checks++
	r.mu.Unlock()
}

func (r *recorder) snapshot() (okAct, badAct int, errs map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	errs = map[string]int{}
	for k, v := range r.errors {
		errs[k] = v
	}
	return r.activations[true], r.activations[false], errs
}

type fixture struct {
	srv    *bundleServer
	engine *policy.Engine
	rec    *recorder
	client *Client
}

func newFixture(t testing.TB, body []byte, mod func(*Config)) *fixture {
	t.Helper()
	f := &fixture{srv: newBundleServer(t, body), engine: policy.New(), rec: newRecorder()}
	cfg := Config{URL: f.srv.URL + "/bundles/gavel.tar.gz", MinDelay: 20 * time.Millisecond, MaxDelay: 40 * time.Millisecond,
		PersistDir: filepath.Join(t.TempDir(), "bundles")}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg, f.engine, f.rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.client = c
	return f
}

func (f *fixture) revision() string {
	if rev := f.engine.Active(); rev != nil {
		return rev.ID
	}
	return ""
}

func TestNotModifiedDoesNotReactivate(t *testing.T) {
	f := newFixture(t, build(t, "r1", decisionRego("a"), nil, ""), nil)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := f.client.Poll(ctx); err != nil {
			t.Fatalf("poll %d: %v", i, err)
		}
	}
	if f.revision() != "r1" || f.engine.Active().Source != f.client.cfg.URL {
		t.Fatalf("active = %+v", f.engine.Active())
	}
	ok, bad, errs := f.rec.snapshot()
	if ok != 1 || bad != 0 || len(errs) != 0 {
		t.Errorf("activations ok=%d error=%d, errors %v; want one activation", ok, bad, errs)
	}
	if n := f.srv.notModified(); n != 2 {
		t.Errorf("server answered 304 %d times, want 2", n)
	}
	reqs := f.srv.requests()
	if reqs[0].Get("If-None-Match") != "" || reqs[1].Get("If-None-Match") == "" {
		t.Errorf("If-None-Match = %q then %q", reqs[0].Get("If-None-Match"), reqs[1].Get("If-None-Match"))
	}
	st := f.client.Status()
	if st.ActiveRevision != "r1" || st.LastSuccessfulRequest.IsZero() || st.LastSuccessfulDownload.IsZero() || st.Code != "" {
		t.Errorf("status = %+v", st)
	}
	if h := f.client.Health(); h.Stale || h.NotReady != "" || h.LastSuccessfulCheck == nil {
		t.Errorf("health = %+v", h)
	}
}

func TestBearerTokenIsSent(t *testing.T) {
	tests := []struct{ name, token, scheme, want string }{
		{"bearer", "s3cret", "", "Bearer s3cret"},
		{"custom scheme", "s3cret", "Token", "Token s3cret"},
		{"none", "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, build(t, "r1", decisionRego("a"), nil, ""), func(c *Config) { c.Token, c.Scheme = tc.token, tc.scheme })
			if err := f.client.Poll(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := f.srv.requests()[0].Get("Authorization"); got != tc.want {
				t.Errorf("Authorization = %q, want %q", got, tc.want)
			}
		})
	}
}

// A bundle URL's userinfo is sent as basic authentication, and neither it nor the query's
// values show in the health report, the status, the log or the error of a failed check,
// although the HTTP client's error quotes the URL.
func TestURLCredentials(t *testing.T) {
	var logs bytes.Buffer
	f := &fixture{srv: newBundleServer(t, build(t, "r1", decisionRego("a"), nil, "")), engine: policy.New(), rec: newRecorder()}
	u := strings.Replace(f.srv.URL, "http://", "http://alice:pw-s3cret@", 1) + "/bundles/gavel.tar.gz?X-Amz-Signature=sig-s3cret"
	shown := strings.Replace(f.srv.URL, "http://", "http://REDACTED@", 1) + "/bundles/gavel.tar.gz?X-Amz-Signature=REDACTED"
	c, err := New(Config{URL: u, MinDelay: time.Second, MaxDelay: time.Second, PersistDir: filepath.Join(t.TempDir(), "b")},
		f.engine, f.rec, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	req := &http.Request{Header: f.srv.requests()[0]}
	if user, pw, ok := req.BasicAuth(); !ok || user != "alice" || pw != "pw-s3cret" {
		t.Errorf("basic auth = %q %q %v", user, pw, ok)
	}
	if got := f.engine.Active().Source; got != shown {
		t.Errorf("source = %q, want %q", got, shown)
	}

	f.srv.Close()
	perr := c.Poll(context.Background())
	if perr == nil {
		t.Fatal("a closed server must fail the check")
	}
	h, st := c.Health(), c.Status()
	// The error still says which request failed, its credentials masked.
	if h.URL != shown || !strings.Contains(h.LastError, "X-Amz-Signature=[redacted]") || h.LastErrorReason != ReasonNetwork {
		t.Errorf("health = %+v", h)
	}
	for what, text := range map[string]string{"Poll's error": perr.Error(), "last_error": h.LastError,
		"status": fmt.Sprint(st.Message, st.Errors), "log": logs.String()} {
		if strings.Contains(text, "s3cret") {
			t.Errorf("%s shows a credential: %s", what, text)
		}
	}
}

// keyPair is a signing key and the verification config gavel would be given.
type keyPair struct {
	sign   *bundle.SigningConfig
	verify *bundle.VerificationConfig
}

func pemOf(t testing.TB, typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func newKeyPair(t testing.TB, alg, kid string) keyPair {
	t.Helper()
	var priv, pub string
	switch alg {
	case "RS256":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		priv, pub = pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k)), pemOf(t, "PUBLIC KEY", der)
	case "ES256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pder, _ := x509.MarshalECPrivateKey(k)
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		priv, pub = pemOf(t, "EC PRIVATE KEY", pder), pemOf(t, "PUBLIC KEY", der)
	case "HS256":
		b := make([]byte, 32)
		rand.Read(b)
		priv = fmt.Sprintf("%x", b)
		pub = priv
	}
	return keyPair{
		sign:   bundle.NewSigningConfig(priv, alg, ""),
		verify: bundle.NewVerificationConfig(map[string]*bundle.KeyConfig{kid: {Key: pub, Algorithm: alg}}, kid, "", nil),
	}
}

func TestSignatures(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "HS256"} {
		t.Run(alg, func(t *testing.T) {
			key, other := newKeyPair(t, alg, "default"), newKeyPair(t, alg, "default")
			signed := build(t, "r2", decisionRego("b"), key.sign, "default")
			tests := []struct {
				name    string
				body    []byte
				wantRev string
			}{
				{"valid", signed, "r2"},
				{"tampered", tamper(t, signed), "r1"},
				{"unsigned", build(t, "r2", decisionRego("b"), nil, ""), "r1"},
				{"wrong key", build(t, "r2", decisionRego("b"), other.sign, "default"), "r1"},
				// OPA's rule: the configured key id picks the key, whatever kid the JWT names.
				{"other kid, right key", build(t, "r2", decisionRego("b"), key.sign, "other"), "r2"},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					f := newFixture(t, tc.body, func(c *Config) { c.Verification = key.verify })
					if _, err := f.engine.Activate(context.Background(), mustRead(t, build(t, "r1", decisionRego("a"), nil, "")), "local"); err != nil {
						t.Fatal(err)
					}
					err := f.client.Poll(context.Background())
					if got := f.revision(); got != tc.wantRev {
						t.Fatalf("active revision %q, want %q (poll error: %v)", got, tc.wantRev, err)
					}
					_, _, errs := f.rec.snapshot()
					if tc.wantRev == "r2" {
						if err != nil || len(errs) != 0 {
							t.Fatalf("valid bundle: err %v, errors %v", err, errs)
						}
						return
					}
					if err == nil || errs[ReasonVerify] != 1 || len(errs) != 1 {
						t.Fatalf("err %v, errors %v: want one verify error", err, errs)
					}
					if st := f.client.Status(); st.Code != "bundle_error" || st.Message == "" {
						t.Errorf("status = %+v", st)
					}
					if h := f.client.Health(); h.LastErrorReason != ReasonVerify {
						t.Errorf("health = %+v", h)
					}
					if _, err := os.Stat(filepath.Join(f.client.cfg.PersistDir, tarballFile)); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("a rejected bundle was persisted (stat: %v)", err)
					}
				})
			}
		})
	}
}

func mustRead(t testing.TB, tarball []byte) *bundle.Bundle {
	t.Helper()
	b, err := bundle.NewReader(bytes.NewReader(tarball)).Read()
	if err != nil {
		t.Fatal(err)
	}
	return &b
}

func TestFailureKeepsRevision(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(*bundleServer)
		reason  string
	}{
		{"http 500", func(s *bundleServer) { s.fail(http.StatusInternalServerError) }, ReasonHTTP},
		{"http 404", func(s *bundleServer) { s.fail(http.StatusNotFound) }, ReasonHTTP},
		{"server down", func(s *bundleServer) { s.Close() }, ReasonNetwork},
		{"not a tarball", func(s *bundleServer) { s.set([]byte("<html>oops</html>")) }, ReasonBundle},
		{"rego syntax error", func(s *bundleServer) { s.set(build(t, "r2", "package gavel\n\ndecision := {", nil, "")) }, ReasonBundle},
		{"signed, but no key configured", func(s *bundleServer) {
			s.set(build(t, "r2", decisionRego("b"), newKeyPair(t, "HS256", "default").sign, "default"))
		}, ReasonVerify},
		{"delta bundle", func(s *bundleServer) {
			d := bundle.Bundle{Manifest: bundle.Manifest{Revision: "r2", Roots: &[]string{"gavel"}},
				Patch: bundle.Patch{Data: []bundle.PatchOperation{{Op: "upsert", Path: "/gavel/x", Value: 1}}}}
			var buf bytes.Buffer
			if err := bundle.NewWriter(&buf).Write(d); err != nil {
				t.Fatal(err)
			}
			s.set(buf.Bytes())
		}, ReasonBundle},
		{"does not compile", func(s *bundleServer) {
			s.set(build(t, "r2", "package gavel\n\ndecision := no_such_function(1)\n", nil, ""))
		}, ReasonCompile},
		// Compiles, but can never decide: activated, it would answer 500 to every request.
		{"decision undefined", func(s *bundleServer) {
			s.set(build(t, "r2", strings.Replace(decisionRego("b"), "decision :=", "decisions :=", 1), nil, ""))
		}, ReasonCompile},
		{"decision gavel cannot parse", func(s *bundleServer) {
			s.set(build(t, "r2", strings.Replace(decisionRego("b"), `"allow": true,`, `"allow": true, "colour": "red",`, 1), nil, ""))
		}, ReasonCompile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, build(t, "r1", decisionRego("a"), nil, ""), nil)
			ctx := context.Background()
			if err := f.client.Poll(ctx); err != nil {
				t.Fatal(err)
			}
			tc.breakIt(f.srv)
			for i := 0; i < 2; i++ {
				if err := f.client.Poll(ctx); err == nil {
					t.Fatalf("poll %d after %s succeeded", i, tc.name)
				}
			}
			if f.revision() != "r1" {
				t.Fatalf("active revision %q after failures, want r1", f.revision())
			}
			if strings.HasPrefix(tc.name, "decision ") && !strings.Contains(f.client.Health().LastError, policy.ErrCannotDecide.Error()) {
				t.Errorf("last error = %q, want it to say the bundle cannot decide", f.client.Health().LastError)
			}
			// A failed exchange is counted on every check; a rejected bundle once, its
			// repeat answered 304 to its own ETag and never judged again.
			want := 2
			if tc.reason != ReasonHTTP && tc.reason != ReasonNetwork {
				want = 1
				if n := f.srv.notModified(); n != 1 {
					t.Errorf("304s = %d, want 1: the repeat check must ask with the rejected bundle's ETag", n)
				}
			}
			_, bad, errs := f.rec.snapshot()
			if errs[tc.reason] != want || len(errs) != 1 {
				t.Errorf("errors = %v, want %d × %s", errs, want, tc.reason)
			}
			if tc.reason == ReasonCompile && bad != 1 {
				t.Errorf("failed activations = %d, want 1", bad)
			}
			h := f.client.Health()
			if h.NotReady != "" || h.LastErrorReason != tc.reason || h.LastError == "" {
				t.Errorf("health = %+v", h)
			}
			// The downloader advertises delta mode, but its reader refuses delta bundles
			// when persisting, which gavel always does: snapshots only.
			if tc.name == "delta bundle" && !strings.Contains(h.LastError, "delta bundle") {
				t.Errorf("delta bundle error = %q", h.LastError)
			}
			st := f.client.Status()
			if st.ActiveRevision != "r1" || st.Code == "" || st.LastRequest.Before(st.LastSuccessfulRequest) {
				t.Errorf("status = %+v", st)
			}
			// OPA's compile errors are listed one by one; a bundle that cannot decide has one
			// error, in the message.
			if tc.name == "does not compile" && len(st.Errors) == 0 {
				t.Errorf("a compile error lists no errors in the status: %+v", st)
			}
		})
	}
}

func TestPersistAndReload(t *testing.T) {
	key := newKeyPair(t, "ES256", "default")
	signed := build(t, "r1", decisionRego("a"), key.sign, "default")
	f := newFixture(t, signed, func(c *Config) { c.Verification = key.verify })
	if err := f.client.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir := f.client.cfg.PersistDir
	raw, err := os.ReadFile(filepath.Join(dir, tarballFile))
	if err != nil || !bytes.Equal(raw, signed) {
		t.Fatalf("persisted tarball differs from the download (err %v)", err)
	}
	var m meta
	mb, _ := os.ReadFile(filepath.Join(dir, metaFile))
	if err := json.Unmarshal(mb, &m); err != nil || m.Revision != "r1" || m.URL != f.client.cfg.URL || m.ETag == "" || m.DownloadedAt.IsZero() {
		t.Fatalf("metadata = %s (%v)", mb, err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(leftovers) != 0 {
		t.Errorf("temp files left: %v", leftovers)
	}

	// A restart with the server still up: the persisted bundle serves, and the first
	// check is a 304 because its ETag was kept.
	restart := func(t *testing.T, mod func(*Config)) (*policy.Engine, *Client, *recorder) {
		t.Helper()
		e, rec := policy.New(), newRecorder()
		cfg := f.client.cfg
		if mod != nil {
			mod(&cfg)
		}
		c, err := New(cfg, e, rec, nil)
		if err != nil {
			t.Fatal(err)
		}
		return e, c, rec
	}
	t.Run("server up", func(t *testing.T) {
		e, c, rec := restart(t, nil)
		rev, err := c.LoadPersisted(context.Background())
		if err != nil || rev.ID != "r1" || e.Active().Source != "persisted:"+c.cfg.URL {
			t.Fatalf("reload: %v, %+v", err, rev)
		}
		before := f.srv.notModified()
		if err := c.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
		if f.srv.notModified() != before+1 {
			t.Error("the first check after a reload was not a 304")
		}
		if ok, _, _ := rec.snapshot(); ok != 1 {
			t.Errorf("activations = %d, want 1 (the persisted bundle only)", ok)
		}
	})
	t.Run("server down", func(t *testing.T) {
		e, c, _ := restart(t, nil)
		f.srv.fail(http.StatusServiceUnavailable)
		defer f.srv.fail(0)
		if _, err := c.LoadPersisted(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := c.Poll(context.Background()); err == nil {
			t.Fatal("poll of a failing server succeeded")
		}
		h := c.Health()
		if e.Active().ID != "r1" || !h.Stale || h.NotReady != "" || h.LastSuccessfulCheck != nil {
			t.Errorf("active %q, health %+v: want r1, stale, ready", e.Active().ID, h)
		}
		// Past max_staleness the gateway is no longer ready, and says why.
		c.cfg.MaxStaleness = time.Minute
		c.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
		if h := c.Health(); !strings.Contains(h.NotReady, "stale") || !strings.Contains(h.NotReady, c.cfg.URL) {
			t.Errorf("not ready = %q", h.NotReady)
		}
	})
	t.Run("tampered on disk", func(t *testing.T) {
		dir2 := t.TempDir()
		os.WriteFile(filepath.Join(dir2, tarballFile), tamper(t, signed), 0o600)
		os.WriteFile(filepath.Join(dir2, metaFile), mb, 0o600)
		e, c, rec := restart(t, func(c *Config) { c.PersistDir = dir2 })
		if _, err := c.LoadPersisted(context.Background()); err == nil || e.Active() != nil {
			t.Fatalf("a tampered persisted bundle was activated (err %v)", err)
		}
		if _, _, errs := rec.snapshot(); errs[ReasonVerify] != 1 {
			t.Errorf("errors = %v", errs)
		}
		if h := c.Health(); !strings.Contains(h.NotReady, "no policy bundle is active") {
			t.Errorf("not ready = %q", h.NotReady)
		}
	})
	t.Run("another server's bundle", func(t *testing.T) {
		_, c, _ := restart(t, func(c *Config) { c.URL = f.srv.URL + "/other.tar.gz" })
		if _, err := c.LoadPersisted(context.Background()); !errors.Is(err, ErrNothingPersisted) {
			t.Fatalf("err = %v, want ErrNothingPersisted", err)
		}
	})
	t.Run("nothing persisted", func(t *testing.T) {
		_, c, _ := restart(t, func(c *Config) { c.PersistDir = t.TempDir() })
		if _, err := c.LoadPersisted(context.Background()); !errors.Is(err, ErrNothingPersisted) {
			t.Fatalf("err = %v, want ErrNothingPersisted", err)
		}
	})
}

// With long polling the server holds each check open, so a new bundle arrives at once
// even though the polling delay is far longer than the test.
func TestLongPolling(t *testing.T) {
	f := newFixture(t, build(t, "r1", decisionRego("a"), nil, ""), func(c *Config) {
		c.MinDelay, c.MaxDelay, c.LongPollingTimeout = time.Minute, time.Minute, time.Second
	})
	f.srv.longPoll = true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.client.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitRevision(t, f, "r1")
	time.Sleep(50 * time.Millisecond) // let the next long poll reach the server
	f.srv.set(build(t, "r2", decisionRego("b"), nil, ""))
	waitRevision(t, f, "r2")
	var prefer string
	for _, h := range f.srv.requests() {
		if strings.Contains(h.Get("Prefer"), "wait=1") {
			prefer = h.Get("Prefer")
		}
	}
	if prefer == "" {
		t.Errorf("no request asked the server to wait: %v", f.srv.requests())
	}
}

// Without long polling, Run picks up a new revision within the polling delay and backs
// off while the server fails.
func TestRunPolls(t *testing.T) {
	f := newFixture(t, build(t, "r1", decisionRego("a"), nil, ""), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.client.Run(ctx) }()
	waitRevision(t, f, "r1")
	f.srv.set(build(t, "r2", decisionRego("b"), nil, ""))
	waitRevision(t, f, "r2")
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func waitRevision(t *testing.T, f *fixture, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.revision() != want {
		if time.Now().After(deadline) {
			t.Fatalf("revision %q never became active (active %q, status %+v)", want, f.revision(), f.client.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A bundle built and signed the way `opa build --signing-key` does it (OPA's compile
// package is what the command runs) verifies with key id "default".
func TestOPABuildBundle(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "gavel"), 0o755)
	os.WriteFile(filepath.Join(src, "gavel", "policy.rego"), []byte(decisionRego("opa")), 0o644)
	os.WriteFile(filepath.Join(src, "gavel", "data.json"), []byte(`{"aliases": {"x": {"strategy": "ordered", "candidates": ["opa/m"]}}}`), 0o644)
	key := newKeyPair(t, "RS256", "default")
	var out bytes.Buffer
	err := compile.New().WithPaths(src).WithAsBundle(false).WithRevision("opa-built-1").
		WithBundleSigningConfig(key.sign).WithOutput(&out).Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, out.Bytes(), func(c *Config) { c.Verification = key.verify })
	if err := f.client.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	rev := f.engine.Active()
	if rev == nil || rev.ID != "opa-built-1" {
		t.Fatalf("active = %+v", rev)
	}
	d, err := rev.Decide(context.Background(), (&policy.Input{Request: policy.Request{Endpoint: "chat", Model: "x"}}).Value())
	if err != nil || len(d.Targets) != 1 || d.Targets[0].Provider != "opa" {
		t.Fatalf("decision = %+v, %v", d, err)
	}
	if a := rev.Data.Aliases["x"]; len(a.Candidates) != 1 || a.Candidates[0] != "opa/m" {
		t.Errorf("bundle data not loaded: %+v", rev.Data.Aliases)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no path", Config{URL: "http://h", MinDelay: time.Second, MaxDelay: time.Second}, "names no bundle path"},
		{"ftp", Config{URL: "ftp://h/b.tar.gz", MinDelay: time.Second, MaxDelay: time.Second}, "http(s)"},
		{"delays", Config{URL: "http://h/b.tar.gz", MinDelay: 2 * time.Second, MaxDelay: time.Second}, "min_delay"},
		{"user info and token", Config{URL: "http://u:pw-s3cret@h/b.tar.gz", Token: "t0ken-s3cret", MinDelay: time.Second, MaxDelay: time.Second}, "exclusive"},
		{"ftp with credentials", Config{URL: "ftp://u:pw-s3cret@h/b.tar.gz?sig=sig-s3cret", MinDelay: time.Second, MaxDelay: time.Second}, "ftp://REDACTED@h/b.tar.gz?sig=REDACTED"},
		{"unparsable with credentials", Config{URL: "http://u:pw-s3cret@h:bad/b?sig=sig-s3cret", MinDelay: time.Second, MaxDelay: time.Second}, "bundle url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, policy.New(), nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("err = %v shows a credential", err)
			}
		})
	}
}

// A server that never answers costs the check its deadline and counts as a network error;
// a check cancelled because gavel is shutting down counts as nothing.
func TestHungServerAndShutdown(t *testing.T) {
	f := newFixture(t, build(t, "r1", decisionRego("a"), nil, ""), nil)
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hung.Close()
	defer close(release)
	c, err := New(Config{URL: hung.URL + "/b.tar.gz", MinDelay: time.Second, MaxDelay: time.Second}, f.engine, f.rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := c.Poll(ctx); err == nil {
		t.Fatal("a hung server's check succeeded")
	}
	if _, _, errs := f.rec.snapshot(); errs[ReasonNetwork] != 1 {
		t.Errorf("errors = %v, want one network error", errs)
	}
	ctx, cancel = context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	c.Poll(ctx)
	if _, _, errs := f.rec.snapshot(); errs[ReasonNetwork] != 1 || len(errs) != 1 {
		t.Errorf("errors after a shutdown = %v, want still one network error", errs)
	}
}
