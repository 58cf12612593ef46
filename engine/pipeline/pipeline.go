package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"go.opentelemetry.io/otel/trace"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/cache"
	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/decisionlog"
	"github.com/gavel-gw/gavel/engine/executor"
	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/pii"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/telemetry"
	"github.com/gavel-gw/gavel/engine/tokens"
)

// Endpoints, as input.request.endpoint and the metrics' endpoint label name them.
const (
	EndpointChat       = "chat"
	EndpointEmbeddings = "embeddings"
	EndpointMessages   = "messages"  // Anthropic Messages (POST /v1/messages)
	EndpointResponses  = "responses" // OpenAI Responses (POST /v1/responses)
	// EndpointCountTokens is Anthropic's POST /v1/messages/count_tokens: judged and routed
	// like a message, but it generates nothing, so a policy (rate limits) and the
	// metrics tell it apart from the messages it precedes.
	EndpointCountTokens = "count_tokens"
)

// Protocols, as input.request.protocol names the wire format the client spoke. An
// endpoint implies its protocol today; the policy reads both so that a rule about
// "what the client speaks" does not have to list endpoints.
const (
	ProtocolOpenAI    = "openai"    // Chat Completions and Embeddings
	ProtocolAnthropic = "anthropic" // Messages
	ProtocolResponses = "responses" // OpenAI Responses
)

// protocolOf is the wire format of an endpoint.
func protocolOf(endpoint string) string {
	switch endpoint {
	case EndpointMessages, EndpointCountTokens:
		return ProtocolAnthropic
	case EndpointResponses:
		return ProtocolResponses
	default:
		return ProtocolOpenAI
	}
}

// Options wire a pipeline. Engine, Planner and Executor are required.
type Options struct {
	Engine      *policy.Engine
	Planner     *policy.Planner
	Executor    *executor.Executor
	Metrics     *telemetry.Metrics
	DecisionLog *decisionlog.Logger // nil: decisions are not recorded
	PII         *pii.Scanner        // nil: input.pii stays empty
	Ledger      ledger.Store        // nil: decisions naming budgets or rate limits are denied
	Log         *slog.Logger
	// RequestTimeout bounds a request whose decision sets no limits.timeout_ms; 0: none.
	RequestTimeout time.Duration
	// ShadowCharge says whose budget shadow requests are charged to: ShadowChargeShadow
	// (the default when empty), ShadowChargeCaller or ShadowChargeNone.
	ShadowCharge string
	Tracer       trace.Tracer // nil: no policy.decide spans, no shadow links
	// Catalog holds the models providers declare or list: their prices, for models the
	// bundle's catalog does not price, and their names (see Exchange.Substituted).
	Catalog *policy.Catalog
	// Canary, when set, is offered every request the policy decided, to sample for a
	// candidate bundle (engine/canary.Canary); nil: no canary.
	Canary Canary
	// Cache stores answers the decisions let it (decision.cache); nil: nothing is stored,
	// and decisions asking for it only coalesce.
	Cache *cache.Cache
	// IdempotencyTTL is how long an Idempotency-Key's answer is kept for the caller's
	// retries; 0: DefaultIdempotencyTTL. It needs Cache.
	IdempotencyTTL time.Duration
	// SemanticEmbedTimeout bounds a semantic lookup's embeddings call (a timeout is a
	// miss); 0: DefaultSemanticEmbedTimeout.
	SemanticEmbedTimeout time.Duration
}

// Canary evaluates a candidate bundle beside the active one. Offer is on the request
// path: it must neither block nor allocate, and must leave input and result as they are
// (the decision log reads them too).
type Canary interface {
	Offer(id string, at time.Time, active *policy.Revision, input, result ast.Value)
}

// Pipeline runs requests. Safe for concurrent use.
type Pipeline struct {
	o       Options
	log     *slog.Logger
	counter tokens.Counter // real tokenizer for streams without usage, loaded on first use
	// counting is the number of charges being counted off the request path (Wait).
	counting atomic.Int64
	flights  *cache.Group // identical requests in flight (decision.cache.coalesce)
}

