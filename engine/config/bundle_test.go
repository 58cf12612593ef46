package config

import (
	"strings"
	"testing"
	"time"
)

func TestBundleSection(t *testing.T) {
	yaml := `
bundle:
  url: https://policy.example.com
  resource: /bundles/gavel.tar.gz
  credentials: {bearer: {token: "${BUNDLE_TOKEN}"}}
  polling: {min_delay: 500ms, max_delay: 1s, long_polling_timeout: 30s}
  signing: {public_key_file: /etc/gavel/bundle.pem}
  max_staleness: 1h
`
	c, err := Parse([]byte(yaml), env(map[string]string{"BUNDLE_TOKEN": "tok"}))
	if err != nil {
		t.Fatal(err)
	}
	b := c.Bundle
	if b.BundleURL() != "https://policy.example.com/bundles/gavel.tar.gz" || string(b.Credentials.Bearer.Token) != "tok" ||
		b.Polling.MinDelay != 500*time.Millisecond || b.Polling.LongPollingTimeout != 30*time.Second || b.MaxStaleness != time.Hour {
		t.Errorf("bundle = %+v", b)
	}
	if b.PersistDir != DefaultBundlePersistDir || b.Fallback != FallbackNone || b.Signing.KeyID != "default" || b.Signing.Algorithm != "RS256" {
		t.Errorf("defaults not applied: %+v %+v", b, b.Signing)
	}

	c, err = Parse([]byte("bundle:\n  url: http://127.0.0.1:8181/b.tar.gz\n  signing: {secret: s}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Bundle.Polling.MinDelay != DefaultBundleMinDelay || c.Bundle.Polling.MaxDelay != DefaultBundleMaxDelay || c.Bundle.Signing.Algorithm != "HS256" {
		t.Errorf("defaults = %+v / %+v", c.Bundle.Polling, c.Bundle.Signing)
	}

	c = Default()
	c.SetBundleURL("http://127.0.0.1:8181/b.tar.gz")
	if err := c.Validate(); err != nil || c.Bundle.Polling.MaxDelay != DefaultBundleMaxDelay {
		t.Errorf("SetBundleURL: %v, %+v", err, c.Bundle)
	}
}

// The size limits decode by name, and hold without bundle.url (for a local policy tarball).
func TestBundleLimits(t *testing.T) {
	for _, yaml := range []string{
		"bundle:\n  url: http://127.0.0.1/b.tar.gz\n  max_compressed_bytes: 1048576\n  max_expanded_bytes: 8388608\n  max_file_bytes: 4194304\n",
		"policy: ./p.tar.gz\nbundle:\n  max_compressed_bytes: 1048576\n  max_expanded_bytes: 8388608\n  max_file_bytes: 4194304\n",
	} {
		c, err := Parse([]byte(yaml), env(nil))
		if err != nil {
			t.Fatalf("%s: %v", yaml, err)
		}
		if want := (BundleLimits{MaxCompressedBytes: 1 << 20, MaxExpandedBytes: 8 << 20, MaxFileBytes: 4 << 20}); c.Bundle.BundleLimits != want {
			t.Errorf("limits = %+v, want %+v", c.Bundle.BundleLimits, want)
		}
	}
	c, err := Parse([]byte("bundle: {url: http://127.0.0.1/b.tar.gz}"), env(nil))
	if err != nil || c.Bundle.BundleLimits != (BundleLimits{}) {
		t.Errorf("unset limits = %+v, %v (left zero: engine/policy owns the defaults)", c.Bundle.BundleLimits, err)
	}
}

func TestBundleSectionErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"policy and url", "policy: ./p\nbundle: {url: http://h/b.tar.gz}", []string{"mutually exclusive"}},
		{"no url", "bundle: {fallback: embedded}", []string{"bundle.url is required"}},
		{"bad scheme", "bundle: {url: ftp://h/b.tar.gz}", []string{"bundle.url must be an http or https URL"}},
		{"no path", "bundle: {url: http://h}", []string{"bundle.url names no bundle path"}},
		{"unknown field", "bundle: {url: http://h/b, pollng: {}}", []string{"field pollng not found"}},
		{"every bad field at once", `
bundle:
  url: http://h/b.tar.gz
  credentials: {bearer: {token: ""}}
  polling: {min_delay: 2s, max_delay: 1s, long_polling_timeout: 10ms}
  fallback: maybe
  max_staleness: -1s
  signing: {public_key: "not pem", secret: s, algorithm: XX256}
`, []string{"bundle.credentials.bearer.token", "bundle.polling.max_delay", "bundle.polling.long_polling_timeout",
			"bundle.fallback", "bundle.max_staleness", "exactly one of public_key_file, public_key or secret",
			"bundle.signing.algorithm", "bundle.signing.public_key must be a PEM"}},
		{"bad scheme with credentials", "bundle: {url: 'ftp://u:pw-s3cret@h/b.tar.gz?sig=sig-s3cret'}", []string{"ftp://REDACTED@h/b.tar.gz?sig=REDACTED"}},
		{"unparsable with credentials", "bundle: {url: 'http://u:pw-s3cret@h:port/b?sig=sig-s3cret'}", []string{"bundle.url does not parse"}},
		{"no path with credentials", "bundle: {url: 'https://u:pw-s3cret@h?sig=sig-s3cret'}", []string{"https://REDACTED@h?sig=REDACTED"}},
		{"user info and bearer", "bundle: {url: 'https://u:pw-s3cret@h/b', credentials: {bearer: {token: t0k-s3cret}}}", []string{"user info", "bearer"}},
		{"secret with RS256", "bundle: {url: http://h/b, signing: {secret: s, algorithm: RS256}}", []string{"needs a public key, not a secret"}},
		{"public key with HS256", "bundle: {url: http://h/b, signing: {public_key_file: k.pem, algorithm: HS256}}", []string{"needs a secret"}},
		{"negative limits", "bundle: {url: http://h/b, max_compressed_bytes: -1, max_expanded_bytes: -2, max_file_bytes: -3}",
			[]string{"bundle.max_compressed_bytes must not be negative", "bundle.max_expanded_bytes must not be negative", "bundle.max_file_bytes must not be negative"}},
		{"file over total", "bundle: {max_expanded_bytes: 1024, max_file_bytes: 2048}", []string{"bundle.max_file_bytes (2048) must not exceed max_expanded_bytes (1024)"}},
		{"limits do not carry the rest without url", "bundle: {max_file_bytes: 2048, fallback: embedded}", []string{"bundle.url is required"}},
		{"misspelt limit", "bundle: {url: http://h/b, max_expand_bytes: 1}", []string{"field max_expand_bytes not found"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), env(nil))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows a credential", err)
			}
		})
	}
}

