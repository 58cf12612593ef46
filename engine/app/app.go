package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/registry"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/cache"
	"github.com/gavel-gw/gavel/engine/canary"
	"github.com/gavel-gw/gavel/engine/config"
	"github.com/gavel-gw/gavel/engine/decisionlog"
	"github.com/gavel-gw/gavel/engine/executor"
	"github.com/gavel-gw/gavel/engine/httpframe"
	"github.com/gavel-gw/gavel/engine/keys"
	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/ledger/boltstore"
	"github.com/gavel-gw/gavel/engine/ledger/memstore"
	"github.com/gavel-gw/gavel/engine/ledger/redisstore"
	"github.com/gavel-gw/gavel/engine/pii"
	"github.com/gavel-gw/gavel/engine/pipeline"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/policy/remote"
	"github.com/gavel-gw/gavel/engine/server"
	"github.com/gavel-gw/gavel/engine/signals"
	"github.com/gavel-gw/gavel/engine/telemetry"
	"github.com/gavel-gw/gavel/engine/tracing"
	"github.com/gavel-gw/gavel/engine/traffic"
	"github.com/gavel-gw/gavel/internal/scrub"
)

// Gateway is an assembled gavel.
type Gateway struct {
	cfg       *config.Config
	log       *slog.Logger
	engine    *policy.Engine
	planner   *policy.Planner
	keys      *auth.Keys
	providers map[string]adapters.Provider
	srv       *server.Server
	pipe      *pipeline.Pipeline
	cache     *cache.Cache
	metrics   *telemetry.Metrics
	exec      *executor.Executor
	dlog      *decisionlog.Logger
	ledger    ledger.Store
	managed   *keys.Manager // nil: the store keeps no records
	tracker   *signals.Tracker
	traffic   *traffic.Aggregator // the admin traffic summary, fed by the decision log
	probes    []probe
	tracing   *tracing.Tracing // nil: tracing off
	remote    *remote.Client   // nil: the bundle is local
	canary    *canary.Canary   // nil: no bundle.canary
	// canaryRemote polls the canary candidate's bundle server; nil when it is a path.
	canaryRemote *remote.Client
	resil        map[string]executor.Resilience
	drop         map[string]executor.DropParams // drop_params per provider
	names        []string                       // configured provider names, sorted
	catalog      *policy.Catalog
	listers      []lister     // providers with discover_models
	metricsL     net.Listener // nil: /metrics is on the main listener
	opts         options
}

// lister is a provider whose models are discovered.
type lister struct {
	name     string
	list     adapters.ModelLister
	interval time.Duration
}

type probe struct {
	name  string
	cfg   signals.ProbeConfig
	check func(context.Context) error
}

// New builds a gateway in the order its parts depend on each other: tracing, providers,
// keys, policy (engine, planner, bundle), stores (ledger, decision log), then the request
// path (executor, pipeline, HTTP server). getenv supplies the environment (os.Getenv in
// production). On error everything built so far is closed.
func New(ctx context.Context, cfg *config.Config, getenv func(string) string, log *slog.Logger, opts ...Option) (*Gateway, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{cfg: cfg, log: log, metrics: telemetry.NewMetrics(), providers: map[string]adapters.Provider{}, tracker: signals.New(0),
		traffic: traffic.New(0, 0)}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	g.opts = o
	steps := []func() error{
		func() (err error) { g.tracing, err = setupTracing(ctx, getenv, log, o); return err },
		func() error { return g.buildProviders(getenv) },
		g.loadKeys,
		func() error { return g.loadPolicy(ctx) },
		func() error { g.discoverAll(ctx); return nil },
		g.openStores,
		func() error { return g.buildCanary(ctx) },
		func() error { return g.manageKeys(ctx) },
		g.buildRequestPath,
		g.openMetrics,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			g.Close()
			return nil, err
		}
	}
	return g, nil
}