// New returns a pipeline.
func New(o Options) *Pipeline {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Pipeline{o: o, log: o.Log, flights: cache.NewGroup()}
}

// Exchange is one request on its way through the pipeline: the HTTP layer creates it with
// Start, admits it (AdmitChat, AdmitEmbedding), executes it (Chat, OpenStream, Embed) and
// always ends it with Finish. It is not safe for concurrent use.
type Exchange struct {
	// ID is the decision id: random, 32 hex digits, unique per request.
	ID       string
	start    time.Time
	endpoint string
	model    string // as asked
	stream   bool
	caller   *auth.Caller

	chat    *adapters.ChatRequest      // as the client sent it
	raw     *adapters.RawRequest       // as the client sent it, in its own protocol (Passthrough)
	fields  []string                   // input.request.fields of a body in another protocol (Fields)
	up      *adapters.ChatRequest      // as it leaves the gateway (redacted when the policy says so)
	embUp   *adapters.EmbeddingRequest // embeddings as they leave the gateway
	prompt  []policy.Message
	wantUse bool // the client asked for usage on its stream

	rev      *policy.Revision
	input    ast.Value // the policy input, kept for the decision log
	result   ast.Value // data.gavel.decision as the policy returned it
	decision *decision.Decision
	features *policy.Request // what the policy saw, for the decision log
	spend    map[string]policy.SpendState
	rate     map[string]policy.RateState
	hold     *hold
	rateDec  *ledger.RateDecision
	warning  string

	route string
	// chosen is the provider/model the client named explicitly, "" when it asked for an
	// alias or a model name: a route other than chosen is a substitution the client is told.
	chosen   string
	dropped  []string // request fields the answering provider could not express (drop_params: drop)
	upstream time.Duration
	usage    *adapters.Usage
	// completion counts the answer's tokens as its text arrives, in case the upstream
	// sends no usage, holding only a bounded tail of it (a stream may be many MB).
	completion tokens.Tally
	// shadowText is the first similarity.MaxBytes of a streamed or passed-through answer,
	// all the shadows' similarity reads; kept only when there are shadows.
	shadowText []byte
	// rawAnswer: a non-streamed answer was passed through; its text is in shadowText.
	rawAnswer bool
	// uncounted: an upstream answered without usage; Finish counts it with the tokenizer
	// (an answer is never free because an upstream left usage out).
	uncounted  bool
	streamFail bool
	// prior are the attempts whose streams were cut and continued on another target
	// (limits.midstream "continue"), charged on top of usage; nil otherwise.
	prior []priorAttempt
	// settled: the usage was priced and the hold settled (Settle); cost and priced are
	// what that gave, for Finish's record.
	settled bool
	priced  bool
	cost    int64
	st      Stream

	// The shadows' slot for the primary's answer (nil without shadows), and that answer
	// when not streamed and either there are shadows or it came without usage.
	primary *executor.PrimaryAnswer
	answer  *adapters.ChatResponse

	idemKey string         // the client's Idempotency-Key, "" when none
	cache   *exchangeCache // nil: the decision uses no cache, coalescing or idempotency
	// headers back the response headers whose values are the exchange's own (HeaderSlot).
	headers [3]string
}

// Slots of Exchange.HeaderSlot.
const (
	HeaderSlotID = iota
	HeaderSlotRevision
	HeaderSlotRoute
)

// HeaderSlot keeps v in the exchange's slot and returns it as a one-value header slice:
// the response headers whose values are the exchange's own (its id, revision, route)
// live in the exchange, one allocation for all, where http.Header.Set makes a slice for
// each. The slice is not to be written through; a later call for the slot changes it.
func (x *Exchange) HeaderSlot(slot int, v string) []string {
	x.headers[slot] = v
	return x.headers[slot : slot+1 : slot+1]
}

// Start begins a request on endpoint (EndpointChat, EndpointEmbeddings, EndpointMessages,
// EndpointResponses). A Messages or Responses request is admitted with AdmitChat: it is a
// chat request in the canonical types, translated by the server.
func (p *Pipeline) Start(endpoint string) *Exchange {
	return &Exchange{ID: newID(), start: time.Now(), endpoint: endpoint, route: "none"}
}

