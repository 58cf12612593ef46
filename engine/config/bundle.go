package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/gavel-gw/gavel/adapters/registry"
	"github.com/gavel-gw/gavel/internal/scrub"
)

// Bundle-server defaults. The delays are OPA's own, so a gavel fleet puts the same load
// on a policy server as a fleet of OPAs would.
const (
	DefaultBundleMinDelay   = 60 * time.Second
	DefaultBundleMaxDelay   = 120 * time.Second
	DefaultBundlePersistDir = ".gavel/bundles"
	DefaultBundleFallback   = FallbackNone
	DefaultBundleKeyID      = "default" // the key id `opa build --signing-key` writes
	// DefaultBundleAlgorithm applies to public keys; a secret defaults to HS256.
	DefaultBundleAlgorithm = "RS256"
)

// Bundle fallbacks: what to serve when the bundle server is unreachable at startup and
// no bundle was persisted.
const (
	FallbackNone     = "none"     // start without a bundle: not ready, chat answers 503
	FallbackEmbedded = "embedded" // serve the bundle compiled into the binary
)

// Bundle configures policy distribution from a bundle server (OPA's bundle protocol).
type Bundle struct {
	// URL of the bundle: a full URL, or a service base URL when Resource is set.
	URL string `yaml:"url"`
	// Resource is the bundle's path under URL, as in OPA's bundles.<name>.resource.
	Resource    string            `yaml:"resource"`
	Credentials BundleCredentials `yaml:"credentials"`
	Polling     BundlePolling     `yaml:"polling"`
	// Signing, when set, requires every bundle to carry a valid .signatures.json.
	Signing *BundleSigning `yaml:"signing"`
	// PersistDir keeps the last bundle that verified and activated (last known good).
	PersistDir string `yaml:"persist_dir"`
	// Fallback is none or embedded.
	Fallback string `yaml:"fallback"`
	// MaxStaleness, when positive, makes /readyz fail once the last successful check with
	// the bundle server is older than this. Zero: a stale bundle is reported, not failed.
	MaxStaleness time.Duration `yaml:"max_staleness"`
	BundleLimits `yaml:",inline"`
	// Canary, when set, evaluates a candidate bundle beside the active one on a sample of
	// live requests, never executed (engine/canary). It works with a local policy and
	// with bundle.url alike.
	Canary *BundleCanary `yaml:"canary"`
}

// BundleCanary is a candidate bundle that decides a sample of live requests beside the
// active bundle, off the request path; its decisions are compared, counted and logged,
// never carried out. Promotion stays a normal bundle release.
type BundleCanary struct {
	// Path is a local bundle directory or .tar.gz, read once at startup (signatures are
	// not checked, as for policy). Exactly one of Path and URL.
	Path string `yaml:"path"`
	// URL is the candidate's full bundle URL, polled as bundle.url is (ETag, long polling,
	// verification), so a new candidate replaces the old one without a restart.
	URL string `yaml:"url"`
	// Sample is the share of live requests the candidate decides, 0 to 1. Required.
	Sample      *float64          `yaml:"sample"`
	Credentials BundleCredentials `yaml:"credentials"`
	Polling     BundlePolling     `yaml:"polling"`
	// Signing verifies the candidate's signatures; unset, the candidate from URL is held
	// to bundle.signing when that is set (a fleet that signs its bundles runs no unsigned
	// Rego, candidate or not).
	Signing *BundleSigning `yaml:"signing"`
	// Queue bounds the sampled requests waiting for the candidate (beyond it samples are
	// dropped and counted, the request never waits); 0 is canary.DefaultQueue.
	Queue int `yaml:"queue"`
	// Workers evaluate the candidate; 0 is canary.DefaultWorkers.
	Workers int `yaml:"workers"`
}

// BundleLimits bound what reading one bundle tarball may cost: the tarball itself, all its
// files decompressed, and any one of them. They hold for a bundle server's tarballs and
// for a local policy tarball alike, so they may be set without bundle.url. Zero takes
// engine/policy's defaults (16 MiB, 64 MiB, 32 MiB).
type BundleLimits struct {
	MaxCompressedBytes int64 `yaml:"max_compressed_bytes"`
	MaxExpandedBytes   int64 `yaml:"max_expanded_bytes"`
	MaxFileBytes       int64 `yaml:"max_file_bytes"`
}

// BundleCredentials authenticate gavel to the bundle server.
type BundleCredentials struct {
	Bearer *BundleBearer `yaml:"bearer"`
}

// BundleBearer sends Authorization: <scheme> <token>.
type BundleBearer struct {
	Token  registry.Secret `yaml:"token"`
	Scheme string          `yaml:"scheme"` // default Bearer
}

// BundlePolling sets how often gavel asks the server for a new bundle.
type BundlePolling struct {
	MinDelay time.Duration `yaml:"min_delay"`
	MaxDelay time.Duration `yaml:"max_delay"`
	// LongPollingTimeout, when set, asks the server to hold the request until a new
	// bundle exists or this much time passed (Prefer: wait=N, whole seconds).
	LongPollingTimeout time.Duration `yaml:"long_polling_timeout"`
}