// buildProviders makes the configured providers through the registry, with their
// resilience settings and health probes.
func (g *Gateway) buildProviders(getenv func(string) string) error {
	specs, notes := g.cfg.Resolve(getenv)
	for _, n := range notes {
		g.log.Warn(n)
	}
	g.resil = map[string]executor.Resilience{}
	declared := map[string][]policy.Model{}
	g.drop = map[string]executor.DropParams{}
	for _, p := range specs {
		prov, err := registry.New(p.Spec)
		if err != nil {
			return err
		}
		if len(p.Models) > 0 {
			declared[p.Name] = p.Models
		}
		if p.DiscoverModels {
			l, ok := prov.(adapters.ModelLister)
			if !ok {
				return fmt.Errorf("provider %s: discover_models: a provider of type %s cannot list its models; declare them under models", p.Name, p.Type)
			}
			g.listers = append(g.listers, lister{name: p.Name, list: l, interval: cmp.Or(p.DiscoveryInterval, config.DefaultDiscoveryInterval)})
		}
		g.providers[p.Name] = prov
		g.tracing.Instrument(prov)
		g.resil[p.Name] = p.Resilience()
		g.drop[p.Name] = p.DropParams
		g.names = append(g.names, p.Name)
		if hc := p.HealthCheck; hc != nil {
			one, model := 1, hc.Model
			g.probes = append(g.probes, probe{name: p.Name,
				cfg: signals.ProbeConfig{Interval: hc.Interval, Timeout: hc.Timeout, FailureThreshold: hc.FailureThreshold},
				check: func(ctx context.Context) error {
					_, err := prov.Chat(ctx, &adapters.ChatRequest{Model: model, MaxTokens: &one,
						Messages: []adapters.Message{{Role: "user", Content: adapters.TextContent("ping")}}})
					return err
				}})
		}
	}
	sort.Strings(g.names)
	g.catalog = policy.NewCatalog(declared)
	g.log.Info("providers configured", "providers", strings.Join(g.names, ","))
	return nil
}

// DiscoveryTimeout bounds one model listing. At startup the listings run concurrently,
// so a provider that does not answer delays startup by at most this long; its declared
// models serve meanwhile, and it is asked again at its next interval.
const DiscoveryTimeout = 10 * time.Second

// discoverAll asks every provider with discover_models for its models, concurrently.
func (g *Gateway) discoverAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, l := range g.listers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.discover(ctx, l)
		}()
	}
	wg.Wait()
}

// discover asks one provider for its models and hands them to the catalog. A failure
// keeps what the provider listed last (nothing at startup) and is logged.
func (g *Gateway) discover(ctx context.Context, l lister) {
	ctx, cancel := context.WithTimeout(ctx, DiscoveryTimeout)
	defer cancel()
	models, err := l.list.ListModels(ctx)
	if err != nil {
		g.log.Warn("model discovery failed; keeping the models known so far", "provider", l.name, "err", err)
		return
	}
	names := make([]string, len(models))
	for i, m := range models {
		names[i] = m.ID
	}
	if g.catalog.SetDiscovered(l.name, names) {
		g.log.Info("models discovered", "provider", l.name, "models", len(names))
	}
}

// rediscover asks l again every interval until ctx ends.
func (g *Gateway) rediscover(ctx context.Context, l lister) {
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.discover(ctx, l)
		}
	}
}

// loadKeys reads the keys file; the bundle's keys join them when it activates.
func (g *Gateway) loadKeys() error {
	var fileKeys map[string]policy.KeyRecord
	if g.cfg.KeysFile != "" {
		var err error
		if fileKeys, err = auth.LoadFile(g.cfg.KeysFile); err != nil {
			return err
		}
	}
	g.keys = auth.New(fileKeys, config.IsLoopback(g.cfg.Listen))
	return nil
}

// loadPolicy starts the policy engine and its planner and activates the first bundle:
// from the bundle server, else the configured path or the embedded default.
func (g *Gateway) loadPolicy(ctx context.Context) error {
	g.engine = policy.New()
	g.engine.EnableFaults(g.cfg.Faults.Enabled)
	g.engine.OnActivate(func(rev *policy.Revision) {
		g.keys.SetBundleKeys(rev.Data.Keys)
		g.metrics.Bundle(rev.ID, rev.Source, rev.Activated)
		g.log.Info("policy bundle activated", "revision", rev.ID, "source", rev.Source, "keys", g.keys.Count())
	})
	g.planner = policy.NewPlanner(g.engine, g.tracker, 0, g.log)
	g.planner.UseCatalog(g.catalog)
	if g.cfg.Bundle.URL != "" {
		if err := g.startRemote(ctx); err != nil {
			return err
		}
	} else {
		b, source, err := policy.LoadLimited(g.cfg.Policy, bundleLimits(g.cfg.Bundle.BundleLimits))
		if err != nil {
			return err
		}
		if _, err := g.engine.Activate(ctx, b, source); err != nil {
			return err
		}
	}
	return nil
}

