package test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/policy"

	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// nginxServer is a real nginx serving a directory on a free loopback port, everything it
// writes (pid, logs, temp files) inside the test's temp dir.
type nginxServer struct {
	URL  string
	root string
	stop func()
}

// startNginx starts nginx serving root. Locally a missing nginx skips; in CI (CI=true) it
// fails, since CI installs it.
func startNginx(t *testing.T, root string) *nginxServer {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("nginx is not installed; .ci/run must install it")
			}
			t.Skip("nginx not installed (CI installs it and fails instead of skipping)")
		}
	}
	prefix := t.TempDir()
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// As root, nginx's workers would drop to "nobody", who cannot read the test's
	// private temp dirs: keep them as the current user. Otherwise the directive is
	// ignored with a warning, so leave it out.
	userLine := ""
	if os.Geteuid() == 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		userLine = "user " + u.Username + ";"
	}
	conf := fmt.Sprintf(`%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/logs/error.log warn;
events { worker_connections 64; }
http {
  access_log %[2]s/logs/access.log;
  client_body_temp_path %[2]s/tmp/body;
  proxy_temp_path %[2]s/tmp/proxy;
  fastcgi_temp_path %[2]s/tmp/fastcgi;
  uwsgi_temp_path %[2]s/tmp/uwsgi;
  scgi_temp_path %[2]s/tmp/scgi;
  types { application/gzip gz; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:%[3]d;
    root %[4]s;
    etag on;
  }
}
`, userLine, prefix, port, root)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", confPath, "-g", "daemon off;")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM) // fast shutdown of master and workers
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		})
	}
	t.Cleanup(stop)
	n := &nginxServer{URL: "http://127.0.0.1:" + strconv.Itoa(port), root: root, stop: stop}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if resp, err := http.Get(n.URL + "/"); err == nil {
			resp.Body.Close()
			return n
		}
		select {
		case <-exited:
			t.Fatalf("nginx exited: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// publish replaces the served bundle atomically. nginx's ETag is mtime and size, so each
// version gets its own mtime: two uploads within one second must not share an ETag.
func (n *nginxServer) publish(t *testing.T, name string, tarball []byte, version int) {
	t.Helper()
	path := filepath.Join(n.root, name)
	os.MkdirAll(filepath.Dir(path), 0o755)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, tarball, 0o644); err != nil {
		t.Fatal(err)
	}
	mt := time.Unix(1_700_000_000+int64(version)*60, 0)
	if err := os.Chtimes(tmp, mt, mt); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// signedBundle is the default policies with data, built and signed the way `gavel bundle
// build --signing-key` does (policy.Build, policy.Sign with ES256 and key id "default",
// policy.WriteBundle); tamperData, when set, changes the data after signing.
func signedBundle(t *testing.T, revision string, data map[string]any, privPEM string, tamperData func(map[string]any)) []byte {
	t.Helper()
	b, err := policy.Build(context.Background(), []string{bundle(t, revision, data)}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := policy.Sign(b, policy.Signing{Key: privPEM, Algorithm: "ES256"}); err != nil {
		t.Fatal(err)
	}
	if tamperData != nil {
		tamperData(b.Data["gavel"].(map[string]any))
	}
	var buf bytes.Buffer
	if err := policy.WriteBundle(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// esKeys returns an ES256 private key and the path of its public key PEM.
func esKeys(t *testing.T) (priv, pubFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(k)
	pub, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pubFile = filepath.Join(t.TempDir(), "bundle.pem")
	os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})), pubFile
}

// soloTo is the test data with alias "solo" sent to provider p.
func soloTo(p string) map[string]any {
	d := twoProviders(nil)
	d["aliases"].(map[string]any)["solo"] = map[string]any{"strategy": "ordered", "candidates": []string{p + "/m1"}}
	return d
}

// route asks gavel for alias "solo" and returns the route and bundle revision it answered with.
func route(t *testing.T, g *gw) (string, string) {
	t.Helper()
	var resp *http.Response
	if _, err := g.client("k").Chat.Completions.New(context.Background(), userParams("solo", "hi"), option.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	return resp.Header.Get("X-Gavel-Route"), resp.Header.Get("X-Gavel-Bundle-Revision")
}

func TestPolicyFromBundleServer(t *testing.T) {
	root := t.TempDir()
	nginx := startNginx(t, root)
	priv, pubFile := esKeys(t)
	nginx.publish(t, "bundles/gavel.tar.gz", signedBundle(t, "dist-1", soloTo("a"), priv, nil), 1)

	var provs string
	for _, n := range []string{"a", "b"} {
		up := fakeupstream.New()
		t.Cleanup(up.Close)
		provs += fmt.Sprintf("  - {name: %s, type: openai, base_url: %q, api_key: k, max_retries: 0}\n", n, up.URL())
	}
	persist := filepath.Join(t.TempDir(), "bundles")
	bundleURL := nginx.URL + "/bundles/gavel.tar.gz"
	yaml := func(url, dir, extra string) string {
		return fmt.Sprintf("bundle:\n  url: %s\n  polling: {min_delay: 100ms, max_delay: 200ms}\n"+
			"  signing: {public_key_file: %s, algorithm: ES256}\n  persist_dir: %s\n%sproviders:\n%s", url, pubFile, dir, extra, provs)
	}
	g := start(t, yaml(bundleURL, persist, ""), nil)
	if r, rev := route(t, g); r != "a/m1" || rev != "dist-1" {
		t.Fatalf("first bundle: route %s revision %s", r, rev)
	}
	readyz := func(g *gw) (int, map[string]any) {
		resp, body := g.get(t, "/readyz")
		b, _ := body["bundle"].(map[string]any)
		return resp.StatusCode, b
	}
	eventually(t, "readyz to report a fresh bundle", func() bool {
		code, b := readyz(g)
		return code == 200 && b["revision"] == "dist-1" && b["stale"] == false
	})

	// (a) A new signed revision routes elsewhere, seen within a few polling periods.
	nginx.publish(t, "bundles/gavel.tar.gz", signedBundle(t, "dist-2", soloTo("b"), priv, nil), 2)
	eventually(t, "revision dist-2 to route solo to b/m1", func() bool {
		r, rev := route(t, g)
		return r == "b/m1" && rev == "dist-2"
	})

	// (b) A tampered bundle is rejected: counted, in the status, and dist-2 still decides.
	nginx.publish(t, "bundles/gavel.tar.gz", signedBundle(t, "dist-3", soloTo("b"), priv, func(d map[string]any) {
		d["aliases"].(map[string]any)["solo"] = map[string]any{"strategy": "ordered", "candidates": []string{"a/m1"}}
	}), 3)
	eventually(t, "the tampered bundle to be rejected", func() bool {
		// The counter is published at 0 from startup: wait for the failure itself.
		return !strings.Contains(g.text(t, "/metrics"), `gavel_bundle_download_errors_total{reason="verify"} 0`)
	})
	_, st := g.get(t, "/v1/gavel/status")
	gs, _ := st["bundles"].(map[string]any)["gavel"].(map[string]any)
	if gs["active_revision"] != "dist-2" || gs["code"] != "bundle_error" || !strings.Contains(fmt.Sprint(gs["message"]), "digest mismatch") {
		t.Errorf("status after a tampered bundle = %v", st)
	}
	if r, rev := route(t, g); r != "b/m1" || rev != "dist-2" {
		t.Fatalf("after a tampered bundle: route %s revision %s", r, rev)
	}
	if m := g.text(t, "/metrics"); !strings.Contains(m, `gavel_bundle_activations_total{outcome="ok"} 2`) ||
		!strings.Contains(m, "gavel_bundle_last_successful_download_timestamp_seconds") ||
		!strings.Contains(m, "gavel_bundle_activation_duration_seconds_count 2") {
		t.Errorf("bundle metrics missing:\n%s", grepLines(m, "gavel_bundle_"))
	}

	// (c) The server goes away: gavel keeps serving dist-2.
	nginx.stop()
	eventually(t, "the outage to be counted", func() bool {
		return !strings.Contains(g.text(t, "/metrics"), `gavel_bundle_download_errors_total{reason="network"} 0`)
	})
	if r, rev := route(t, g); r != "b/m1" || rev != "dist-2" {
		t.Fatalf("with the server down: route %s revision %s", r, rev)
	}
	if code, _ := readyz(g); code != 200 {
		t.Errorf("readyz %d with the server down and max_staleness unset, want 200", code)
	}

	// (d) A restart with the server still down serves the persisted last known good.
	g.stop()
	g2 := start(t, yaml(bundleURL, persist, ""), nil)
	if r, rev := route(t, g2); r != "b/m1" || rev != "dist-2" {
		t.Fatalf("after a restart: route %s revision %s", r, rev)
	}
	code, b := readyz(g2)
	server, _ := b["server"].(map[string]any)
	if code != 200 || b["revision"] != "dist-2" || b["source"] != "persisted:"+bundleURL || b["stale"] != true ||
		b["staleness_seconds"] == nil || server["url"] != bundleURL {
		t.Errorf("readyz after a restart: %d %v", code, b)
	}
	eventually(t, "readyz to name the failed check", func() bool {
		_, b := readyz(g2)
		server, _ := b["server"].(map[string]any)
		return strings.Contains(fmt.Sprint(server["last_error"]), "connection refused")
	})

	// (e) Nothing persisted and no server: gavel starts and listens, not ready.
	g3 := start(t, yaml(bundleURL, t.TempDir(), ""), nil)
	resp, body := g3.get(t, "/readyz")
	if resp.StatusCode != 503 || !strings.Contains(fmt.Sprint(body["reasons"]), bundleURL) ||
		!strings.Contains(fmt.Sprint(body["reasons"]), "connection refused") {
		t.Errorf("readyz without any bundle: %d %v", resp.StatusCode, body)
	}
	resp, body = g3.post(t, "/v1/chat/completions", `{"model":"solo","messages":[{"role":"user","content":"hi"}]}`, nil)
	if resp.StatusCode != 503 || body["error"].(map[string]any)["code"] != "not_ready" {
		t.Errorf("chat without any bundle: %d %v", resp.StatusCode, body)
	}

	// (f) ... unless the config allows the embedded bundle as a fallback.
	g4 := start(t, yaml(bundleURL, t.TempDir(), "  fallback: embedded\n"), nil)
	code, b = readyz(g4)
	if code != 200 || !strings.Contains(fmt.Sprint(b["source"]), "embedded") || b["stale"] != true {
		t.Errorf("readyz on the embedded fallback: %d %v", code, b)
	}
}

// The status endpoint is an admin endpoint, and with a local bundle it reports the
// activation alone.
func TestStatusNeedsAdminAndReportsLocalBundle(t *testing.T) {
	admin, adminHash, _ := auth.NewKey()
	user, userHash, _ := auth.NewKey()
	dir := bundle(t, "local-9", twoProviders(map[string]any{
		adminHash: map[string]any{"key_id": "k-admin", "admin": true},
		userHash:  map[string]any{"key_id": "k-user"},
	}))
	up := fakeupstream.New()
	t.Cleanup(up.Close)
	g := start(t, fmt.Sprintf("policy: %s\nproviders:\n  - {name: a, type: openai, base_url: %q}\n", dir, up.URL()), nil)
	get := func(key string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/gavel/status", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		return do(t, req)
	}
	for _, tc := range []struct {
		name, key string
		status    int
	}{{"no key", "", 401}, {"user key", user, 403}, {"admin key", admin, 200}} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(tc.key)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.status, body)
			}
			if tc.status != 200 {
				return
			}
			gs, _ := body["bundles"].(map[string]any)["gavel"].(map[string]any)
			labels, _ := body["labels"].(map[string]any)
			if gs["name"] != "gavel" || gs["active_revision"] != "local-9" || gs["code"] != nil || labels["app"] != "gavel" {
				t.Errorf("status = %v", body)
			}
		})
	}
}