// Revision is the bundle revision that judged the request; nil before the decision.
func (x *Exchange) Revision() *policy.Revision { return x.rev }

// Decision is the policy's decision; nil before it or when the policy failed.
func (x *Exchange) Decision() *decision.Decision { return x.decision }

// RateDecision is the rate limits' verdict (for x-ratelimit headers); nil when the
// decision names none.
func (x *Exchange) RateDecision() *ledger.RateDecision { return x.rateDec }

// BudgetWarning names the budgets past their soft threshold and what is left of them;
// "" when none is.
func (x *Exchange) BudgetWarning() string { return x.warning }

// Route is "provider/model" of the target that answered, "none" until one did.
func (x *Exchange) Route() string { return x.route }

// WentUpstream reports that an upstream call answered (or failed) for this request: false
// for an answer from the cache or a coalesced call, a denial, or a request refused before
// any target was tried.
func (x *Exchange) WentUpstream() bool { return x.upstream > 0 }

// Fault is the kind of fault a chaos drill injected into this request (X-Gavel-Fault, the
// decision log's custom.fault), "" when none was: a decision's fault for an attempt the
// walk never reached was not injected.
func (x *Exchange) Fault() string {
	if x.decision == nil || !x.decision.Fault.Injected() {
		return ""
	}
	return x.decision.Fault.Kind
}

// Substituted is "asked -> answered" when the client named a provider/model explicitly
// and the policy had another target answer (X-Gavel-Substituted, the decision log); ""
// otherwise, and before a target answered.
func (x *Exchange) Substituted() string {
	if x.chosen == "" || x.route == "none" || x.route == "" || x.route == x.chosen {
		return ""
	}
	return x.model + " -> " + x.route
}

// chosen returns the target a client named explicitly as model, or "": model is
// "provider/model", and neither an alias of the bundle nor a model name or alias a
// provider declares (meta-llama/Llama-3.1-8B on a vLLM server is a name, not a choice of
// provider). A catalog id is the provider and model its entry names.
func (p *Pipeline) chosen(rev *policy.Revision, model string) string {
	if i := strings.IndexByte(model, '/'); i <= 0 {
		return ""
	}
	if _, alias := rev.Data.Aliases[model]; alias || p.o.Catalog.IsName(model) {
		return ""
	}
	if e, ok := rev.Data.Catalog[model]; ok && !isTarget(model, e.Provider, e.Model) {
		return e.Provider + "/" + e.Model
	}
	return model
}

// isTarget reports whether id is provider + "/" + model, without building that string.
func isTarget(id, provider, model string) bool {
	n := len(provider)
	return len(id) == n+1+len(model) && id[:n] == provider && id[n] == '/' && id[n+1:] == model
}

// Models lists what caller can ask for right now, as the active policy routes it (GET
// /v1/models): see policy.Revision.Routable.
func (p *Pipeline) Models(ctx context.Context, caller *auth.Caller) ([]policy.Routable, error) {
	rev := p.o.Engine.Active()
	if rev == nil {
		return nil, ErrNoBundle
	}
	routable, err := rev.Routable(ctx, p.o.Planner.Current(ctx, rev), caller.Value, time.Now().UnixNano())
	if err != nil {
		return nil, &PolicyError{Err: err}
	}
	return routable, nil
}

// Dropped names the request's fields the answering provider could not express and was
// sent without (its drop_params is drop); nil when none was.
func (x *Exchange) Dropped() []string { return x.dropped }

// DegradeStream reports that the policy asked for a streaming client to be served from a
// buffered call (degrade.stream=false): use Chat and re-emit its answer as a stream.
func (x *Exchange) DegradeStream() bool {
	return x.decision != nil && x.decision.Degrade.Stream != nil && !*x.decision.Degrade.Stream
}

