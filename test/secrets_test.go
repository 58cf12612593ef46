package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/gavel-gw/gavel/engine/policy"
)

// Secrets every test here configures; none may reach a client, a log line, a metric, the
// decision log, a status page or a file.
const (
	secretAPIKey    = "sk-live-apikey-0123456789"
	secretHeader    = "hdr-s3cret-value-42" // a provider headers: value
	secretHeaderAmp = "t&k<n>-7890"         // one that HTML and JSON escape
	secretUser      = "bundle-user-alice"
	secretPassword  = "bundle-pw-hunter22"
	secretSignature = "f00dfacecafe0123456789abcdef"
	secretAmzCred   = "AKIAEXAMPLE20261207"
	// secretRedisPassword is the ledger's Redis password (redis_secret_test.go).
	secretRedisPassword = "redis-pw-correct-horse"
)

var allSecrets = []string{secretAPIKey, secretHeader, secretHeaderAmp, secretUser, secretPassword, secretSignature, secretAmzCred, secretRedisPassword}

// noSecret fails the test for every configured secret found in what, in any of the forms
// a body may carry it in.
func noSecret(t *testing.T, where, what string) {
	t.Helper()
	for _, s := range allSecrets {
		j, _ := json.Marshal(s)
		forms := []string{s}
		if e := string(j[1 : len(j)-1]); e != s {
			forms = append(forms, e)
		}
		for _, form := range forms {
			if strings.Contains(what, form) {
				t.Errorf("%s holds the secret %q:\n%s", where, form, grepLines(what, form))
			}
		}
	}
}

// echoHeaders answers every request 401 with a body that quotes the request's headers,
// the way some upstreams and proxies report a failed authentication, in the format
// asked for. It records the headers it saw.
func echoHeaders(format string, seen *atomic.Value) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var quoted []string
		for _, k := range keys {
			quoted = append(quoted, k+"="+strings.Join(r.Header[k], ","))
		}
		seen.Store(r.Header.Clone())
		msg := "authentication failed for request with headers " + strings.Join(quoted, "; ")
		switch format {
		case "json":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "authentication_error", "code": "invalid_api_key"}})
		case "json-other": // JSON, but not the vendor's error shape: the raw body becomes the message
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			h := map[string]string{}
			for _, k := range keys {
				h[k] = r.Header.Get(k)
			}
			json.NewEncoder(w).Encode(map[string]any{"denied": true, "headers": h})
		case "html":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusUnauthorized)
			var b strings.Builder
			b.WriteString("<html><head><title>401 Unauthorized</title></head><body><h1>401</h1><ul>")
			for _, k := range keys {
				fmt.Fprintf(&b, "<li>%s: %s</li>", k, escapeHTML(r.Header.Get(k)))
			}
			b.WriteString("</ul></body></html>")
			io.WriteString(w, b.String())
		}
	})
}