// checkOpen refuses to serve a non-loopback address without any key, and warns when
// gavel runs open on loopback. Without an active bundle its keys are unknown yet, and
// with managed keys the store could not be read yet: requests fail closed until they come.
func (g *Gateway) checkOpen(managedRead bool) error {
	if g.engine.Active() == nil || !managedRead {
		return nil
	}
	if g.keys.Count() == 0 && !config.IsLoopback(g.cfg.Listen) {
		return fmt.Errorf("refusing to listen on %s without virtual keys: configure keys (keys_file, the bundle's data.gavel.keys, or the keys API) or listen on loopback", g.cfg.Listen)
	}
	if g.keys.Open() {
		g.log.Warn("no virtual keys for API requests configured: gavel is OPEN to anyone who can reach " + g.cfg.Listen + " (loopback only)")
	}
	return nil
}

// openStores opens the budget and rate-limit ledger and the decision log.
func (g *Gateway) openStores() (err error) {
	if g.ledger, err = openLedger(g.cfg.Ledger, g.metrics, g.log); err != nil {
		return err
	}
	g.dlog, err = openDecisionLog(g.cfg.DecisionLog, g.metrics, g.traffic.Add)
	return err
}

// manageKeys loads the managed keys from the ledger's store (engine/keys) and, with
// WithBootstrapAdmin on loopback, makes the first admin key. A store that cannot be read
// now (Redis down) is not fatal: the keys are loaded when it answers.
func (g *Gateway) manageKeys(ctx context.Context) error {
	m, err := keys.New(g.ledger, g.keys, keys.Options{Log: g.log, PollInterval: g.opts.keysPoll})
	if err != nil {
		g.log.Warn("key management off: the ledger store keeps no records", "store", g.cfg.Ledger.Store)
		return g.checkOpen(true)
	}
	g.managed = m
	if err := m.Reload(ctx); err != nil {
		g.log.Warn("managed keys: cannot read the store; they will be loaded when it answers", "err", err)
		return g.checkOpen(false)
	}
	if err := g.bootstrapAdmin(ctx); err != nil {
		return err
	}
	return g.checkOpen(true)
}

// bootstrapAdmin makes and prints the first admin key (WithBootstrapAdmin, on loopback).
func (g *Gateway) bootstrapAdmin(ctx context.Context) error {
	m := g.managed
	if g.opts.bootstrap == nil {
		return nil
	}
	url := "http://" + g.cfg.Listen
	if !config.IsLoopback(g.cfg.Listen) {
		if g.keys.Admins() == 0 {
			g.log.Info("no admin key configured: the console and the keys API need one; add one to the keys file (gavel keys new --role admin)")
		}
		return nil
	}
	k, err := m.EnsureAdmin(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap admin key: %w", err)
	}
	if k.Secret != "" {
		// Written to the terminal, not the structured log: the secret is shown this once.
		fmt.Fprintf(g.opts.bootstrap, "\ngavel: console %s/console\ngavel: admin key (shown once; stored hashed as %s): %s\n\n", url, k.ID, k.Secret)
	} else {
		g.log.Info("console", "url", url+"/console")
	}
	return nil
}

