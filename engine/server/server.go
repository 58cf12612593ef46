package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/cache"
	consoleui "github.com/gavel-gw/gavel/engine/console"
	"github.com/gavel-gw/gavel/engine/decisionlog"
	"github.com/gavel-gw/gavel/engine/keys"
	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/pipeline"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/telemetry"
	"github.com/gavel-gw/gavel/engine/tracing"
	"github.com/gavel-gw/gavel/engine/traffic"
)

// Response headers every answer carries.
const (
	HeaderDecisionID = "X-Gavel-Decision-Id"
	HeaderRoute      = "X-Gavel-Route"
	HeaderRevision   = "X-Gavel-Bundle-Revision"
	HeaderExperiment = "X-Gavel-Experiment"
	HeaderArm        = "X-Gavel-Arm"
	HeaderTags       = "X-Gavel-Tags"
	// HeaderBudgetWarning names budgets past their soft threshold and what is left.
	HeaderBudgetWarning = "X-Gavel-Budget-Warning"
	// HeaderDroppedParams names the request's fields the answering provider could not
	// express and was sent without (its drop_params is drop), comma-separated.
	HeaderDroppedParams = "X-Gavel-Dropped-Params"
)

// HeaderSubstituted says "asked -> answered" when a client named a provider/model
// explicitly and the policy had another one answer.
const HeaderSubstituted = "X-Gavel-Substituted"

// HeaderCache says how the response cache served the request (the decision's cache):
// hit, miss, coalesced (another identical request's upstream call answered it) or bypass
// (passed through in the client's protocol, not cached); absent when the decision used no
// cache.
const HeaderCache = "X-Gavel-Cache"

// HeaderCacheSimilarity is, on an answer a semantic lookup served (X-Gavel-Cache: hit), the
// cosine similarity of the stored turn that matched, in basis points (as min_similarity).
const HeaderCacheSimilarity = "X-Gavel-Cache-Similarity"

// HeaderIdempotencyKey is the client's key for retrying a request without a second billed
// call (OpenAI's and Stripe's clients send it).
const HeaderIdempotencyKey = "Idempotency-Key"

// maxIdempotencyKey bounds an Idempotency-Key's length.
const maxIdempotencyKey = 255

// HeaderFault names the kind of fault a chaos drill (the decision's fault) injected into
// the request; absent on requests no drill touched.
const HeaderFault = "X-Gavel-Fault"

// Options wire a server.
type Options struct {
	// Pipeline runs every API request; the server only decodes, calls it and encodes.
	Pipeline *pipeline.Pipeline
	// Engine answers what the active bundle offers (models, readiness, status).
	Engine *policy.Engine
	Keys   *auth.Keys
	// Metrics serves /metrics; nil: no metrics endpoint.
	Metrics *telemetry.Metrics
	// MetricsToken, when set, is the bearer token /metrics requires.
	MetricsToken string
	// MetricsElsewhere leaves /metrics off this server's routes (404): the app serves
	// MetricsHandler on a listener of its own.
	MetricsElsewhere bool
	// DecisionLog answers explanations (GET /v1/gavel/decisions/:id); nil: disabled.
	DecisionLog *decisionlog.Logger
	// Cache is purged by DELETE /v1/gavel/cache; nil: disabled.
	Cache *cache.Cache
	// Ledger answers the admin spend view (GET /v1/gavel/spend); nil: disabled.
	Ledger  ledger.Store
	Bundles BundleStatus // nil: the bundle is local, no server to report on
	// Planner answers the current routing plan (GET /v1/gavel/plan); nil: none.
	Planner *policy.Planner
	// Signals answers providers' live signals and breakers (GET /v1/gavel/providers).
	Signals SignalSource
	// Traffic answers the traffic summary (GET /v1/gavel/traffic); nil: disabled.
	Traffic *traffic.Aggregator
	// BundleLimits bound a candidate bundle uploaded to POST /v1/gavel/policy/diff.
	BundleLimits policy.Limits
	// Canary reports the canary candidate in GET /v1/gavel/status; nil: none configured.
	Canary CanaryStatus
	// ManagedKeys answers the keys API (/v1/gavel/keys) and the audit log; nil: disabled.
	ManagedKeys  *keys.Manager
	Log          *slog.Logger
	Providers    []string // configured provider names
	MaxBodyBytes int64
	Tracing      *tracing.Tracing // nil: no tracing middleware, no spans
	// CORSOrigins are the browser origins allowed to call the API ("*" for any); empty:
	// no CORS headers, browsers refuse cross-origin calls.
	CORSOrigins []string
	// ResponsesTTL is how long stored responses are kept; 0 is DefaultResponsesTTL.
	ResponsesTTL time.Duration
	// ErrorLogInterval is how often a repeated request failure is logged (with the count
	// of the ones in between); 0 is telemetry.DefaultLogInterval.
	ErrorLogInterval time.Duration
	// WriteStallTimeout ends a request whose client took none of a write's bytes for this
	// long; 0 is DefaultWriteStallTimeout.
	WriteStallTimeout time.Duration
}