func escapeHTML(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// An upstream that echoes the request's headers in a 401 must not hand the provider's
// credentials (api_key and every configured header value) to the caller, the log, the
// metrics or the decision log, whatever the vendor and whatever the body's format.
func TestUpstreamEchoOfCredentialsIsScrubbed(t *testing.T) {
	for _, vendor := range []string{"openai", "anthropic"} {
		for _, format := range []string{"json", "json-other", "html"} {
			t.Run(vendor+"/"+format, func(t *testing.T) {
				var seen atomic.Value
				up := httptest.NewServer(echoHeaders(format, &seen))
				t.Cleanup(up.Close)

				data := twoProviders(nil)
				data["catalog"].(map[string]any)["x/m1"] = entry("x", "m1")
				data["aliases"].(map[string]any)["solo"] = map[string]any{"strategy": "ordered", "candidates": []string{"x/m1"}}
				logs := &logBuffer{}
				log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				dlog := filepath.Join(t.TempDir(), "decisions.jsonl")
				g := startLogged(t, fmt.Sprintf(`policy: %s
providers:
  - {name: a, type: mock}
  - {name: b, type: mock}
  - name: x
    type: %s
    base_url: %q
    api_key: %s
    max_retries: 0
    headers: {X-Custom-Key: %s, X-Tenant: %q}
decision_log:
  file: %s
`, bundle(t, "secrets-1", data), vendor, up.URL, secretAPIKey, secretHeader, secretHeaderAmp, dlog), nil, true, log)

				_, err := g.client("k").Chat.Completions.New(context.Background(), userParams("solo", "hi"))
				var apiErr *openai.Error
				if !errors.As(err, &apiErr) {
					t.Fatalf("want an API error, got %v", err)
				}
				// The upstream really got the credentials, so there was something to leak.
				h, _ := seen.Load().(http.Header)
				if h.Get("X-Custom-Key") != secretHeader || h.Get("X-Tenant") != secretHeaderAmp {
					t.Fatalf("upstream saw headers %v", h)
				}
				body := apiErr.RawJSON()
				noSecret(t, "the client's error", body)
				if !strings.Contains(body, "[redacted]") {
					t.Errorf("the client's error should still say what the upstream said, secrets masked: %s", body)
				}
				eventually(t, "the request's log line", func() bool { return len(logs.records("request")) > 0 })
				noSecret(t, "the log", logs.String())
				noSecret(t, "/metrics", g.text(t, "/metrics"))
				g.stop() // flushes the decision log
				raw, err := os.ReadFile(dlog)
				if err != nil || len(raw) == 0 {
					t.Fatalf("decision log: %v (%d bytes)", err, len(raw))
				}
				noSecret(t, "the decision log", string(raw))
			})
		}
	}
}

// bundleTarball is the default policies with data as an unsigned bundle tarball.
func bundleTarball(t *testing.T, revision string, data map[string]any) []byte {
	t.Helper()
	b, err := policy.Build(context.Background(), []string{bundle(t, revision, data)}, revision)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := policy.WriteBundle(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A bundle URL with credentials (a pre-signed query, with or without user:password@)
// works, and the credentials show nowhere: not in /readyz, the bundle info metric, the
// log, the persisted metadata, nor in the error a failed check leaves, which quotes the
// URL.
func TestBundleURLCredentialsAreNotShown(t *testing.T) {
	for _, withUser := range []bool{false, true} {
		t.Run(map[bool]string{false: "presigned", true: "userinfo+presigned"}[withUser], func(t *testing.T) {
			bundleURLCredentials(t, withUser)
		})
	}
}

func bundleURLCredentials(t *testing.T, withUser bool) {
	tarball := bundleTarball(t, "cred-1", soloTo("a"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		q := r.URL.Query()
		if withUser && (!ok || u != secretUser || p != secretPassword) ||
			q.Get("X-Amz-Signature") != secretSignature || q.Get("X-Amz-Credential") != secretAmzCred {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/gzip")
		w.Write(tarball)
	}))
	t.Cleanup(srv.Close)

	host := strings.TrimPrefix(srv.URL, "http://")
	userinfo, shownUser := "", ""
	if withUser {
		userinfo, shownUser = secretUser+":"+secretPassword+"@", "REDACTED@"
	}
	bundleURL := fmt.Sprintf("http://%s%s/bundles/gavel.tar.gz?X-Amz-Credential=%s&X-Amz-Signature=%s",
		userinfo, host, secretAmzCred, secretSignature)
	shown := "http://" + shownUser + host + "/bundles/gavel.tar.gz?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED"
	persist := filepath.Join(t.TempDir(), "bundles")
	var provs string
	for _, n := range []string{"a", "b"} {
		provs += fmt.Sprintf("  - {name: %s, type: mock}\n", n)
	}
	yaml := fmt.Sprintf("bundle:\n  url: %q\n  polling: {min_delay: 100ms, max_delay: 200ms}\n  persist_dir: %s\nproviders:\n%s",
		bundleURL, persist, provs)
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g := startLogged(t, yaml, nil, true, log)

	// It works: the credentials reached the server and the bundle is active.
	if r, rev := route(t, g); r != "a/m1" || rev != "cred-1" {
		t.Fatalf("route %s revision %s", r, rev)
	}
	resp, body := g.get(t, "/readyz")
	readyz, _ := json.Marshal(body)
	b, _ := body["bundle"].(map[string]any)
	server, _ := b["server"].(map[string]any)
	if resp.StatusCode != 200 || b["source"] != shown || server["url"] != shown {
		t.Errorf("readyz: %d %s", resp.StatusCode, readyz)
	}
	noSecret(t, "/readyz", string(readyz))
	m := g.text(t, "/metrics")
	if !strings.Contains(m, `source="`+shown+`"`) {
		t.Errorf("gavel_bundle_info should name the server, credentials masked:\n%s", grepLines(m, "gavel_bundle_info"))
	}
	noSecret(t, "/metrics", m)
	var meta []byte
	eventually(t, "the bundle to be persisted", func() bool {
		meta, _ = os.ReadFile(filepath.Join(persist, "bundle.json"))
		return len(meta) > 0
	})
	var persisted struct{ URL string }
	if json.Unmarshal(meta, &persisted) != nil || persisted.URL != shown {
		t.Errorf("bundle.json should name the server, credentials masked: %s", meta)
	}
	noSecret(t, "bundle.json", string(meta))

	// A failed check keeps an error quoting the request URL: it is scrubbed too.
	srv.Close()
	eventually(t, "readyz to report the failed check", func() bool {
		_, body := g.get(t, "/readyz")
		server, _ := body["bundle"].(map[string]any)["server"].(map[string]any)
		if server["last_error"] == nil {
			return false
		}
		raw, _ := json.Marshal(body)
		noSecret(t, "/readyz after a failed check", string(raw))
		return true
	})
	eventually(t, "the failed check's log line", func() bool {
		return len(logs.records("bundle update failed; the active revision stays")) > 0
	})
	noSecret(t, "the log", logs.String())

	// A restart with the server down serves the persisted bundle, which is still this
	// URL's although the file names it masked.
	g.stop()
	logs2 := &logBuffer{}
	g2 := startLogged(t, yaml, nil, true, slog.New(slog.NewJSONHandler(logs2, nil)))
	if r, rev := route(t, g2); r != "a/m1" || rev != "cred-1" {
		t.Fatalf("after a restart: route %s revision %s", r, rev)
	}
	_, body = g2.get(t, "/readyz")
	if b, _ := body["bundle"].(map[string]any); b["source"] != "persisted:"+shown {
		t.Errorf("readyz after a restart: %v", body)
	}
	raw, _ := json.Marshal(body)
	noSecret(t, "/readyz after a restart", string(raw))
	noSecret(t, "the log after a restart", logs2.String())
	noSecret(t, "/metrics after a restart", g2.text(t, "/metrics"))
}