// buildRequestPath wires what every request goes through: the executor over the
// providers, the pipeline around it, and the HTTP server in front.
func (g *Gateway) buildRequestPath() error {
	scanner := pii.NewScanner()
	g.exec = executor.New(executor.Options{Providers: g.providers, Resilience: g.resil, DropParams: g.drop, Tracker: g.tracker, Metrics: g.metrics, Log: g.log,
		Redactor: pii.Redactor{Scanner: scanner}, Shadow: g.cfg.Shadow.Executor(), Tracer: g.tracing.Tracer()})
	g.cache = openCache(g.cfg.Cache, g.ledger, g.metrics, g.log)
	po := pipeline.Options{Engine: g.engine, Planner: g.planner, Executor: g.exec, Metrics: g.metrics, DecisionLog: g.dlog,
		PII: scanner, Ledger: g.ledger, Log: g.log, RequestTimeout: g.cfg.RequestTimeout, ShadowCharge: g.cfg.Shadow.BudgetScope, Tracer: g.tracing.Tracer(), Catalog: g.catalog,
		Cache: g.cache, IdempotencyTTL: g.cfg.Cache.IdempotencyTTL, SemanticEmbedTimeout: g.cfg.Cache.SemanticEmbedTimeout}
	var tr *traffic.Aggregator
	if g.dlog != nil {
		tr = g.traffic // fed by the decision log: without one it would stay empty
	}
	var bundles server.BundleStatus
	if g.remote != nil {
		bundles = g.remote
	}
	var canaryStatus server.CanaryStatus
	if g.canary != nil { // a nil *Canary in an interface would not read as "none"
		po.Canary, canaryStatus = g.canary, g.canary
	}
	g.pipe = pipeline.New(po)
	g.srv = server.New(server.Options{Pipeline: g.pipe, Engine: g.engine, Keys: g.keys, Metrics: g.metrics, DecisionLog: g.dlog, Ledger: g.ledger, Cache: g.cache,
		Log: g.log, Providers: g.names, MaxBodyBytes: g.cfg.MaxBodyBytes, Bundles: bundles, Canary: canaryStatus, Tracing: g.tracing,
		CORSOrigins: g.cfg.CORS.AllowedOrigins, ManagedKeys: g.managed, MetricsToken: string(g.cfg.Metrics.Token), MetricsElsewhere: g.cfg.Metrics.Listen != "",
		ResponsesTTL: g.cfg.Responses.StoreTTL, WriteStallTimeout: g.cfg.WriteStallTimeout,
		Planner: g.planner, Signals: g.tracker, Traffic: tr, BundleLimits: bundleLimits(g.cfg.Bundle.BundleLimits)})
	return nil
}

// openMetrics binds the metrics listener when /metrics has its own address, and warns
// when budgets and per-team spend are readable by anyone who reaches gavel. An open
// /metrics on a shared network stays allowed (existing scrapers keep working), but says so.
func (g *Gateway) openMetrics() error {
	m := g.cfg.Metrics
	where := g.cfg.Listen
	if m.Listen != "" {
		l, err := net.Listen("tcp", m.Listen)
		if err != nil {
			return fmt.Errorf("metrics.listen: %w", err)
		}
		g.metricsL, where = l, l.Addr().String()
	}
	if m.Token == "" && !config.IsLoopback(where) {
		g.log.Warn("/metrics is open to anyone who can reach "+where+": it shows per-team spend and remaining budgets; "+
			"set metrics.token or serve it on its own address with metrics.listen", "addr", where)
	}
	return nil
}

// MetricsAddr is the address of the metrics listener; "" when /metrics is served on the
// main listener.
func (g *Gateway) MetricsAddr() string {
	if g.metricsL == nil {
		return ""
	}
	return g.metricsL.Addr().String()
}

// Handler returns the HTTP handler (for tests that bring their own server).
func (g *Gateway) Handler() http.Handler { return g.srv.Handler() }

// Engine exposes the policy engine (bundle activation from tests and tools).
func (g *Gateway) Engine() *policy.Engine { return g.engine }

// Serve serves on l until ctx ends, then drains in-flight requests.
func (g *Gateway) Serve(ctx context.Context, l net.Listener) error {
	pctx, stop := context.WithCancel(context.Background())
	defer stop()
	go g.planner.Run(pctx)
	if g.managed != nil {
		go g.managed.Run(pctx)
	}
	remoteDone := runPoller(pctx, g.remote)
	canaryDone := runPoller(pctx, g.canaryRemote)
	for _, p := range g.probes {
		go g.tracker.Probe(pctx, p.name, p.cfg, p.check, g.log)
	}
	for _, l := range g.listers {
		go g.rediscover(pctx, l)
	}
	hs := g.httpServer(g.srv.Handler())
	hs.BaseContext = g.srv.BaseContext                   // the server can end every request at the shutdown deadline
	l = httpframe.Strict(hs, l, server.AmbiguousFraming) // Content-Length with Transfer-Encoding: 400, connection closed
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(l) }()
	g.log.Info("gavel listening", "addr", l.Addr().String(), "console", "http://"+l.Addr().String()+"/console/")
	var ms *http.Server
	if g.metricsL != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", g.srv.MetricsHandler())
		ms = g.httpServer(mux)
		go func() {
			if err := ms.Serve(g.metricsL); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics listener: %w", err)
			}
		}()
		g.log.Info("metrics listening", "addr", g.metricsL.Addr().String())
	}
	select {
	case err := <-errc:
		hs.Close()
		if ms != nil {
			ms.Close()
		}
		return err
	case <-ctx.Done():
	}
	err := g.shutdown(hs)
	if ms != nil {
		ms.Close() // scrapes are short; nothing to drain
	}
	stop()
	<-remoteDone
	<-canaryDone
	g.Close()
	return err
}