// DefaultWriteStallTimeout is how long one write to a client may make no progress. A
// client reading a stream, however slowly, takes each event well within it; one that
// stopped reading fills the kernel's socket queues and then blocks the write. Ending it
// here frees the handler, the upstream stream and those buffers long before a
// request_timeout of minutes.
const DefaultWriteStallTimeout = 30 * time.Second

// Server is gavel's HTTP API.
type Server struct {
	o      Options
	p      *pipeline.Pipeline
	echo   *echo.Echo
	log    *slog.Logger
	prov   map[string]bool
	tracer *tracer // nil when tracing is off
	// failed logs 5xx answers, one line per error code per interval with a count: an
	// outage must not write one line per request.
	failed *telemetry.LogLimiter

	// base is every request's root context when served through BaseContext; Drain
	// cancels it.
	base     context.Context
	cancel   context.CancelFunc
	draining atomic.Bool
	diffing  chan struct{} // one policy diff at a time
	inflight atomic.Int64  // API requests between Start and Finish
}

// New builds the server and its routes.
func New(o Options) *Server {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.WriteStallTimeout <= 0 {
		o.WriteStallTimeout = DefaultWriteStallTimeout
	}
	s := &Server{o: o, p: o.Pipeline, echo: echo.New(), log: o.Log, prov: map[string]bool{},
		failed: telemetry.NewLogLimiter(o.Log, slog.LevelError, o.ErrorLogInterval), diffing: make(chan struct{}, 1)}
	s.base, s.cancel = context.WithCancel(context.Background())
	for _, p := range o.Providers {
		s.prov[p] = true
	}
	e := s.echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleEchoError
	if t := o.Tracing.Tracer(); t != nil {
		s.tracer = &tracer{t: t, prop: o.Tracing.Propagator(), names: map[routeKey]string{}}
		e.Use(s.tracer.traced) // outermost: its span covers everything, recovered panics included
	}
	if len(o.CORSOrigins) > 0 {
		e.Use(middleware.CORSWithConfig(middleware.CORSConfig{AllowOrigins: o.CORSOrigins,
			AllowHeaders: []string{echo.HeaderAuthorization, echo.HeaderContentType, HeaderTags, "X-Api-Key", "Anthropic-Version", "Anthropic-Beta", "OpenAI-Organization", "OpenAI-Project",
				"X-Stainless-Arch", "X-Stainless-Lang", "X-Stainless-OS", "X-Stainless-Package-Version", "X-Stainless-Retry-Count",
				"X-Stainless-Runtime", "X-Stainless-Runtime-Version", "X-Stainless-Timeout"},
			ExposeHeaders: []string{HeaderDecisionID, HeaderRoute, HeaderSubstituted, HeaderFault, HeaderRevision, HeaderExperiment, HeaderArm, HeaderBudgetWarning, HeaderDroppedParams,
				"Retry-After", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
				"x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"},
			MaxAge: 600}))
	}
	// Every route's handler is wrapped in recover here, once: a middleware given to echo
	// (e.Use or per route) is applied again on every request, one closure each.
	route := func(add func(string, echo.HandlerFunc, ...echo.MiddlewareFunc) *echo.Route, path string, h echo.HandlerFunc) {
		add(path, s.recover(h))
	}
	// The API answers with and without the /v1 prefix, as OpenAI-compatible servers do:
	// clients configured with a bare base URL work too.
	for _, prefix := range []string{"/v1", ""} {
		route(e.POST, prefix+"/chat/completions", s.chatCompletions)
		route(e.POST, prefix+"/embeddings", s.embeddings)
		route(e.POST, prefix+"/responses", s.createResponse)
		route(e.GET, prefix+"/responses/:id", s.getResponse)
		route(e.DELETE, prefix+"/responses/:id", s.deleteResponse)
		route(e.GET, prefix+"/models", s.listModels)
		route(e.GET, prefix+"/models/*", s.getModel)
	}
	// Anthropic's SDKs take the API root as their base URL and add /v1 themselves.
	route(e.POST, "/v1/messages", s.messages)
	route(e.POST, "/v1/messages/count_tokens", s.countTokens)
	route(e.GET, "/v1/gavel/decisions", s.listDecisions)
	route(e.GET, "/v1/gavel/decisions/:id", s.explain)
	route(e.GET, "/v1/gavel/spend", s.spend)
	route(e.DELETE, "/v1/gavel/cache", s.purgeCache)
	route(e.GET, "/v1/gavel/status", s.status)
	route(e.POST, "/v1/gavel/keys", s.createKey)
	route(e.GET, "/v1/gavel/keys", s.listKeys)
	route(e.GET, "/v1/gavel/keys/:id", s.getKey)
	route(e.PATCH, "/v1/gavel/keys/:id", s.updateKey)
	route(e.DELETE, "/v1/gavel/keys/:id", s.revokeKey)
	route(e.POST, "/v1/gavel/keys/:id/rotate", s.rotateKey)
	route(e.GET, "/v1/gavel/audit", s.auditLog)
	route(e.GET, "/v1/gavel/traffic", s.traffic)
	route(e.GET, "/v1/gavel/providers", s.providers)
	route(e.GET, "/v1/gavel/plan", s.plan)
	route(e.GET, "/v1/gavel/budgets", s.budgets)
	route(e.GET, "/v1/gavel/policy", s.policyView)
	route(e.POST, "/v1/gavel/policy/diff", s.policyDiff)
	route(e.GET, "/v1/gavel/experiments", s.experiments)
	route(e.GET, "/v1/gavel/openapi.json", s.openAPI)
	console := echo.WrapHandler(consoleui.Handler())
	route(e.GET, "/console", func(c echo.Context) error { return c.Redirect(http.StatusFound, consoleui.Prefix) })
	route(e.GET, consoleui.Prefix+"*", console)
	route(e.HEAD, consoleui.Prefix+"*", console)
	route(e.GET, "/healthz", s.healthz)
	route(e.GET, "/readyz", s.readyz)
	if o.Metrics != nil && !o.MetricsElsewhere {
		route(e.GET, "/metrics", echo.WrapHandler(s.MetricsHandler()))
	}
	if s.tracer != nil {
		for _, r := range e.Routes() {
			s.tracer.names[routeKey{r.Method, r.Path}] = r.Method + " " + r.Path
		}
	}
	return s
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Close logs the counts of failures still held back by the error-log limiter.
func (s *Server) Close() { s.failed.Close() }

// BaseContext is the http.Server's BaseContext: the root of every request's context, so
// that Drain reaches every request in flight.
func (s *Server) BaseContext(net.Listener) context.Context { return s.base }

// Drain ends the requests in flight now: their contexts (rooted in BaseContext) are
// cancelled and each ends as 503 server_shutting_down, a stream with an error event,
// and is recorded and charged for what its client received. For the end of a shutdown
// grace; the server takes no new requests after it.
func (s *Server) Drain() {
	s.draining.Store(true)
	s.cancel()
}

// Draining reports that Drain was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// InFlight is the number of API requests between their start and their record.
func (s *Server) InFlight() int64 { return s.inflight.Load() }

// Wait waits until no API request is in flight, so that every record (log line, ledger,
// decision log) is written, or until ctx ends.
func (s *Server) Wait(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for s.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// recover turns a panic into a logged 500 in OpenAI's shape instead of a dropped
// connection; the stack goes to the log, never to the client.
func (s *Server) recover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.Error("panic serving request", "path", c.Path(), "panic", r, "stack", string(debug.Stack()))
				if !c.Response().Committed {
					err = newAPIError(http.StatusInternalServerError, "internal_error", "Internal gateway error.")
				}
			}
		}()
		return next(c)
	}
}