// A bundle built and signed by the real `opa build --signing-key` (the opa CLI pinned in
// go.mod's tool directive), served by nginx, decides in gavel.
func TestOPABuiltBundleFromServer(t *testing.T) {
	root := t.TempDir()
	nginx := startNginx(t, root)
	stage := bundle(t, "ignored", soloTo("b")) // policies + .manifest + gavel/data.json
	keyDir := t.TempDir()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	privFile, pubFile := filepath.Join(keyDir, "priv.pem"), filepath.Join(keyDir, "pub.pem")
	os.WriteFile(privFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600)
	os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
	os.MkdirAll(filepath.Join(root, "bundles"), 0o755)
	out, err := exec.Command("go", "tool", "opa", "build", "-b", stage, "--revision", "opa-built-7",
		"--signing-key", privFile, "--signing-alg", "RS256", "-o", filepath.Join(root, "bundles", "gavel.tar.gz")).CombinedOutput()
	if err != nil {
		t.Fatalf("opa build: %v\n%s", err, out)
	}
	var provs string
	for _, n := range []string{"a", "b"} {
		up := fakeupstream.New()
		t.Cleanup(up.Close)
		provs += fmt.Sprintf("  - {name: %s, type: openai, base_url: %q, api_key: k, max_retries: 0}\n", n, up.URL())
	}
	g := start(t, fmt.Sprintf("bundle:\n  url: %s/bundles/gavel.tar.gz\n  signing: {public_key_file: %s}\n  persist_dir: %s\nproviders:\n%s",
		nginx.URL, pubFile, t.TempDir(), provs), nil)
	if r, rev := route(t, g); r != "b/m1" || rev != "opa-built-7" {
		t.Fatalf("opa-built bundle: route %s revision %s", r, rev)
	}
}