// httpServer is the http.Server settings both listeners share.
func (g *Gateway) httpServer(h http.Handler) *http.Server {
	idle, maxIdle := g.cfg.IdleTimeout, g.cfg.MaxIdleConns
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	if maxIdle <= 0 {
		maxIdle = DefaultMaxIdleConns
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idle,
		ConnState: newIdleConns(maxIdle).track, ErrorLog: slog.NewLogLogger(g.log.Handler(), slog.LevelWarn)}
}

// DrainMargin is how long before the end of shutdown_timeout gavel ends the requests
// still running (at most a quarter of the grace): enough for each to tell its client, be
// charged and be recorded before the process exits.
const DrainMargin = time.Second

// shutdown stops taking requests and lets those in flight finish within the grace. Those
// still running DrainMargin before its end are ended by the server (streams with an error
// event) and recorded; connections still open at the end of the grace are closed, and
// their handlers get up to DrainMargin more to write their records, so that nothing is
// lost when the stores close right after.
func (g *Gateway) shutdown(hs *http.Server) error {
	grace := g.cfg.ShutdownTimeout
	margin := min(DrainMargin, grace/4)
	g.log.Info("shutting down", "grace", grace.String())
	ctx, cancel := context.WithTimeout(context.Background(), grace-margin)
	err := hs.Shutdown(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	g.log.Warn("shutdown grace ending: ending the requests still in flight", "in_flight", g.srv.InFlight())
	g.srv.Drain()
	ctx, cancel = context.WithTimeout(context.Background(), margin)
	defer cancel()
	if err = hs.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
		hs.Close() // clients that read nothing: their handlers' writes fail now
	}
	// Close does not wait for handlers, and a handler's record comes last.
	wctx, wcancel := context.WithTimeout(context.Background(), margin)
	defer wcancel()
	if g.srv.Wait(wctx) != nil {
		g.log.Error("requests still running at exit: their records are lost", "in_flight", g.srv.InFlight())
	}
	return err
}

// SettleWait bounds how long Close waits for charges still being counted (answers without
// usage) before it closes the ledger.
const SettleWait = 5 * time.Second

// ExitBound is the longest gavel takes from SIGTERM to exiting with cfg: the shutdown
// grace plus the last DrainMargin in which ended requests write their records, charges
// still being counted (SettleWait), the decision log's flush and the spans' flush. An
// orchestrator must wait at least this long before killing the process (in Kubernetes,
// terminationGracePeriodSeconds less the preStop hook's time), or the last requests'
// records and charges can be lost.
func ExitBound(cfg *config.Config) time.Duration {
	grace := cfg.ShutdownTimeout
	return grace + min(DrainMargin, grace/4) + SettleWait +
		cmp.Or(cfg.DecisionLog.FlushTimeout, decisionlog.DefaultFlushTimeout) + TracingShutdownTimeout
}

// Close releases providers' resources and stops background work.
func (g *Gateway) Close() {
	if g.metricsL != nil {
		g.metricsL.Close() // when never served; a served one is closed already
	}
	if g.pipe != nil {
		ctx, cancel := context.WithTimeout(context.Background(), SettleWait)
		if g.pipe.Wait(ctx) != nil {
			g.log.Error("charges still being counted at exit are lost")
		}
		cancel()
	}
	if g.srv != nil {
		g.srv.Close()
	}
	if g.canary != nil {
		g.canary.Close() // before the decision log closes: it logs disagreements there
	}
	if g.exec != nil {
		g.exec.Close()
	}
	if g.ledger != nil {
		g.ledger.Close()
		g.ledger = nil
	}
	if g.dlog != nil {
		ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(g.cfg.DecisionLog.FlushTimeout, decisionlog.DefaultFlushTimeout))
		g.dlog.Close(ctx)
		cancel()
		g.dlog = nil
	}
	for _, p := range g.providers {
		if c, ok := p.(adapters.Closer); ok {
			c.Close()
		}
	}
	g.closeTracing()
}