// handleEchoError writes every error that reaches echo, its own (unknown route, wrong
// method) included, in the shape of the API its path belongs to: Anthropic's under
// /v1/messages, whose clients parse nothing else, OpenAI's everywhere else.
func (s *Server) handleEchoError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	r := c.Request()
	var he *echo.HTTPError
	var api *APIError
	switch {
	case errors.As(err, &api):
	case errors.As(err, &he):
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok {
			msg = m
		}
		code := "invalid_request"
		switch he.Code {
		case http.StatusNotFound:
			code, msg = "unknown_url", "Unknown request URL: "+r.Method+" "+r.URL.Path+"."
		case http.StatusMethodNotAllowed:
			code = "method_not_allowed"
		}
		api = newAPIError(he.Code, code, msg)
	default:
		api = clientError(err)
	}
	if !anthropicPath(r.URL.Path) {
		writeError(c, api)
		return
	}
	api = anthropicError(api)
	if he != nil && (he.Code == http.StatusNotFound || he.Code == http.StatusMethodNotAllowed) {
		// Anthropic answers a route it does not serve, whatever the method, with
		// not_found_error; the status stays the one HTTP means (405 with Allow).
		api.Type = "not_found_error"
		api.Message = "Not found: " + r.Method + " " + r.URL.Path + " is not served by this gateway " +
			"(it serves POST /v1/messages and POST /v1/messages/count_tokens)."
	}
	writeAnthropicError(c, api)
}

