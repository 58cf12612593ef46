package policy

import (
	"slices"
	"sort"
	"strconv"
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
	ID        string
	Endpoint  string // "chat" | "embeddings" | "messages" | "count_tokens" | "responses"
	Protocol  string // the client's wire format: "openai" | "anthropic" | "responses"
	Model     string // as the client asked: an alias, a model, or provider/model
	Stream    bool
	Messages  []Message
	HasTools  bool
	HasImages bool
	HasCode   bool // the prompt looks like it contains source code
	MaxTokens int  // 0 when the client set none
	// Temperature and Seed are the client's sampling settings, nil when it set none (the
	// upstream's default then applies: not deterministic). A cache rule reads them.
	Temperature    *float64
	Seed           *int64
	N              int // completions asked for: n, 1 when unset
	Turns          int // user messages in Messages: 1 for a single-turn request
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
	kTemperature    = ast.StringTerm("temperature")
	kSeed           = ast.StringTerm("seed")
	kN              = ast.StringTerm("n")
	kTurns          = ast.StringTerm("turns")
	kKeyID          = ast.StringTerm("key_id")
	kUser           = ast.StringTerm("user")
	kTeam           = ast.StringTerm("team")
	kProject        = ast.StringTerm("project")
	kTier           = ast.StringTerm("tier")
	kLabels         = ast.StringTerm("labels")

	emptyObject    = ast.NewObject()
	emptyArrayTerm = ast.ArrayTerm()
)

// InputMembers are the names of the input's top-level members Value may write, sorted as
// encoding/json sorts a map's keys: a reader of every request's input (the decision log)
// looks them up in this order instead of sorting each input's keys.
var InputMembers = func() []*ast.Term {
	m := []*ast.Term{kRequest, kCaller, kProviders, kNow, kPlan, kPII, kSpend, kRate}
	slices.SortFunc(m, func(a, b *ast.Term) int { return a.Value.Compare(b.Value) })
	return m
}()

// Strings of the input that come from a small closed set (endpoints, protocols, roles):
// one shared term each instead of two allocations per use.
var knownStrings = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, s := range []string{
		"chat", "embeddings", "messages", "count_tokens", "responses",
		"openai", "anthropic",
		"system", "developer", "user", "assistant", "tool", "function",
	} {
		m[s] = ast.StringTerm(s)
	}
	return m
}()

// stringTerm is a term for s, shared when s is one of the known strings.
func stringTerm(s string) *ast.Term {
	if t, ok := knownStrings[s]; ok {
		return t
	}
	return ast.StringTerm(s)
}

// inputTerms is the number of terms Value takes from its arena besides the messages: the
// request's fields and the top-level values.
const inputTerms = 21