// openCache builds the response cache: in memory, and in the ledger's Redis too (shared by
// the replicas) when the ledger is Redis and the config does not keep it local.
func openCache(c config.Cache, store ledger.Store, m *telemetry.Metrics, log *slog.Logger) *cache.Cache {
	o := cache.Options{MaxBytes: c.MaxBytes, MaxEntryBytes: c.MaxEntryBytes, Observer: m, Log: log,
		SemanticMaxBytes: c.SemanticMaxBytes, SemanticObserver: m}
	if cb, ok := store.(closeBoth); ok && !c.LocalOnly {
		o.Remote = cache.NewRedis(cb.client, "gavel:")
	}
	return cache.New(o)
}

// openLedger opens the configured budget and rate-limit store.
func openLedger(c config.Ledger, m *telemetry.Metrics, log *slog.Logger) (ledger.Store, error) {
	switch c.Store {
	case "memory":
		return memstore.New(memstore.Options{}), nil
	case "redis":
		mode := redisstore.FailClosed
		if c.FailureMode == "open" {
			mode = redisstore.FailOpen
		}
		// Short timeouts and no client retries: a Redis that stops answering must trip the
		// failure mode in a fraction of a second, not hold every request for seconds.
		opts := &redis.Options{Addr: c.Redis.Addr, Username: c.Redis.Username, Password: string(c.Redis.Password), DB: c.Redis.DB}
		c.Redis.Timeouts().Apply(opts)
		client := redis.NewClient(opts)
		// A Redis (or a proxy) may quote the AUTH it was sent in an error: none of its
		// errors carries the password on to the log or a client.
		secrets := scrub.New(string(c.Redis.Password))
		client.AddHook(redisstore.ScrubHook(secrets))
		store := redisstore.New(client, redisstore.Options{FailureMode: mode,
			OnUnavailable: func(op string, _ error) { m.LedgerUnavailable(op) }})
		m.InitLedger(redisOps)
		m.LedgerQueue(func() (int, uint64, uint64) {
			st := store.Stats()
			return st.PendingCommits, st.Replayed, st.DroppedCommits
		})
		useRedisLog(log, secrets)
		return closeBoth{store, client}, nil
	}
	if dir := filepath.Dir(c.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
	}
	s, err := boltstore.Open(c.Path, boltstore.Options{})
	if err != nil {
		return nil, fmt.Errorf("ledger file %s: %w", c.Path, err)
	}
	return s, nil
}

// go-redis logs through one process-wide logger, by default to stderr, one line per failed
// dial: during an outage, one per request. It goes through a limiter onto gavel's log
// (the latest gateway's, when a process runs several, as tests do).
// Its lines are scrubbed of the Redis password, which a failed dial's error may quote.
var (
	redisLogOnce sync.Once
	redisLog     atomic.Pointer[redisLogTarget]
)

type redisLogTarget struct {
	limiter *telemetry.LogLimiter
	secrets scrub.Set
}

type redisLogger struct{}

func (redisLogger) Printf(_ context.Context, format string, v ...any) {
	t := redisLog.Load()
	t.limiter.Log(format, "redis client", "detail", t.secrets.Scrub(fmt.Sprintf(format, v...)))
}

func useRedisLog(log *slog.Logger, secrets scrub.Set) {
	redisLog.Store(&redisLogTarget{limiter: telemetry.NewLogLimiter(log, slog.LevelWarn, 0), secrets: secrets})
	redisLogOnce.Do(func() { redis.SetLogger(redisLogger{}) })
}

// redisOps are the operations redisstore names to OnUnavailable (its Options document
// them); each is published at 0 so an outage shows as an increase.
var redisOps = []string{"reserve", "commit", "release", "snapshot", "spend", "allow", "add_tokens", "rate_state", "replay",
	"put_document", "get_document", "delete_document",
	"put_record", "delete_record", "list_records", "records_version", "append_journal", "read_journal"}

// closeBoth closes the Redis store, then its client (the store does not own the client).
type closeBoth struct {
	*redisstore.Store // the concrete store: its optional capabilities (ledger.Documents) stay visible
	client            *redis.Client
}

func (c closeBoth) Close() error {
	err := c.Store.Close()
	c.client.Close()
	return err
}