func writeError(c echo.Context, e *APIError) {
	h := c.Response().Header()
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if e.Status == StatusClientClosedRequest {
		// The client is gone; there is nobody to write to.
		c.Response().WriteHeader(e.Status)
		return
	}
	writeJSON(c, e.Status, e.body())
}

func writeJSON(c echo.Context, status int, v any) error {
	b, held := encodeJSON(c, status, v)
	_, err := c.Response().Write(b)
	releaseJSON(held, b)
	return err
}

// Header values every response of a kind carries, shared by all of them: http.Header.Set
// makes a new one-element slice per call. They are assigned under canonical keys and
// never written through (net/http, echo and gavel only read, replace or append to header
// values, and an append to a full slice copies it).
var (
	hvJSON        = []string{echo.MIMEApplicationJSON}
	hvEventStream = []string{"text/event-stream; charset=utf-8"}
	hvNoCache     = []string{"no-cache"}
	hvKeepAlive   = []string{"keep-alive"}
	hvNo          = []string{"no"}
)

// appender is a value that encodes itself as json.Marshal would, without reflection
// (the chat answer and chunk types, adapters/append.go).
type appender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// answerBuffers hold encoded answers while they are written; one that grew past
// maxPooledAnswer is left to the collector.
var answerBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

const maxPooledAnswer = 64 << 10

// encodeJSON encodes v, writes the status and headers, and returns the body to write, in
// a buffer the caller gives back with releaseJSON once it is written (held is the pooled
// slice the body was appended to, nil when v was marshalled).
func encodeJSON(c echo.Context, status int, v any) (b []byte, held *[]byte) {
	var err error
	if a, ok := v.(appender); ok {
		held = answerBuffers.Get().(*[]byte)
		b, err = a.AppendJSON((*held)[:0])
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"message":"encoding failed","type":"server_error","param":null,"code":"internal_error"}}`)
	}
	writeJSONHeaders(c, status, len(b)+1)
	return append(b, '\n'), held
}

// releaseJSON gives back the buffer of an answer encodeJSON encoded, once it is written.
// Only a buffer an appender filled is pooled (its cap is what AppendJSON grew it to), in
// the pool's own slice header: putting &b would allocate one per answer.
func releaseJSON(held *[]byte, b []byte) {
	if held != nil && cap(b) <= maxPooledAnswer {
		*held = b[:0]
		answerBuffers.Put(held)
	}
}