// Value builds the policy input.
//
// It runs once per request, so it is built for few allocations: the terms live in one
// array, booleans, small integers and strings from a closed set are OPA's or gavel's
// shared terms, and the digits of every large integer share one string. OPA never mutates
// an input, which is what makes sharing terms between requests safe.
func (in *Input) Value() ast.Value {
	r := &in.Request
	arena := make([]ast.Term, 0, inputTerms+2*len(r.Messages))
	term := func(v ast.Value) *ast.Term {
		arena = append(arena, ast.Term{Value: v})
		return &arena[len(arena)-1]
	}
	var nums numbers
	now := nums.add(in.NowNS)
	maxTok, estTok := nums.add(int64(r.MaxTokens)), nums.add(int64(r.EstInputTokens))
	bucket, sample := nums.add(int64(r.Bucket)), nums.add(int64(r.Sample))
	n, turns := nums.add(int64(r.n())), nums.add(int64(r.Turns))
	seed := 0
	if r.Seed != nil {
		seed = nums.add(*r.Seed)
	}
	nums.done()

	msgs := make([]*ast.Term, len(r.Messages))
	for i := range r.Messages {
		msgs[i] = term(ast.NewObject(
			ast.Item(kRole, stringTerm(r.Messages[i].Role)),
			ast.Item(kText, term(ast.String(r.Messages[i].Text))),
		))
	}
	fields := [19][2]*ast.Term{
		ast.Item(kID, term(ast.String(r.ID))),
		ast.Item(kEndpoint, stringTerm(r.Endpoint)),
		ast.Item(kProtocol, stringTerm(r.protocol())),
		ast.Item(kModel, term(ast.String(r.Model))),
		ast.Item(kStream, ast.InternedTerm(r.Stream)),
		ast.Item(kMessages, term(ast.NewArray(msgs...))),
		ast.Item(kHasTools, ast.InternedTerm(r.HasTools)),
		ast.Item(kHasImages, ast.InternedTerm(r.HasImages)),
		ast.Item(kHasCode, ast.InternedTerm(r.HasCode)),
		ast.Item(kMaxTokens, nums.term(maxTok, term)),
		ast.Item(kEstInputTokens, nums.term(estTok, term)),
		ast.Item(kMetadata, term(stringMapValue(r.Metadata))),
		ast.Item(kFields, fieldsTerm(r.Fields)), // shared, not from the arena
		ast.Item(kBucket, nums.term(bucket, term)),
		ast.Item(kSample, nums.term(sample, term)),
		ast.Item(kN, nums.term(n, term)),
		ast.Item(kTurns, nums.term(turns, term)),
	}
	nf := 17
	if r.Temperature != nil {
		fields[nf] = ast.Item(kTemperature, temperatureTerm(*r.Temperature, term))
		nf++
	}
	if r.Seed != nil {
		fields[nf] = ast.Item(kSeed, nums.term(seed, term))
		nf++
	}
	req := ast.NewObject(fields[:nf]...)
	caller, providers := in.Caller, in.Providers
	if caller == nil {
		caller = emptyObject
	}
	if providers == nil {
		providers = emptyObject
	}
	items := [8][2]*ast.Term{
		ast.Item(kRequest, term(req)),
		ast.Item(kCaller, term(caller)),
		ast.Item(kProviders, term(providers)),
		ast.Item(kNow, nums.term(now, term)),
		ast.Item(kPII, term(countsValue(in.PII))),
		ast.Item(kSpend, term(spendValue(in.Spend))),
		ast.Item(kRate, term(rateValue(in.Rate))),
	}
	ni := 7
	if in.Plan != nil {
		items[ni] = ast.Item(kPlan, term(in.Plan))
		ni++
	}
	return ast.NewObject(items[:ni]...)
}

// numbers formats a request's integers into one string, so that they cost one allocation
// together; integers OPA interns (-1 to 512) use its shared terms instead.
type numbers struct {
	buf  [8 * 20]byte
	n    int
	ends [8]int
	k    int
	s    string
}

// add formats v and returns its index, or -2-v (below zero) when v has an interned term.
func (ns *numbers) add(v int64) int {
	if v >= -1 && v <= 512 {
		return int(-2 - v)
	}
	ns.n = len(strconv.AppendInt(ns.buf[:ns.n], v, 10))
	ns.ends[ns.k] = ns.n
	ns.k++
	return ns.k - 1
}

func (ns *numbers) done() { ns.s = string(ns.buf[:ns.n]) }

// term is the term of the integer add returned i for, from OPA's interned terms or made
// with mk.
func (ns *numbers) term(i int, mk func(ast.Value) *ast.Term) *ast.Term {
	if i < 0 {
		return ast.IntNumberTerm(-2 - i)
	}
	start := 0
	if i > 0 {
		start = ns.ends[i-1]
	}
	return mk(ast.Number(ns.s[start:ns.ends[i]]))
}

// temperatureTerm is input.request.temperature: 0 and 1, the usual settings, are OPA's
// shared terms.
func temperatureTerm(t float64, mk func(ast.Value) *ast.Term) *ast.Term {
	switch t {
	case 0:
		return ast.IntNumberTerm(0)
	case 1:
		return ast.IntNumberTerm(1)
	}
	return mk(ast.Number(strconv.FormatFloat(t, 'g', -1, 64)))
}

// n is input.request.n: 1 when the client asked for no number of completions.
func (r *Request) n() int {
	if r.N <= 0 {
		return 1
	}
	return r.N
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
		ast.Item(ast.StringTerm("models"), stringsTerm(k.Models)),
		ast.Item(ast.StringTerm("rpm"), ast.IntNumberTerm(int(k.RPM))),
		ast.Item(ast.StringTerm("tpm"), ast.IntNumberTerm(int(k.TPM))),
		ast.Item(ast.StringTerm("budget_musd"), ast.NewTerm(ast.Number(strconv.FormatInt(k.BudgetMUSD, 10)))),
		ast.Item(ast.StringTerm("budget_period"), ast.StringTerm(k.BudgetPeriod)),
	)
}

// stringsTerm is a sorted array of the strings (the same key, the same input).
func stringsTerm(ss []string) *ast.Term {
	if len(ss) == 0 {
		return emptyArrayTerm
	}
	ss = slices.Sorted(slices.Values(ss))
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(ts...)
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