// bundle.canary decodes with a local policy or a bundle server, takes the polling
// defaults, and inherits bundle.signing for a url when it sets none.
func TestBundleCanary(t *testing.T) {
	c, err := Parse([]byte("policy: ./p\nbundle:\n  canary: {path: ./candidate.tar.gz, sample: 0.25, queue: 64, workers: 2}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cc := c.Bundle.Canary; cc == nil || cc.Path != "./candidate.tar.gz" || *cc.Sample != 0.25 || cc.Queue != 64 || cc.Workers != 2 ||
		cc.Polling != (BundlePolling{}) || cc.Signing != nil || c.Bundle.URL != "" {
		t.Errorf("canary = %+v", cc)
	}
	c, err = Parse([]byte(`
bundle:
  url: https://policy.example.com/b.tar.gz
  signing: {secret: s}
  canary:
    url: https://policy.example.com/candidate.tar.gz
    sample: 1
    credentials: {bearer: {token: t}}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	cc := c.Bundle.Canary
	if cc.Polling.MinDelay != DefaultBundleMinDelay || cc.Polling.MaxDelay != DefaultBundleMaxDelay || cc.Signing == nil ||
		cc.Signing.Secret != "s" || cc.Signing.Algorithm != "HS256" || cc.Signing == c.Bundle.Signing || string(cc.Credentials.Bearer.Token) != "t" {
		t.Errorf("canary defaults = %+v, signing %+v", cc, cc.Signing)
	}
	c, err = Parse([]byte("bundle:\n  canary: {url: 'http://127.0.0.1/c.tar.gz', sample: 0, polling: {min_delay: 1s}}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cc := c.Bundle.Canary; *cc.Sample != 0 || cc.Polling.MaxDelay != 2*time.Second || cc.Signing != nil {
		t.Errorf("canary = %+v", cc)
	}
}

func TestBundleCanaryErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"neither", "bundle: {canary: {sample: 0.1}}", []string{"exactly one of path"}},
		{"both", "bundle: {canary: {path: ./c, url: http://h/c, sample: 0.1}}", []string{"exactly one of path"}},
		{"no sample", "bundle: {canary: {path: ./c}}", []string{"bundle.canary.sample is required"}},
		{"sample over 1", "bundle: {canary: {path: ./c, sample: 1.5}}", []string{"bundle.canary.sample must be between 0 and 1, got 1.5"}},
		{"negative sample", "bundle: {canary: {path: ./c, sample: -0.1}}", []string{"bundle.canary.sample must be between 0 and 1"}},
		{"url options on a path", "bundle: {canary: {path: ./c, sample: 0.1, signing: {secret: s}}}", []string{"apply to a canary url, not a path"}},
		{"bad url", "bundle: {canary: {url: 'ftp://u:pw-s3cret@h/c', sample: 0.1}}", []string{"bundle.canary.url must be an http or https URL", "ftp://REDACTED@h/c"}},
		{"no path in url", "bundle: {canary: {url: 'https://h', sample: 0.1}}", []string{"bundle.canary.url names no bundle path"}},
		{"bounds", "bundle: {canary: {path: ./c, sample: 0.1, queue: -1, workers: 65}}", []string{"bundle.canary.queue", "bundle.canary.workers"}},
		{"bad polling and signing", "bundle: {canary: {url: http://h/c, sample: 0.1, polling: {min_delay: 2s, max_delay: 1s}, signing: {secret: s, algorithm: RS256}, credentials: {bearer: {token: ''}}}}",
			[]string{"bundle.canary.polling.max_delay", "bundle.canary.signing.algorithm RS256 needs a public key", "bundle.canary.credentials.bearer.token is empty"}},
		{"misspelt", "bundle: {canary: {path: ./c, sampel: 0.1}}", []string{"field sampel not found"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), env(nil))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows a credential", err)
			}
		})
	}
}
