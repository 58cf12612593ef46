package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gavel-gw/gavel/adapters/registry"
	"github.com/gavel-gw/gavel/engine/executor"
	"github.com/gavel-gw/gavel/engine/ledger/redisstore"
	"github.com/gavel-gw/gavel/engine/pipeline"
	"github.com/gavel-gw/gavel/engine/policy"
)

// Defaults.
const (
	DefaultListen = "127.0.0.1:8080"
	// DefaultMaxBodyBytes fits a vision request: OpenAI accepts 20 MB images, which base64
	// turns into about 27 MB of JSON. Runaway uploads still stop here.
	DefaultMaxBodyBytes    = 32 << 20
	DefaultRequestTimeout  = 10 * time.Minute
	DefaultShutdownTimeout = 30 * time.Second
	DefaultLogLevel        = "info"
)

// Config is gavel.yaml.
type Config struct {
	// Listen is the address to serve on.
	Listen string `yaml:"listen"`
	// Policy is a bundle directory or .tar.gz; empty serves the embedded default bundle.
	Policy string `yaml:"policy"`
	// KeysFile lists virtual keys (hashes only) in addition to the bundle's data.gavel.keys.
	KeysFile string `yaml:"keys_file"`
	// MaxBodyBytes caps a request body; larger bodies get 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// RequestTimeout bounds a whole request unless the policy sets limits.timeout_ms.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// ShutdownTimeout is how long in-flight requests may finish on SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// WriteStallTimeout ends a request whose client accepted none of a write's bytes for
	// this long (it stopped reading), even before the request's deadline; 0 is
	// server.DefaultWriteStallTimeout.
	WriteStallTimeout time.Duration `yaml:"write_stall_timeout"`
	// IdleTimeout closes a kept-alive client connection idle this long; 0 is
	// app.DefaultIdleTimeout.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxIdleConns bounds the kept-alive client connections waiting for a next request:
	// past it the longest idle is closed; 0 is app.DefaultMaxIdleConns.
	MaxIdleConns int `yaml:"max_idle_conns"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// Providers declares upstreams beyond those found in the environment; a provider here
	// replaces an environment one of the same name.
	Providers []Provider `yaml:"providers"`
	// Ledger is where budgets and rate limits are kept.
	Ledger Ledger `yaml:"ledger"`
	// DecisionLog says where decision-log events go and what they hide.
	DecisionLog DecisionLog `yaml:"decision_log"`
	// Bundle polls a bundle server for the policy instead of Policy's local bundle.
	Bundle Bundle `yaml:"bundle"`
	// CORS lets browser apps on other origins call the API; off unless origins are listed.
	CORS CORS `yaml:"cors"`
	// Shadow bounds shadow (mirrored) traffic and says whose budget pays for it.
	Shadow Shadow `yaml:"shadow"`
	// Metrics says where /metrics is served and whether it needs a token.
	Metrics Metrics `yaml:"metrics"`
	// Responses configures the Responses API's stored responses.
	Responses Responses `yaml:"responses"`
	// Faults lets policy run chaos drills (a decision's fault field); off by default.
	Faults Faults `yaml:"faults"`
	// Cache bounds the response cache the policy turns on (decision.cache) and the
	// Idempotency-Key retries.
	Cache Cache `yaml:"cache"`
}

// Cache bounds the response cache (docs/cache.md). Zero values take engine/cache's and
// engine/pipeline's defaults. With ledger.store redis the cache's second level is that
// Redis, shared by the replicas, unless local_only.
type Cache struct {
	MaxBytes       int64         `yaml:"max_bytes"`       // the in-memory level's bound, encoded bytes; default 64 MiB
	MaxEntryBytes  int           `yaml:"max_entry_bytes"` // larger answers are not stored; default 1 MiB
	IdempotencyTTL time.Duration `yaml:"idempotency_ttl"` // how long an Idempotency-Key's answer is kept; default 24h
	LocalOnly      bool          `yaml:"local_only"`      // no Redis level even with ledger.store redis
	// SemanticMaxBytes bounds the semantic index's vectors (per replica); default 16 MiB.
	SemanticMaxBytes int64 `yaml:"semantic_max_bytes"`
	// SemanticEmbedTimeout bounds the embeddings call of a semantic lookup (a timeout is a
	// miss); default 2s.
	SemanticEmbedTimeout time.Duration `yaml:"semantic_embed_timeout"`
}

// Faults configures chaos drills by policy.
type Faults struct {
	// Enabled lets decisions inject faults. Off (the default), a bundle whose decisions
	// carry a fault is refused at activation, and such a decision is refused per request
	// (500 policy_error): a drill runs only where the operator asked for drills.
	Enabled bool `yaml:"enabled"`
}

// Responses configures POST /v1/responses.
type Responses struct {
	// StoreTTL is how long a stored response (store: true, OpenAI's default) stays
	// readable and continuable (previous_response_id); 0 is server.DefaultResponsesTTL
	// (30 days, as OpenAI keeps them). Responses live in the ledger's store.
	StoreTTL time.Duration `yaml:"store_ttl"`
}

// CORS configures cross-origin requests from browsers.
type CORS struct {
	// AllowedOrigins are origins such as https://app.example.com, or "*" for any. A
	// browser app calling gavel directly holds a virtual key: prefer a key of its own, with
	// the budgets and rate limits a public client deserves.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

func (c CORS) validate() []error {
	var errs []error
	for i, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("cors.allowed_origins[%d]: %q is not an origin (scheme://host[:port]) or \"*\"", i, o))
		}
	}
	return errs
}

// Shadow configures shadow requests. Zero values take the executor's defaults
// (executor.DefaultShadowWorkers and friends).
type Shadow struct {
	Workers        int           `yaml:"workers"`         // concurrent shadow calls; default 4
	Queue          int           `yaml:"queue"`           // waiting shadows beyond which more are dropped; default 64
	Timeout        time.Duration `yaml:"timeout"`         // deadline of one shadow call; default 60s
	SimilarityWait time.Duration `yaml:"similarity_wait"` // how long a shadow waits for the primary's answer; default 2m
	// BudgetScope is who pays (pipeline.ShadowCharges): "shadow" (the default: scope
	// shadow, id = experiment, capped by bundle budgets of scope shadow), "caller" (the
	// request's own budgets) or "none".
	BudgetScope string `yaml:"budget_scope"`
}

// Executor returns the executor's shadow bounds.
func (s Shadow) Executor() executor.ShadowConfig {
	return executor.ShadowConfig{Workers: s.Workers, Queue: s.Queue, Timeout: s.Timeout, SimilarityWait: s.SimilarityWait}
}

// Ledger configures the budget and rate-limit store.
type Ledger struct {
	// Store is "file" (the default: one bbolt file, a restart loses no spend), "redis"
	// (many replicas share budgets and limits) or "memory" (tests; lost on restart).
	Store string `yaml:"store"`
	// Path of the file store; default DefaultLedgerPath.
	Path  string      `yaml:"path"`
	Redis RedisConfig `yaml:"redis"`
	// FailureMode when Redis is unreachable: "closed" (deny; the default) or "open"
	// (serve from a local in-memory ledger and count it in gavel_ledger_unavailable_total).
	FailureMode string `yaml:"failure_mode"`
}

// RedisConfig reaches the shared store.
type RedisConfig struct {
	Addr     string          `yaml:"addr"`
	Username string          `yaml:"username"`
	Password registry.Secret `yaml:"password"` // prints as "[redacted]"
	DB       int             `yaml:"db"`
	// DialTimeout, ReadTimeout and WriteTimeout bound one Redis call's connect, reply and
	// send before the failure mode applies; 0 means redisstore.DefaultDialTimeout and
	// friends (300 ms each). Raise them where Redis or gavel may be starved of CPU and
	// part of a burst is refused with 503 ledger_unavailable for want of a reply.
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
}

// MaxRedisTimeout bounds ledger.redis.*_timeout: while Redis does not answer, every request
// that needs the ledger waits this long before it is refused (or served from the fallback).
const MaxRedisTimeout = 10 * time.Second

// Timeouts are the ledger's Redis client timeouts (zero fields: redisstore's defaults).
func (r RedisConfig) Timeouts() redisstore.Timeouts {
	return redisstore.Timeouts{Dial: r.DialTimeout, Read: r.ReadTimeout, Write: r.WriteTimeout}
}

func (r RedisConfig) validate() []error {
	var errs []error
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"dial_timeout", r.DialTimeout}, {"read_timeout", r.ReadTimeout}, {"write_timeout", r.WriteTimeout}} {
		if t.d < 0 || t.d > MaxRedisTimeout {
			errs = append(errs, fmt.Errorf("ledger.redis.%s must be between 0 (the default, %s) and %s, got %s",
				t.name, redisstore.DefaultReadTimeout, MaxRedisTimeout, t.d))
		}
	}
	return errs
}

// DefaultLedgerPath is where the file store lives unless configured.
const DefaultLedgerPath = ".gavel/ledger.db"

// Provider is one upstream with its resilience settings.
type Provider struct {
	registry.Spec `yaml:",inline"`
	// Timeout bounds one attempt (a stream: to its first chunk). Default 60s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxRetries at the same target; default 2. A pointer so that 0 can be said.
	MaxRetries    *int             `yaml:"max_retries"`
	Backoff       time.Duration    `yaml:"backoff"`
	MaxBackoff    time.Duration    `yaml:"max_backoff"`
	MaxRetryAfter time.Duration    `yaml:"max_retry_after"`
	Breaker       executor.Breaker `yaml:"breaker"`
	// HealthCheck, when set, probes the provider with a one-token request and feeds the
	// verdict into input.providers.<name>.healthy. Probes cost real tokens on paid APIs.
	HealthCheck *HealthCheck `yaml:"health_check"`
	// Models are the models this provider serves; clients reach them by name, by alias or
	// as provider/name (the policy sees them as input.providers.<name>.catalog).
	Models []policy.Model `yaml:"models"`
	// DiscoverModels asks the provider for its model list (GET /v1/models) at startup and
	// every discovery_interval; listed models join the declared ones, which win.
	DiscoverModels bool `yaml:"discover_models"`
	// DiscoveryInterval is how often discovery asks again; DefaultDiscoveryInterval when 0.
	DiscoveryInterval time.Duration `yaml:"discovery_interval"`
	// DropParams is what happens to request fields this provider cannot express (a
	// translated protocol: anthropic, gemini): "error" (the default) refuses the request
	// with a 400 naming them, "drop" sends it without them and says so in
	// X-Gavel-Dropped-Params and the decision log. OpenAI-protocol providers receive every
	// field unchanged and never drop any.
	DropParams executor.DropParams `yaml:"drop_params"`
}

// DefaultDiscoveryInterval is how often a provider with discover_models is asked again
// for its models: new deployments appear within it, at one small request per interval.
const DefaultDiscoveryInterval = 10 * time.Minute

// HealthCheck configures an active probe.
type HealthCheck struct {
	Model            string        `yaml:"model"`             // upstream model to ask; required
	Interval         time.Duration `yaml:"interval"`          // default 30s
	Timeout          time.Duration `yaml:"timeout"`           // default 10s
	FailureThreshold int           `yaml:"failure_threshold"` // default 2
}

// Resilience returns the provider's executor settings with defaults filled in.
func (p Provider) Resilience() executor.Resilience {
	r := executor.Resilience{Timeout: p.Timeout, MaxRetries: executor.DefaultMaxRetries, Backoff: p.Backoff,
		MaxBackoff: p.MaxBackoff, MaxRetryAfter: p.MaxRetryAfter, Breaker: p.Breaker}
	if p.MaxRetries != nil {
		r.MaxRetries = *p.MaxRetries
	}
	return r.WithDefaults()
}

// Default returns the configuration used when no file is given.
func Default() *Config {
	c := &Config{}
	c.applyDefaults()
	return c
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	if c.Ledger.Store == "" {
		c.Ledger.Store = "file"
	}
	if c.Ledger.Store == "file" && c.Ledger.Path == "" {
		c.Ledger.Path = DefaultLedgerPath
	}
	if c.Ledger.FailureMode == "" {
		c.Ledger.FailureMode = "closed"
	}
	c.Bundle.applyDefaults()
	// Shadow bounds, the shadow budget scope and the decision log's sizes are left as
	// written: zero means "the default of the package that uses it" (executor, pipeline,
	// decisionlog), so each default lives in one place.
}

// Load reads, expands and strictly decodes a config file.
func Load(path string, getenv func(string) string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(raw, getenv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse is Load on bytes.
func Parse(raw []byte, getenv func(string) string) (*Config, error) {
	expanded, err := expand(raw, getenv)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	c := &Config{}
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

var envRE = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expand replaces ${VAR} and ${VAR:-default}; $$ is a literal $. An unset variable without
// a default is an error naming it and its line: a missing API key should fail at startup,
// not as a 401 from upstream later.
func expand(raw []byte, getenv func(string) string) ([]byte, error) {
	var errs []error
	out := envRE.ReplaceAllFunc(raw, func(m []byte) []byte {
		if string(m) == "$$" {
			return []byte("$")
		}
		sub := envRE.FindSubmatch(m)
		name := string(sub[1])
		if v := getenv(name); v != "" {
			return []byte(v)
		}
		if sub[2] != nil {
			return sub[3]
		}
		line := 1 + bytes.Count(raw[:bytes.Index(raw, m)], []byte("\n"))
		errs = append(errs, fmt.Errorf("line %d: environment variable %s is not set", line, name))
		return nil
	})
	return out, errors.Join(errs...)
}

// Validate reports every invalid setting, each naming its field.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %w", err))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("max_body_bytes must be at least 1024, got %d", c.MaxBodyBytes))
	}
	if c.RequestTimeout < 0 || c.ShutdownTimeout < 0 || c.WriteStallTimeout < 0 || c.IdleTimeout < 0 || c.MaxIdleConns < 0 {
		errs = append(errs, errors.New("request_timeout, shutdown_timeout, write_stall_timeout, idle_timeout and max_idle_conns must not be negative"))
	}
	errs = append(errs, c.CORS.validate()...)
	if c.Cache.MaxBytes < 0 || c.Cache.MaxEntryBytes < 0 || c.Cache.IdempotencyTTL < 0 || c.Cache.SemanticMaxBytes < 0 || c.Cache.SemanticEmbedTimeout < 0 {
		errs = append(errs, errors.New("cache.max_bytes, cache.max_entry_bytes, cache.idempotency_ttl, cache.semantic_max_bytes and cache.semantic_embed_timeout must not be negative"))
	}
	if c.Responses.StoreTTL < 0 {
		errs = append(errs, fmt.Errorf("responses.store_ttl must not be negative, got %s", c.Responses.StoreTTL))
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level must be debug, info, warn or error, got %q", c.LogLevel))
	}
	switch c.Ledger.Store {
	case "file", "memory":
	case "redis":
		if c.Ledger.Redis.Addr == "" {
			errs = append(errs, errors.New("ledger.redis.addr is required with ledger.store: redis"))
		}
		errs = append(errs, c.Ledger.Redis.validate()...)
	default:
		errs = append(errs, fmt.Errorf("ledger.store must be file, redis or memory, got %q", c.Ledger.Store))
	}
	if c.Ledger.FailureMode != "closed" && c.Ledger.FailureMode != "open" {
		errs = append(errs, fmt.Errorf("ledger.failure_mode must be closed or open, got %q", c.Ledger.FailureMode))
	}
	errs = append(errs, c.DecisionLog.validate()...)
	errs = append(errs, c.validateBundle()...)
	errs = append(errs, c.validateMetrics()...)
	if c.Shadow.Workers < 0 || c.Shadow.Workers > 1024 {
		errs = append(errs, fmt.Errorf("shadow.workers must be 1–1024 (0: the default), got %d", c.Shadow.Workers))
	}
	if c.Shadow.Queue < 0 || c.Shadow.Queue > 1<<20 {
		errs = append(errs, fmt.Errorf("shadow.queue must be 1–%d (0: the default), got %d", 1<<20, c.Shadow.Queue))
	}
	if c.Shadow.Timeout < 0 || c.Shadow.SimilarityWait < 0 {
		errs = append(errs, errors.New("shadow.timeout and shadow.similarity_wait must not be negative"))
	}
	switch {
	case c.Shadow.BudgetScope == "", slices.Contains(pipeline.ShadowCharges, c.Shadow.BudgetScope):
	default:
		errs = append(errs, fmt.Errorf("shadow.budget_scope must be shadow, caller or none, got %q", c.Shadow.BudgetScope))
	}
	seen := map[string]bool{}
	for i, p := range c.Providers {
		field := fmt.Sprintf("providers[%d]", i)
		if p.Name != "" {
			field = fmt.Sprintf("providers[%d] (%s)", i, p.Name)
		}
		if seen[p.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate name", field))
		}
		seen[p.Name] = true
		if err := p.Spec.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
		if err := p.Resilience().Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
		}
		errs = append(errs, p.validateModels(field)...)
		if !p.DropParams.Valid() {
			errs = append(errs, fmt.Errorf("%s: drop_params must be error or drop, got %q", field, p.DropParams))
		}
		if hc := p.HealthCheck; hc != nil && (hc.Model == "" || hc.Interval < 0 || hc.Timeout < 0 || hc.FailureThreshold < 0) {
			errs = append(errs, fmt.Errorf("%s: health_check needs a model and non-negative interval, timeout and failure_threshold", field))
		}
	}
	return errors.Join(errs...)
}

// validateModels checks the provider's declared models and discovery settings.
func (p Provider) validateModels(field string) []error {
	var errs []error
	names := map[string]bool{}
	for i, m := range p.Models {
		if err := m.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s.models[%d]: %w", field, i, err))
		}
		if names[m.Name] {
			errs = append(errs, fmt.Errorf("%s.models[%d]: duplicate name %q", field, i, m.Name))
		}
		names[m.Name] = true
	}
	if p.DiscoveryInterval < 0 || (p.DiscoveryInterval > 0 && !p.DiscoverModels) {
		errs = append(errs, fmt.Errorf("%s: discovery_interval needs discover_models: true and must not be negative", field))
	}
	return errs
}

// Resolve returns the providers to run: the environment's, replaced by the file's of the
// same name, plus the file's others. With none at all it returns the mock provider and
// says so in the notes.
func (c *Config) Resolve(getenv func(string) string) (providers []Provider, notes []string) {
	env, notes := registry.FromEnv(getenv)
	byName := map[string]bool{}
	for _, p := range c.Providers {
		byName[p.Name] = true
	}
	for _, s := range env {
		if byName[s.Name] {
			notes = append(notes, fmt.Sprintf("provider %q from the environment is replaced by the config file's", s.Name))
			continue
		}
		providers = append(providers, Provider{Spec: s})
	}
	providers = append(providers, c.Providers...)
	if len(providers) == 0 {
		providers = append(providers, Provider{Spec: registry.MockSpec()})
		notes = append(notes, "NO PROVIDER CONFIGURED: serving the built-in mock provider (deterministic fake replies). "+
			"Set OPENAI_API_KEY or declare providers in gavel.yaml to reach a real model.")
	}
	return providers, notes
}

// IsLoopback reports whether addr only accepts connections from this machine.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
