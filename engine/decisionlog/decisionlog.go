package decisionlog

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/gavel-gw/gavel/engine/policy"
)

// Record is what the request path captures: values it built anyway, no copies. It becomes
// an OPA decision-log event: {"decision_id", "path": "gavel/decision", "input", "result",
// "bundles": {"gavel": {"revision"}}, "timestamp", "labels", "custom": {"route", "latency_ms",
// "usage": {"input_tokens", "output_tokens"}, "cost_musd",
// "substituted", "status", "error", "dropped_params", "fault", "continued_from"}}.
type Record struct {
	ID       string
	Time     time.Time
	Revision string
	Input    ast.Value // the policy input (input.plan is left out of events)
	// Request, when set, is input.request as Go built it: encoding it directly is much
	// cheaper than converting the OPA value back.
	Request *policy.Request
	Result  ast.Value // data.gavel.decision as the policy returned it
	Route   string    // provider/model that answered, or "none"
	Status  int       // HTTP status the client got
	Error   string    // error code when the request failed

	// Substituted is "asked -> answered" when the client named a provider/model and
	// another one answered (X-Gavel-Substituted); "" otherwise.
	Substituted string
	// Dropped names the request's fields the answering provider could not express and was
	// sent without (its drop_params is drop).
	Dropped []string
	// Fault is the kind of fault a chaos drill injected into the request; "" when none.
	Fault string
	// Cache is the request's cache result (hit, miss, coalesced, bypass); "" when the
	// decision used no cache.
	Cache string
	// CacheKind is "semantic" when a semantic lookup served the answer (written as
	// custom.cache_kind with custom.cache_similarity_bp, CacheSimilarityBP: the stored
	// turn's similarity in basis points); "" otherwise.
	CacheKind         string
	CacheSimilarityBP int
	// ContinuedFrom lists the routes whose streams were cut mid-way and continued on
	// another target (limits.midstream "continue"), in order; Route answered the rest.
	ContinuedFrom []string
	// Usage is set when the answer's usage was counted by the time the request finished
	// (InputTokens, OutputTokens) and priced (CostMUSD, micro-USD): what `gavel policy
	// diff` re-prices with a candidate's catalog.
	Usage                     bool
	InputTokens, OutputTokens int
	CostMUSD                  int64
	// LatencyMS is the request's duration as the client saw it.
	LatencyMS int64

	canary *Canary // set by LogCanary: the event is a canary disagreement
}

// Logger defaults.
const (
	DefaultBuffer = 4096 // events waiting to be encoded
	DefaultKeep   = 2000 // recent events kept for explanations by id
	// DefaultFlushTimeout bounds how long Close waits for the sinks to deliver what they
	// hold when the caller gives no deadline of its own.
	DefaultFlushTimeout = 5 * time.Second
)

// Config controls the logger.
type Config struct {
	Buffer       int               // events waiting to be processed; more are dropped; default DefaultBuffer
	Keep         int               // recent events kept for lookup by id and listing; default DefaultKeep
	MaskMessages bool              // replace message texts by their size (data residency); the default
	Labels       map[string]string // added to every event (instance id, version)
	Sink         func(line []byte) // optional: a function that sees every encoded event
	// Sinks receive every event besides memory (Console, File, Service); the logger closes
	// them on Close.
	Sinks []Sink
	// Mask lists JSON pointers erased from every event (see ValidateMask); events name the
	// rules that erased something in "erased". Invalid rules are ignored: validate first.
	Mask []string
	// Observer counts drops of the request path's queue (sink "buffer"); nil for none.
	Observer Observer
	// Observe, when set, sees every kept event's index entry on the logger's goroutine
	// (never the request's): the admin traffic summary is fed from it.
	Observe func(Entry)
}

// Logger is safe for concurrent use.
type Logger struct {
	cfg     Config
	ch      chan Record
	dropped atomic.Int64
	logged  atomic.Int64
	mu      sync.RWMutex
	byID    map[string]int // decision id → its slot in ring
	ring    []slot         // the most recent Keep events, oldest overwritten first
	next    int            // the slot the next event takes
	done    chan struct{}

	// Shared parts of inputs (the provider snapshot, a key's caller record) are the same
	// value for thousands of requests: encode each once.
	cacheKeys [8]ast.Value
	cacheVals [8]json.RawMessage
	cacheNext int
	labels    []byte // Config.Labels, encoded once
	sizeHint  int    // capacity for the next event: the last one's size and some

	masks    []mask
	blank    indexMask // index fields the mask rules erase: left empty in entries
	obs      Observer
	closeCtx context.Context // set by Close before the queue closes; bounds sink flushes
}

