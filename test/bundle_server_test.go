package test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/test/internal/policybundle"
	"github.com/gavel-gw/gavel/test/internal/realsrv"

	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

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
	nginx := realsrv.StartNginx(t, root)
	priv, pubFile := policybundle.ESKeys(t)
	nginx.Publish(t, "bundles/gavel.tar.gz", policybundle.Signed(t, "dist-1", soloTo("a"), priv, nil), 1)

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
	nginx.Publish(t, "bundles/gavel.tar.gz", policybundle.Signed(t, "dist-2", soloTo("b"), priv, nil), 2)
	eventually(t, "revision dist-2 to route solo to b/m1", func() bool {
		r, rev := route(t, g)
		return r == "b/m1" && rev == "dist-2"
	})

	// (b) A tampered bundle is rejected: counted, in the status, and dist-2 still decides.
	nginx.Publish(t, "bundles/gavel.tar.gz", policybundle.Signed(t, "dist-3", soloTo("b"), priv, func(d map[string]any) {
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
	nginx.Stop()
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
	nginx := realsrv.StartNginx(t, root)
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
