package decision

import (
	"net/http"
	"sync/atomic"

	"github.com/gavel-gw/gavel/engine/ledger"
)

// Decision is what the policy concluded about one request. It is parsed from Rego output in
// exactly one place (ParseDecision); every field but Allow and Targets may be omitted and
// then takes the default documented on the field.
type Decision struct {
	// Allow is required. When false, Deny says what the client sees.
	Allow bool
	// Deny is the OpenAI-style error for a denied request. Default when Allow is false and
	// deny is omitted: 403 "policy_denied".
	Deny *Deny
	// Targets are tried in order: the primary first, then fallbacks. Required (non-empty)
	// when Allow is true.
	Targets []Target
	// AB names the experiment arm this request is in. Default: none.
	AB *AB
	// Shadow targets get an asynchronous copy of the request; their answers are recorded,
	// never returned. Default: none.
	Shadow []Target
	// Redact lists PII types the executor masks in everything sent upstream. Default: none.
	Redact []string
	// Budgets gavel enforces for this request: the estimated cost is reserved atomically
	// against every hard one before the call and reconciled after. Default: none.
	Budgets []Budget
	// RateLimits gavel enforces atomically (requests and tokens per minute), in the
	// ledger's own terms: nothing converts them between the decision and the store.
	// Default: none.
	RateLimits []ledger.RateLimit
	// Limits cap the request. Default: no caps beyond the provider's configuration.
	Limits Limits
	// Degrade asks the executor to trade features for availability. Default: none.
	Degrade Degrade
	// Hedge, when set, sends the request to the next target(s) too if the primary has not
	// answered after a delay; the first answer wins and the others are cancelled.
	// Default: no hedging.
	Hedge *Hedge
	// Labels are copied onto metrics, traces and logs. Default: none.
	Labels map[string]string
	// Reasons name the rules that fired, for explanation. Default: none.
	Reasons []string
	// Remediation tells a denied caller what would pass. Only with Allow false.
	// Default: none.
	Remediation *Remediation
	// Fault is a chaos drill: the executor injects this failure into one attempt of the
	// walk. Honoured only when the operator enabled faults in gavel.yaml; otherwise the
	// bundle is refused at activation and such a decision is refused at request time.
	// Only with Allow true. Default: none.
	Fault *Fault
	// Cache says whether and how the answer may be served from gavel's response cache and
	// whether identical requests in flight share one upstream call. Only with Allow true.
	// Default: nil, no caching and no coalescing.
	Cache *Cache
}

// Cache is the policy's caching decision for one request (docs/cache.md).
type Cache struct {
	Mode  string // one of CacheModes
	TTLS  int    // seconds an entry stored by this request lives, 1–MaxCacheTTLS; default DefaultCacheTTLS
	Scope string // whose entries it may read and write: one of CacheScopes; default "team"
	// MinSimilarityBP is the least cosine similarity, in basis points (0–10000), a
	// semantic hit needs; only with mode "semantic". Default DefaultMinSimilarityBP.
	MinSimilarityBP int
	// Coalesce: identical requests in flight (same key) share one upstream call.
	Coalesce bool
	// ChargeBP is the share, in basis points of the original answer's cost, a cache hit or
	// a coalesced follower is charged (0–10000). Default 0: a hit costs nothing.
	ChargeBP int
	// Embed is the embeddings target a semantic lookup embeds the last user turn with:
	// required with mode "semantic", refused with any other. One target, not a list:
	// vectors of different models cannot be compared, so there is no fallback.
	Embed *Target
}

// Semantic reports whether the decision asks for a semantic lookup.
func (c *Cache) Semantic() bool { return c != nil && c.Mode == CacheSemantic && c.Embed != nil }

// Caches reports whether the decision lets the answer be looked up or stored.
func (c *Cache) Caches() bool { return c != nil && c.Mode != CacheOff }

// Cache modes and scopes.
const (
	CacheExact    = "exact"
	CacheSemantic = "semantic"
	CacheOff      = "off"
)

// CacheModes are the values of cache.mode.
var CacheModes = []string{CacheExact, CacheSemantic, CacheOff}

// CacheScopes are the values of cache.scope: entries are shared only within one caller's
// key, team or project, or (global) by everybody.
var CacheScopes = []string{"key", "team", "project", "global"}

// Cache defaults and bounds.
const (
	DefaultCacheTTLS       = 300
	MaxCacheTTLS           = 30 * 86400
	DefaultCacheScope      = "team"
	DefaultMinSimilarityBP = 9500
)

// Fault is an injected failure for a chaos drill, applied by the executor to one attempt.
type Fault struct {
	Kind        string // one of FaultKinds
	Status      int    // kind "error": the upstream status the attempt fails with, 400–599; default 503
	DelayMS     int    // kind "latency": the delay before the call, 1–MaxFaultDelayMS
	AfterChunks int    // kind "cut_stream": chunks relayed before the stream ends with an error
	Attempt     int    // which attempt of the walk (1 = the first call), default 1

	injected atomic.Bool
}