// New starts a logger; Close stops it.
func New(cfg Config) *Logger {
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.Keep <= 0 {
		cfg.Keep = DefaultKeep
	}
	l := &Logger{cfg: cfg, ch: make(chan Record, cfg.Buffer), byID: make(map[string]int, cfg.Keep),
		ring: make([]slot, cfg.Keep), done: make(chan struct{}), sizeHint: 1024}
	if len(cfg.Labels) > 0 {
		l.labels, _ = json.Marshal(cfg.Labels)
	}
	for _, p := range cfg.Mask {
		if m, err := parseMask([]string{p}); err == nil {
			l.masks = append(l.masks, m...)
		}
	}
	l.blank = maskedFields(l.masks)
	l.obs = observerOrNop(cfg.Observer)
	go l.run()
	return l
}

// Log hands a record to the background goroutine without blocking; false means the
// buffer was full and the event was dropped (counted in Dropped).
func (l *Logger) Log(r Record) bool {
	select {
	case l.ch <- r:
		return true
	default:
		l.dropped.Add(1)
		return false
	}
}

// Dropped counts events lost to a full buffer.
func (l *Logger) Dropped() int64 { return l.dropped.Load() }

// Logged counts events processed.
func (l *Logger) Logged() int64 { return l.logged.Load() }

// Get returns a recent event, encoded as JSON, by decision id.
func (l *Logger) Get(id string) ([]byte, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	i, ok := l.byID[id]
	if !ok {
		return nil, false
	}
	return l.ring[i].line, true
}

// Close processes what is buffered, then closes the sinks, which deliver what they hold
// until ctx ends. Log must not be called after Close.
func (l *Logger) Close(ctx context.Context) {
	l.closeCtx = ctx
	close(l.ch)
	select {
	case <-l.done:
	case <-ctx.Done():
	}
}

func (l *Logger) run() {
	defer close(l.done)
	var reported int64
	reportDrops := func() {
		if d := l.dropped.Load(); d != reported {
			l.obs.DecisionLogDropped("buffer", int(d-reported))
			reported = d
		}
	}
	for r := range l.ch {
		var line []byte
		if r.canary != nil {
			line = l.encodeCanary(r) // masked as it is built
		} else if line = l.encode(r); line != nil && l.masks != nil {
			line = applyMasks(line, l.masks)
		}
		if line != nil {
			e := l.index(&r)
			l.keep(e, line)
			if l.cfg.Observe != nil && r.canary == nil { // a canary event is not traffic
				l.cfg.Observe(e)
			}
			if l.cfg.Sink != nil {
				l.cfg.Sink(line)
			}
			for _, s := range l.cfg.Sinks {
				s.Write(line)
			}
			l.logged.Add(1)
		}
		// Caught up: a quiet moment to flush buffered sinks and publish the request
		// path's drops (counted there with one atomic add, nothing more).
		if len(l.ch) == 0 {
			l.flush()
			reportDrops()
		}
	}
	reportDrops()
	for _, s := range l.cfg.Sinks {
		if c, ok := s.(Closer); ok {
			c.Close(l.closeCtx)
		}
	}
}

func (l *Logger) flush() {
	for _, s := range l.cfg.Sinks {
		if f, ok := s.(Flusher); ok {
			f.Flush()
		}
	}
}

func (l *Logger) keep(e Entry, line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old := l.ring[l.next].e.ID; old != "" && l.byID[old] == l.next {
		delete(l.byID, old)
	}
	l.ring[l.next] = slot{e: e, line: line}
	l.byID[e.ID] = l.next
	l.next = (l.next + 1) % len(l.ring)
}

