package policy

import (
	"slices"
	"sort"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Input is what gavel knows about one request when it asks the policy. Value builds the
// OPA value by hand: measured 3–6 µs against 22–26 µs for ast.InterfaceToValue on a map.
type Input struct {
	Request Request
	// Caller is the virtual key's record, converted once per key (see CallerValue).
	Caller ast.Value
	// Providers is the live signal snapshot, converted once per change by engine/signals.
	Providers ast.Value
	// Plan is data.gavel.plan evaluated over Providers (see Revision.Plan); nil to let the
	// policy evaluate it inline.
	Plan ast.Value
	// PII counts the findings of gavel's detectors per type (email, phone, credit_card,
	// ssn, iban, ip, secret); empty when the prompt has none.
	PII map[string]int
	// Spend is this caller's standing against each budget of data.gavel.budgets, by name.
	Spend map[string]SpendState
	// Rate is this caller's usage in the current minute, by scope.
	Rate map[string]RateState
	// NowNS is the request's arrival time in Unix nanoseconds, as time.now_ns() would say.
	NowNS int64
}

// Request holds the request features the policy may read.
type Request struct {
	ID             string
	Endpoint       string // "chat" | "embeddings" | "messages" | "responses"
	Protocol       string // the client's wire format: "openai" | "anthropic" | "responses"
	Model          string // as the client asked: an alias, a model, or provider/model
	Stream         bool
	Messages       []Message
	HasTools       bool
	HasImages      bool
	HasCode        bool // the prompt looks like it contains source code
	MaxTokens      int  // 0 when the client set none
	EstInputTokens int
	Metadata       map[string]string // body metadata merged with X-Gavel-Tags
	// Fields names, sorted, the members the client's body held: the top-level ones (a
	// literal extra_body's members counted among them) and, by path, the unknown ones of
	// messages and content parts ("messages[].content[].cache_control").
	Fields []string
	Bucket int // 0–9999, stable per sticky key
	Sample int // 0–9999, uniformly random per request (shadow sampling)
}

// SpendState is a budget's spend in its current period, in micro-USD.
type SpendState struct {
	SpentMUSD, ReservedMUSD, LimitMUSD int64
}

// RateState is a scope's usage in the current minute.
type RateState struct {
	Requests, Tokens int64
}

// Message is a message's role and text (images contribute nothing to Text).
type Message struct {
	Role string
	Text string
}

// Terms reused by every input: keys are immutable once built.
var (
	kRequest        = ast.StringTerm("request")
	kCaller         = ast.StringTerm("caller")
	kProviders      = ast.StringTerm("providers")
	kNow            = ast.StringTerm("now")
	kPlan           = ast.StringTerm("plan")
	kID             = ast.StringTerm("id")
	kEndpoint       = ast.StringTerm("endpoint")
	kProtocol       = ast.StringTerm("protocol")
	kModel          = ast.StringTerm("model")
	kStream         = ast.StringTerm("stream")
	kMessages       = ast.StringTerm("messages")
	kRole           = ast.StringTerm("role")
	kText           = ast.StringTerm("text")
	kHasTools       = ast.StringTerm("has_tools")
	kHasImages      = ast.StringTerm("has_images")
	kHasCode        = ast.StringTerm("has_code")
	kSample         = ast.StringTerm("sample")
	kPII            = ast.StringTerm("pii")
	kSpend          = ast.StringTerm("spend")
	kRate           = ast.StringTerm("rate")
	kSpent          = ast.StringTerm("spent_musd")
	kReserved       = ast.StringTerm("reserved_musd")
	kLimit          = ast.StringTerm("limit_musd")
	kRequests       = ast.StringTerm("requests")
	kTokens         = ast.StringTerm("tokens")
	kMaxTokens      = ast.StringTerm("max_tokens")
	kEstInputTokens = ast.StringTerm("est_input_tokens")
	kMetadata       = ast.StringTerm("metadata")
	kFields         = ast.StringTerm("fields")
	kBucket         = ast.StringTerm("bucket")
	kKeyID          = ast.StringTerm("key_id")
	kUser           = ast.StringTerm("user")
	kTeam           = ast.StringTerm("team")
	kProject        = ast.StringTerm("project")
	kTier           = ast.StringTerm("tier")
	kLabels         = ast.StringTerm("labels")

	emptyObject    = ast.NewObject()
	emptyArrayTerm = ast.ArrayTerm()
)

// Value builds the policy input.
func (in *Input) Value() ast.Value {
	r := &in.Request
	msgs := make([]*ast.Term, len(r.Messages))
	for i := range r.Messages {
		msgs[i] = ast.ObjectTerm(
			ast.Item(kRole, ast.StringTerm(r.Messages[i].Role)),
			ast.Item(kText, ast.StringTerm(r.Messages[i].Text)),
		)
	}
	req := ast.NewObject(
		ast.Item(kID, ast.StringTerm(r.ID)),
		ast.Item(kEndpoint, ast.StringTerm(r.Endpoint)),
		ast.Item(kProtocol, ast.StringTerm(r.protocol())),
		ast.Item(kModel, ast.StringTerm(r.Model)),
		ast.Item(kStream, ast.BooleanTerm(r.Stream)),
		ast.Item(kMessages, ast.ArrayTerm(msgs...)),
		ast.Item(kHasTools, ast.BooleanTerm(r.HasTools)),
		ast.Item(kHasImages, ast.BooleanTerm(r.HasImages)),
		ast.Item(kHasCode, ast.BooleanTerm(r.HasCode)),
		ast.Item(kMaxTokens, ast.IntNumberTerm(r.MaxTokens)),
		ast.Item(kEstInputTokens, ast.IntNumberTerm(r.EstInputTokens)),
		ast.Item(kMetadata, ast.NewTerm(stringMapValue(r.Metadata))),
		ast.Item(kFields, fieldsTerm(r.Fields)),
		ast.Item(kBucket, ast.IntNumberTerm(r.Bucket)),
		ast.Item(kSample, ast.IntNumberTerm(r.Sample)),
	)
	caller, providers := in.Caller, in.Providers
	if caller == nil {
		caller = emptyObject
	}
	if providers == nil {
		providers = emptyObject
	}
	obj := ast.NewObject(
		ast.Item(kRequest, ast.NewTerm(req)),
		ast.Item(kCaller, ast.NewTerm(caller)),
		ast.Item(kProviders, ast.NewTerm(providers)),
		ast.Item(kNow, ast.NewTerm(ast.Number(itoa(in.NowNS)))),
		ast.Item(kPII, ast.NewTerm(countsValue(in.PII))),
		ast.Item(kSpend, ast.NewTerm(spendValue(in.Spend))),
		ast.Item(kRate, ast.NewTerm(rateValue(in.Rate))),
	)
	if in.Plan != nil {
		obj.Insert(kPlan, ast.NewTerm(in.Plan))
	}
	return obj
}

// CallerValue converts a key record to input.caller; callers cache the result per key.
func CallerValue(k KeyRecord) ast.Value {
	return ast.NewObject(
		ast.Item(kKeyID, ast.StringTerm(k.KeyID)),
		ast.Item(kUser, ast.StringTerm(k.User)),
		ast.Item(kTeam, ast.StringTerm(k.Team)),
		ast.Item(kProject, ast.StringTerm(k.Project)),
		ast.Item(kTier, ast.StringTerm(k.Tier)),
		ast.Item(kLabels, ast.NewTerm(stringMapValue(k.Labels))),
	)
}

func stringMapValue(m map[string]string) ast.Value {
	if len(m) == 0 {
		return emptyObject // OPA never mutates input, so one empty object serves all
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	items := make([][2]*ast.Term, len(keys))
	for i, k := range keys {
		items[i] = ast.Item(ast.StringTerm(k), ast.StringTerm(m[k]))
	}
	return ast.NewObject(items...)
}

// fieldsTerm is input.request.fields. Requests mostly carry one of a few sets of members,
// so the terms of the sets seen are kept, a bounded number since clients choose them: a
// typical request reuses one and allocates nothing here.
func fieldsTerm(names []string) *ast.Term {
	if len(names) == 0 {
		return emptyArrayTerm
	}
	h := uint64(14695981039346656037)
	for _, n := range names {
		for i := 0; i < len(n); i++ {
			h ^= uint64(n[i])
			h *= 1099511628211
		}
		h ^= 0xff // separator: ["ab"] and ["a", "b"] differ
		h *= 1099511628211
	}
	fieldSets.mu.RLock()
	e, ok := fieldSets.m[h]
	fieldSets.mu.RUnlock()
	if ok && slices.Equal(e.names, names) {
		return e.term
	}
	terms := make([]*ast.Term, len(names))
	for i, n := range names {
		terms[i] = ast.StringTerm(n)
	}
	t := ast.NewTerm(ast.NewArray(terms...))
	fieldSets.mu.Lock()
	if _, taken := fieldSets.m[h]; !taken && len(fieldSets.m) < maxFieldSets {
		fieldSets.m[h] = fieldSet{names: slices.Clone(names), term: t}
	}
	fieldSets.mu.Unlock()
	return t
}

// maxFieldSets bounds the sets of member names fieldsTerm keeps.
const maxFieldSets = 512

var fieldSets = struct {
	mu sync.RWMutex
	m  map[uint64]fieldSet
}{m: map[uint64]fieldSet{}}

type fieldSet struct {
	names []string
	term  *ast.Term
}

func spendValue(m map[string]SpendState) ast.Value {
	if len(m) == 0 {
		return emptyObject
	}
	items := make([][2]*ast.Term, 0, len(m))
	for k, s := range m {
		items = append(items, ast.Item(ast.StringTerm(k), ast.ObjectTerm(
			ast.Item(kSpent, ast.NewTerm(ast.Number(itoa(s.SpentMUSD)))),
			ast.Item(kReserved, ast.NewTerm(ast.Number(itoa(s.ReservedMUSD)))),
			ast.Item(kLimit, ast.NewTerm(ast.Number(itoa(s.LimitMUSD)))),
		)))
	}
	return ast.NewObject(items...)
}

func rateValue(m map[string]RateState) ast.Value {
	if len(m) == 0 {
		return emptyObject
	}
	items := make([][2]*ast.Term, 0, len(m))
	for k, s := range m {
		items = append(items, ast.Item(ast.StringTerm(k), ast.ObjectTerm(
			ast.Item(kRequests, ast.NewTerm(ast.Number(itoa(s.Requests)))),
			ast.Item(kTokens, ast.NewTerm(ast.Number(itoa(s.Tokens)))),
		)))
	}
	return ast.NewObject(items...)
}

func countsValue(m map[string]int) ast.Value {
	if len(m) == 0 {
		return emptyObject
	}
	items := make([][2]*ast.Term, 0, len(m))
	for k, n := range m {
		items = append(items, ast.Item(ast.StringTerm(k), ast.IntNumberTerm(n)))
	}
	return ast.NewObject(items...)
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	neg := n < 0
	u := uint64(n)
	if neg {
		u = uint64(-n)
	}
	for u >= 10 {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
	}
	i--
	b[i] = byte('0' + u)
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// protocol defaults to "openai" so that inputs built before the field existed (replayed
// decision logs, tests) still say what the client spoke.
func (r *Request) protocol() string {
	if r.Protocol == "" {
		return "openai"
	}
	return r.Protocol
}