// BundleSigning is the key that verifies bundle signatures: exactly one of
// PublicKeyFile, PublicKey (PEM) or Secret (HMAC).
type BundleSigning struct {
	PublicKeyFile string          `yaml:"public_key_file"`
	PublicKey     string          `yaml:"public_key"`
	Secret        registry.Secret `yaml:"secret"`
	Algorithm     string          `yaml:"algorithm"`
	KeyID         string          `yaml:"key_id"`
	Scope         string          `yaml:"scope"`
}

// SetBundleURL points gavel at a bundle server (the --bundle-url flag) and fills in the
// defaults a bundle section gets.
func (c *Config) SetBundleURL(u string) {
	c.Bundle.URL = u
	c.Bundle.applyDefaults()
}

// BundleURL returns the full URL of the bundle, or "" when none is configured.
func (b *Bundle) BundleURL() string {
	if b.URL == "" || b.Resource == "" {
		return b.URL
	}
	return strings.TrimRight(b.URL, "/") + "/" + strings.TrimLeft(b.Resource, "/")
}

func (b *Bundle) applyDefaults() {
	if c := b.Canary; c != nil && c.URL != "" {
		c.Polling.applyDefaults()
		if c.Signing == nil && b.Signing != nil {
			s := *b.Signing
			c.Signing = &s
		}
		c.Signing.applyDefaults()
	}
	if b.URL == "" {
		return
	}
	b.Polling.applyDefaults()
	if b.PersistDir == "" {
		b.PersistDir = DefaultBundlePersistDir
	}
	if b.Fallback == "" {
		b.Fallback = DefaultBundleFallback
	}
	b.Signing.applyDefaults()
}

func (p *BundlePolling) applyDefaults() {
	if p.MinDelay == 0 && p.MaxDelay == 0 {
		p.MinDelay, p.MaxDelay = DefaultBundleMinDelay, DefaultBundleMaxDelay
	} else if p.MaxDelay == 0 {
		p.MaxDelay = 2 * p.MinDelay
	} else if p.MinDelay == 0 {
		p.MinDelay = p.MaxDelay / 2
	}
}

func (s *BundleSigning) applyDefaults() {
	if s == nil {
		return
	}
	if s.KeyID == "" {
		s.KeyID = DefaultBundleKeyID
	}
	if s.Algorithm == "" {
		s.Algorithm = DefaultBundleAlgorithm
		if s.Secret != "" {
			s.Algorithm = "HS256"
		}
	}
}

// validateBundle reports every bad bundle setting, each naming its field.
func (c *Config) validateBundle() []error {
	b := &c.Bundle
	errs := b.BundleLimits.validate()
	errs = append(errs, b.Canary.validate()...)
	if b.URL == "" {
		if b.Resource != "" || b.Signing != nil || b.Credentials.Bearer != nil || b.Fallback != "" ||
			b.PersistDir != "" || b.MaxStaleness != 0 || b.Polling != (BundlePolling{}) {
			errs = append(errs, errors.New("bundle.url is required when the bundle section is set (only the size limits and canary apply without it)"))
		}
		return errs
	}
	if c.Policy != "" {
		errs = append(errs, errors.New("policy and bundle.url are mutually exclusive: serve a local bundle or poll a bundle server, not both"))
	}
	errs = append(errs, validateBundleURL("bundle.url", b.BundleURL())...)
	errs = append(errs, b.Credentials.validate("bundle", b.BundleURL())...)
	errs = append(errs, b.Polling.validate("bundle.polling")...)
	if b.Fallback != FallbackNone && b.Fallback != FallbackEmbedded {
		errs = append(errs, fmt.Errorf("bundle.fallback must be none or embedded, got %q", b.Fallback))
	}
	if b.MaxStaleness < 0 {
		errs = append(errs, fmt.Errorf("bundle.max_staleness must not be negative, got %v", b.MaxStaleness))
	}
	errs = append(errs, b.Signing.validate("bundle.signing")...)
	return errs
}

// validateBundleURL checks a bundle URL without ever showing its credentials.
func validateBundleURL(field, raw string) []error {
	if u, err := url.Parse(raw); err != nil {
		// url.Parse's error quotes the URL, credentials and all.
		return []error{fmt.Errorf("%s does not parse as a URL (not shown: it may hold credentials)", field)}
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return []error{fmt.Errorf("%s must be an http or https URL with a host, got %q", field, scrub.URL(raw))}
	} else if strings.Trim(u.Path, "/") == "" {
		if field == "bundle.url" {
			return []error{fmt.Errorf("bundle.url names no bundle path (set a full URL or bundle.resource), got %q", scrub.URL(raw))}
		}
		return []error{fmt.Errorf("%s names no bundle path, got %q", field, scrub.URL(raw))}
	}
	return nil
}