// MarkInjected records that the executor applied the fault: the walk reached its attempt.
func (f *Fault) MarkInjected() { f.injected.Store(true) }

// Injected reports whether the executor applied the fault to this request. A fault for an
// attempt the walk never made (the first attempt answered) was not injected.
func (f *Fault) Injected() bool { return f != nil && f.injected.Load() }

// Fault kinds.
const (
	FaultError     = "error"
	FaultLatency   = "latency"
	FaultCutStream = "cut_stream"
	FaultTimeout   = "timeout"
)

// FaultKinds are the fault kinds the executor can inject, in the order metrics list them.
var FaultKinds = []string{FaultError, FaultLatency, FaultCutStream, FaultTimeout}

// Fault defaults and bounds.
const (
	DefaultFaultStatus  = http.StatusServiceUnavailable
	DefaultFaultAttempt = 1
	MaxFaultDelayMS     = 600000
	MaxFaultAttempt     = 16
)

// Remediation is what a denied caller can change so that its request passes: gavel returns
// it as structured fields in the error body of every protocol (error.remediation), so an
// SDK user or a coding agent can correct a request without reading the policy. The JSON
// tags are the wire form, the same in the decision and in error bodies.
type Remediation struct {
	// Models are the models or aliases this caller may use instead.
	Models []string `json:"models,omitempty"`
	// Budget is the standing of the budget that refused the request.
	Budget *RemediationBudget `json:"budget,omitempty"`
	// MaxTokens is the largest max_tokens that would pass; 0: not stated.
	MaxTokens int `json:"max_tokens,omitempty"`
	// RetryAfterS is how many seconds until the same request would pass; 0: not stated.
	RetryAfterS int `json:"retry_after_s,omitempty"`
	// PII lists the PII types to remove from the request (or mask) before sending it again.
	PII []string `json:"pii,omitempty"`
}

// RemediationBudget is a budget's standing as a denied caller sees it.
type RemediationBudget struct {
	Name          string `json:"name"`
	RemainingMUSD int64  `json:"remaining_musd"`      // micro-USD left in this period, never negative
	ResetsAt      string `json:"resets_at,omitempty"` // RFC 3339, UTC: when the period ends
}

// Target is one provider/model pair the executor may call.
type Target struct {
	Provider string
	Model    string
}

// String renders the target as "provider/model", the form used in headers and logs.
func (t Target) String() string { return t.Provider + "/" + t.Model }

// Deny is the error a denied request gets.
type Deny struct {
	Status  int    // HTTP status, 400–599; default 403
	Code    string // OpenAI-style error code; default "policy_denied"
	Message string // human-readable; default "Request denied by policy."
	Type    string // OpenAI-style error type; default derived from Status
}

// AB identifies an experiment arm.
type AB struct {
	Experiment string
	Arm        string
}

// Limits are per-request caps; zero means "not set".
type Limits struct {
	MaxTokens  int // caps max_tokens sent upstream
	TimeoutMS  int // deadline for the whole request, all targets and retries included
	MaxRetries int // retries per target; -1 when not set (the provider's configuration applies)
	// Midstream is what a stream that fails after its first bytes reached the client
	// becomes: MidstreamError (the default, "") ends it with an error event;
	// MidstreamContinue asks the next healthy target to continue the answer in the same
	// client stream (docs/reliability.md, "Mid-stream continuation").
	Midstream string
}

// Mid-stream failure handling (Limits.Midstream).
const (
	MidstreamError    = "error"
	MidstreamContinue = "continue"
)

// Continues reports that a stream failing mid-way is to be continued on another target.
func (l *Limits) Continues() bool { return l.Midstream == MidstreamContinue }

// Hedge configures hedged requests: after DelayMS without an answer from the primary, the
// next target is tried as well, up to Max extra targets (one more per DelayMS).
type Hedge struct {
	DelayMS int // 1–600000
	Max     int // extra targets in flight at most; 1–3, default 1
}

// Hedge bounds.
const (
	DefaultHedgeMax = 1
	MaxHedgeMax     = 3
	MaxHedgeDelayMS = 600000
)

// Degrade holds graceful-degradation switches.
type Degrade struct {
	// Stream false buffers the upstream call and re-emits it as SSE to a streaming client.
	Stream *bool
}

// RedactableTypes are the PII types gavel's detectors find and the executor can mask.
var RedactableTypes = map[string]bool{"email": true, "phone": true, "credit_card": true, "ssn": true, "iban": true, "ip": true, "secret": true}

// Decision defaults.
const (
	DefaultDenyStatus  = http.StatusForbidden
	DefaultDenyCode    = "policy_denied"
	DefaultDenyMessage = "Request denied by policy."
)