// shared encodes a value that many events share, once.
func (l *Logger) shared(v ast.Value) []byte {
	for i, k := range l.cacheKeys {
		if k == v {
			return l.cacheVals[i]
		}
	}
	x, err := ast.JSON(v)
	if err != nil {
		return nil
	}
	b, err := json.Marshal(x)
	if err != nil {
		return nil
	}
	l.cacheKeys[l.cacheNext], l.cacheVals[l.cacheNext] = v, b
	l.cacheNext = (l.cacheNext + 1) % len(l.cacheKeys)
	return b
}

// maskMessages replaces every message text with its size: prompts stay out of logs unless
// the operator opts in.
func maskMessages(request any) {
	req, _ := request.(map[string]any)
	msgs, _ := req["messages"].([]any)
	for _, m := range msgs {
		if mm, ok := m.(map[string]any); ok {
			if t, ok := mm["text"].(string); ok {
				mm["text"] = "[masked " + strconv.Itoa(len(t)) + " bytes]"
			}
		}
	}
}

// encode writes the event for r as one JSON line by hand: encoding/json would reflect over
// the event and re-validate every embedded part, for every request. The result is shared
// by identity when the policy returned a precomputed decision (the plan's fast path).
// Small per-request parts (now, pii, spend, rate) are written straight from the OPA value.
// The line is kept (Get), so it is a fresh buffer, sized from the previous line.
func (l *Logger) encode(r Record) []byte {
	b := make([]byte, 0, l.sizeHint)
	b = append(b, `{"decision_id":`...)
	b = policy.AppendJSONString(b, r.ID)
	b = append(b, `,"path":"gavel/decision","input":`...)
	if obj, ok := r.Input.(ast.Object); ok {
		b = append(b, '{')
		n := 0
		var members [maxInputMembers][2]*ast.Term
		for _, m := range sortedMembers(obj, &members) { // sorted, as encoding/json orders a map's keys
			k, v := m[0], m[1].Value
			key, _ := k.Value.(ast.String)
			if key == "plan" {
				continue
			}
			if n > 0 {
				b = append(b, ',')
			}
			mark := len(b)
			b = policy.AppendJSONString(b, string(key))
			b = append(b, ':')
			var part []byte
			ok := true
			switch {
			case key == "providers" || key == "caller":
				part = l.shared(v)
				ok = part != nil
				b = append(b, part...)
			case key == "request" && r.Request != nil:
				b = r.Request.AppendJSON(b, l.cfg.MaskMessages)
			case key == "request" && l.cfg.MaskMessages:
				part, ok = genericJSON(v, true)
				b = append(b, part...)
			default:
				if b, ok = appendValue(b, v); !ok {
					part, ok = genericJSON(v, false)
					b = append(b, part...)
				}
			}
			if !ok {
				b = b[:mark-min(n, 1)] // leave the part out, as the comma before it
				continue
			}
			n++
		}
		b = append(b, '}')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"result":`...)
	if r.Result != nil {
		if res := l.shared(r.Result); res != nil {
			b = append(b, res...)
		} else {
			b = append(b, "null"...)
		}
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"bundles":{"gavel":{"revision":`...)
	b = policy.AppendJSONString(b, r.Revision)
	b = append(b, `}},"timestamp":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if len(l.labels) > 0 {
		b = append(b, `,"labels":`...)
		b = append(b, l.labels...)
	}
	b = append(b, `,"custom":{"route":`...)
	b = policy.AppendJSONString(b, r.Route)
	if r.Substituted != "" {
		b = append(b, `,"substituted":`...)
		b = policy.AppendJSONString(b, r.Substituted)
	}
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	if r.Error != "" {
		b = append(b, `,"error":`...)
		b = policy.AppendJSONString(b, r.Error)
	}
	if len(r.Dropped) > 0 {
		b = append(b, `,"dropped_params":[`...)
		for i, f := range r.Dropped {
			if i > 0 {
				b = append(b, ',')
			}
			b = policy.AppendJSONString(b, f)
		}
		b = append(b, ']')
	}
	if r.Fault != "" {
		b = append(b, `,"fault":`...)
		b = policy.AppendJSONString(b, r.Fault)
	}
	if r.Cache != "" {
		b = append(b, `,"cache":`...)
		b = policy.AppendJSONString(b, r.Cache)
		if r.CacheKind != "" {
			b = append(b, `,"cache_kind":`...)
			b = policy.AppendJSONString(b, r.CacheKind)
			b = append(b, `,"cache_similarity_bp":`...)
			b = strconv.AppendInt(b, int64(r.CacheSimilarityBP), 10)
		}
	}
	if len(r.ContinuedFrom) > 0 {
		b = append(b, `,"continued_from":[`...)
		for i, route := range r.ContinuedFrom {
			if i > 0 {
				b = append(b, ',')
			}
			b = policy.AppendJSONString(b, route)
		}
		b = append(b, ']')
	}
	b = append(b, `,"latency_ms":`...)
	b = strconv.AppendInt(b, r.LatencyMS, 10)
	if r.Usage {
		b = append(b, `,"usage":{"input_tokens":`...)
		b = strconv.AppendInt(b, int64(r.InputTokens), 10)
		b = append(b, `,"output_tokens":`...)
		b = strconv.AppendInt(b, int64(r.OutputTokens), 10)
		b = append(b, `},"cost_musd":`...)
		b = strconv.AppendInt(b, r.CostMUSD, 10)
	}
	b = append(b, '}', '}', '\n')
	l.sizeHint = len(b) + len(b)/8
	return b
}

// maxInputMembers bounds policy.InputMembers, so that sortedMembers' buffer is an array
// on the stack.
const maxInputMembers = 16

// sortedMembers is obj's members in its keys' order. An input of policy.InputMembers alone
// (every request's) is looked up in their order: Keys sorts a fresh input's keys on every
// request. Any other object takes Keys.
func sortedMembers(obj ast.Object, buf *[maxInputMembers][2]*ast.Term) [][2]*ast.Term {
	n := 0
	for _, k := range policy.InputMembers {
		if v := obj.Get(k); v != nil && n < len(buf) {
			buf[n] = [2]*ast.Term{k, v}
			n++
		}
	}
	if n == obj.Len() {
		return buf[:n]
	}
	keys := obj.Keys()
	out := make([][2]*ast.Term, len(keys))
	for i, k := range keys {
		out[i] = [2]*ast.Term{k, obj.Get(k)}
	}
	return out
}

// validNumber reports whether s is a JSON number, as json.Valid would for it alone.
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	}
	return i == len(s)
}

// genericJSON encodes v through Go values, as OPA would: the fallback for values
// appendValue does not write.
func genericJSON(v ast.Value, mask bool) ([]byte, bool) {
	x, err := ast.JSON(v)
	if err != nil {
		return nil, false
	}
	if mask {
		maskMessages(x)
	}
	part, err := json.Marshal(x)
	return part, err == nil
}

// appendValue writes a JSON value (strings, numbers, booleans, null, and objects with
// string keys and arrays of those) exactly as json.Marshal(ast.JSON(v)) would; false for
// anything else, with b unchanged.
func appendValue(b []byte, v ast.Value) ([]byte, bool) {
	mark := len(b)
	switch x := v.(type) {
	case ast.String:
		return policy.AppendJSONString(b, string(x)), true
	case ast.Number:
		if !validNumber(string(x)) {
			return b, false
		}
		return append(b, x...), true
	case ast.Boolean:
		return strconv.AppendBool(b, bool(x)), true
	case ast.Null:
		return append(b, "null"...), true
	case *ast.Array:
		b = append(b, '[')
		for i := range x.Len() {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendValue(b, x.Elem(i).Value); !ok {
				return b[:mark], false
			}
		}
		return append(b, ']'), true
	case ast.Object:
		return appendObject(b, x)
	}
	return b, false
}

// appendObject is appendValue's object: its members in the order Until visits them (its
// sorted keys), through Keys and Get rather than Until's callback, whose closure made b
// escape: appendValue allocated on every call, for every string and number too.
func appendObject(b []byte, x ast.Object) ([]byte, bool) {
	mark := len(b)
	b = append(b, '{')
	for i, k := range x.Keys() {
		key, isStr := k.Value.(ast.String)
		if !isStr {
			return b[:mark], false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = policy.AppendJSONString(b, string(key))
		b = append(b, ':')
		var ok bool
		if b, ok = appendValue(b, x.Get(k).Value); !ok {
			return b[:mark], false
		}
	}
	return append(b, '}'), true
}