// AdmitChat runs a chat request up to execution: features, standing, decision,
// enforcement, the preparation of what goes upstream (redaction), and its shadows. tags
// is the platform's X-Gavel-Tags value.
func (p *Pipeline) AdmitChat(ctx context.Context, x *Exchange, caller *auth.Caller, req *adapters.ChatRequest, tags string) error {
	x.caller, x.chat, x.model, x.stream = caller, req, req.Model, req.Stream
	x.wantUse = req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	f := ChatFeatures(x.ID, req, tags, caller)
	f.Endpoint, f.Protocol = x.endpoint, protocolOf(x.endpoint)
	if x.fields != nil {
		f.Fields = x.fields
	}
	x.prompt = f.Messages
	d, err := p.admit(ctx, x, f)
	if err != nil {
		return err
	}
	if x.up, err = p.o.Executor.Prepare(req, d); err != nil {
		return &PolicyError{Err: err} // Finish gives the reservation back
	}
	if err := p.prepareCache(x, d); err != nil {
		return err
	}
	if len(d.Shadow) > 0 {
		p.shadow(ctx, x, f.EstInputTokens, f.MaxTokens)
	}
	return nil
}

// AdmitEmbedding is AdmitChat for an embeddings request.
func (p *Pipeline) AdmitEmbedding(ctx context.Context, x *Exchange, caller *auth.Caller, req *adapters.EmbeddingRequest, tags string) error {
	x.caller, x.model = caller, req.Model
	f := EmbeddingFeatures(x.ID, req, tags, caller)
	f.Protocol = ProtocolOpenAI
	x.prompt = f.Messages
	d, err := p.admit(ctx, x, f)
	if err != nil {
		return err
	}
	if x.embUp, err = p.o.Executor.PrepareEmbedding(req, d); err != nil {
		return &PolicyError{Err: err} // Finish gives the reservation back
	}
	return nil
}

// admit is the policy half of every endpoint: the caller's standing, the decision, a
// denial as a domain error, and the budgets and rate limits it names.
func (p *Pipeline) admit(ctx context.Context, x *Exchange, f policy.Request) (*decision.Decision, error) {
	rev := p.o.Engine.Active()
	if rev == nil {
		return nil, ErrNoBundle
	}
	x.rev = rev
	var err error
	if x.spend, x.rate, err = p.standing(ctx, rev, x.caller); err != nil {
		return nil, ledgerError(err)
	}
	d, err := p.decide(ctx, x, f)
	if err != nil {
		return nil, err
	}
	x.decision = d
	if !d.Allow {
		return nil, p.denied(x, d)
	}
	if x.hold, err = p.enforce(ctx, x, f.EstInputTokens, f.MaxTokens); err != nil {
		return nil, err
	}
	x.warning = budgetWarning(d, x.spend)
	return d, nil
}

// denied is the policy's refusal. A 503 no_available_target that the route's open
// breakers explain gets the truthful Retry-After: until the first of them lets a probe
// through (the policy leaves open circuits out; a half-open one it may use). The route is
// the bundle's chain for the name and the providers' models that claim it.
func (p *Pipeline) denied(x *Exchange, d *decision.Decision) *Denied {
	deny := d.Deny
	e := &Denied{Deny: *deny, Remediation: d.Remediation}
	if deny.Status == http.StatusServiceUnavailable && deny.Code == "no_available_target" && x.rev != nil && x.rev.Data != nil {
		chain := x.rev.Data.Chain(x.model)
		if claims := p.o.Catalog.Claims(x.model); len(claims) > 0 {
			chain = append(chain, claims...)
		}
		if wait, ok := p.o.Executor.OpenFor(chain); ok {
			e.RetryAfter = wait
		}
	}
	return e
}