func (cr BundleCredentials) validate(prefix, rawURL string) []error {
	var errs []error
	if br := cr.Bearer; br != nil && br.Token == "" {
		errs = append(errs, fmt.Errorf("%s.credentials.bearer.token is empty", prefix))
	}
	if u, err := url.Parse(rawURL); err == nil && u.User != nil && cr.Bearer != nil {
		errs = append(errs, fmt.Errorf("%s.url's user info (sent as basic authentication) and %s.credentials.bearer are exclusive: use one", prefix, prefix))
	}
	return errs
}

func (p BundlePolling) validate(field string) []error {
	var errs []error
	if p.MinDelay <= 0 {
		errs = append(errs, fmt.Errorf("%s.min_delay must be positive, got %v", field, p.MinDelay))
	}
	if p.MaxDelay < p.MinDelay {
		errs = append(errs, fmt.Errorf("%s.max_delay (%v) must not be below min_delay (%v)", field, p.MaxDelay, p.MinDelay))
	}
	if p.LongPollingTimeout != 0 && p.LongPollingTimeout < time.Second {
		errs = append(errs, fmt.Errorf("%s.long_polling_timeout must be at least 1s (the protocol counts whole seconds), got %v", field, p.LongPollingTimeout))
	}
	return errs
}

func (s *BundleSigning) validate(field string) []error {
	if s == nil {
		return nil
	}
	var errs []error
	n := 0
	for _, set := range []bool{s.PublicKeyFile != "", s.PublicKey != "", s.Secret != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		errs = append(errs, fmt.Errorf("%s needs exactly one of public_key_file, public_key or secret", field))
	}
	hmac := strings.HasPrefix(s.Algorithm, "HS")
	switch s.Algorithm {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "HS256", "HS384", "HS512":
		if hmac && s.Secret == "" && n == 1 {
			errs = append(errs, fmt.Errorf("%s.algorithm %s needs a secret, not a public key", field, s.Algorithm))
		}
		if !hmac && s.Secret != "" {
			errs = append(errs, fmt.Errorf("%s.algorithm %s needs a public key, not a secret", field, s.Algorithm))
		}
	default:
		errs = append(errs, fmt.Errorf("%s.algorithm must be RS256, ES256, HS256 (or their 384/512 and PS variants), got %q", field, s.Algorithm))
	}
	if s.PublicKey != "" && !strings.Contains(s.PublicKey, "-----BEGIN") {
		errs = append(errs, fmt.Errorf("%s.public_key must be a PEM block (-----BEGIN PUBLIC KEY-----)", field))
	}
	return errs
}

// Canary bounds.
const (
	maxCanaryQueue   = 1 << 20
	maxCanaryWorkers = 64
)

func (c *BundleCanary) validate() []error {
	if c == nil {
		return nil
	}
	var errs []error
	switch {
	case (c.Path == "") == (c.URL == ""):
		errs = append(errs, errors.New("bundle.canary needs exactly one of path (a bundle directory or .tar.gz) or url (a bundle server)"))
	case c.URL != "":
		errs = append(errs, validateBundleURL("bundle.canary.url", c.URL)...)
		errs = append(errs, c.Credentials.validate("bundle.canary", c.URL)...)
		errs = append(errs, c.Polling.validate("bundle.canary.polling")...)
		errs = append(errs, c.Signing.validate("bundle.canary.signing")...)
	default:
		if c.Credentials.Bearer != nil || c.Polling != (BundlePolling{}) || c.Signing != nil {
			errs = append(errs, errors.New("bundle.canary.credentials, polling and signing apply to a canary url, not a path"))
		}
	}
	if c.Sample == nil {
		errs = append(errs, errors.New("bundle.canary.sample is required: the share of live requests the candidate decides, 0 to 1"))
	} else if s := *c.Sample; !(s >= 0 && s <= 1) {
		errs = append(errs, fmt.Errorf("bundle.canary.sample must be between 0 and 1, got %v", s))
	}
	if c.Queue < 0 || c.Queue > maxCanaryQueue {
		errs = append(errs, fmt.Errorf("bundle.canary.queue must be 1–%d (0: the default), got %d", maxCanaryQueue, c.Queue))
	}
	if c.Workers < 0 || c.Workers > maxCanaryWorkers {
		errs = append(errs, fmt.Errorf("bundle.canary.workers must be 1–%d (0: the default), got %d", maxCanaryWorkers, c.Workers))
	}
	return errs
}

func (l BundleLimits) validate() []error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{{"max_compressed_bytes", l.MaxCompressedBytes}, {"max_expanded_bytes", l.MaxExpandedBytes}, {"max_file_bytes", l.MaxFileBytes}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("bundle.%s must not be negative, got %d", f.name, f.v))
		}
	}
	if l.MaxFileBytes > 0 && l.MaxExpandedBytes > 0 && l.MaxFileBytes > l.MaxExpandedBytes {
		errs = append(errs, fmt.Errorf("bundle.max_file_bytes (%d) must not exceed max_expanded_bytes (%d)", l.MaxFileBytes, l.MaxExpandedBytes))
	}
	return errs
}