// decide builds the input and evaluates the policy. Any failure denies: a request the
// policy could not judge does not go anywhere.
func (p *Pipeline) decide(ctx context.Context, x *Exchange, f policy.Request) (*decision.Decision, error) {
	start := time.Now()
	shared := p.o.Planner.Current(ctx, x.rev)
	in := policy.Input{
		Request:   f,
		PII:       p.findPII(f.Messages),
		Spend:     x.spend,
		Rate:      x.rate,
		Caller:    x.caller.Value,
		Providers: shared.Providers,
		Plan:      shared.Plan,
		NowNS:     x.start.UnixNano(),
	}
	x.features = &in.Request
	x.chosen = p.chosen(x.rev, f.Model)
	x.input = in.Value()
	var d *decision.Decision
	var err error
	if x.result, err = x.rev.Evaluate(ctx, x.input); err == nil {
		if d, err = policy.ParseDecision(x.result); err == nil {
			err = x.rev.Admit(d)
		}
	}
	if err == nil && p.o.Canary != nil {
		p.o.Canary.Offer(x.ID, x.start, x.rev, x.input, x.result)
	}
	outcome := "allow"
	switch {
	case err != nil:
		outcome = "error"
	case !d.Allow:
		outcome = "deny"
	}
	p.o.Metrics.Decision(outcome, time.Since(start))
	if d != nil {
		p.o.Metrics.DecisionRules(d.Reasons)
	}
	p.traceDecide(ctx, start, x.rev, d, err)
	if err != nil {
		return nil, &PolicyError{Err: err}
	}
	return d, nil
}

// findPII runs gavel's detectors over every message text: the policy decides what to do
// with the findings without scanning text itself.
func (p *Pipeline) findPII(msgs []policy.Message) map[string]int {
	if p.o.PII == nil {
		return nil
	}
	var counts pii.Counts
	for i := range msgs {
		c := p.o.PII.Counts(msgs[i].Text)
		for t, n := range c {
			if counts == nil {
				counts = pii.Counts{}
			}
			counts[t] += n
		}
	}
	if counts == nil {
		return nil
	}
	out := make(map[string]int, len(counts))
	for t, n := range counts {
		out[string(t)] = n
	}
	return out
}

// Context bounds the whole execution of an admitted request: the policy's timeout_ms,
// else the configured request timeout.
func (p *Pipeline) Context(ctx context.Context, x *Exchange) (context.Context, context.CancelFunc) {
	timeout := p.o.RequestTimeout
	if x.decision != nil && x.decision.Limits.TimeoutMS > 0 {
		timeout = time.Duration(x.decision.Limits.TimeoutMS) * time.Millisecond
	}
	if timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, timeout)
}

// Chat executes an admitted chat request and waits for the whole answer. A streaming
// request whose decision degrades streams (DegradeStream) is executed this way too.
func (p *Pipeline) Chat(ctx context.Context, x *Exchange) (*adapters.ChatResponse, error) {
	up := x.up
	if up.Stream {
		r := *up
		r.Stream = false
		up = &r
	}
	if x.cache != nil && x.cache.result != CacheBypass {
		r, handled, err := p.cachedChat(ctx, x, up)
		if handled {
			if err == nil && x.primary != nil {
				x.answer = r
			}
			return r, err
		}
	}
	res, err := p.o.Executor.Chat(ctx, up, x.decision)
	if err != nil {
		return nil, err
	}
	x.route, x.upstream, x.usage, x.dropped = res.Target.String(), res.Upstream, res.Response.Usage, res.Dropped
	if x.cache != nil {
		p.storeAnswer(ctx, x, res.Response)
	}
	if x.primary != nil {
		x.answer = res.Response
	}
	if x.usage == nil {
		// Counted off the request's path, in Finish, from the answer itself: it is in
		// memory anyway (bounded by the provider's max_response_bytes).
		x.uncounted, x.answer = true, res.Response
	}
	return res.Response, nil
}

// Embed executes an admitted embeddings request.
func (p *Pipeline) Embed(ctx context.Context, x *Exchange) (*adapters.EmbeddingResponse, error) {
	res, err := p.o.Executor.Embed(ctx, x.embUp, x.decision)
	if err != nil {
		return nil, err
	}
	x.route, x.upstream = res.Target.String(), res.Upstream
	if u := res.Response.Usage; u != nil {
		x.usage = &adapters.Usage{PromptTokens: u.PromptTokens, TotalTokens: u.TotalTokens}
	} else {
		x.uncounted = true
	}
	return res.Response, nil
}

// newID returns a random 128-bit id as 32 hex digits, for decision ids.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
