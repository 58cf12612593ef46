package decisionlog

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Record is what the request path captures: values it built anyway, no copies.
type Record struct {
	ID       string
	Time     time.Time
	Revision string
	Input    ast.Value // the policy input (input.plan is left out of events)
	Result   ast.Value // data.gavel.decision as the policy returned it
	Route    string    // provider/model that answered, or "none"
	Status   int       // HTTP status the client got
	Error    string    // error code when the request failed
}

// Event is an OPA decision-log event; gavel's own facts go under "custom".
type Event struct {
	DecisionID string                `json:"decision_id"`
	Path       string                `json:"path"`
	Input      any                   `json:"input,omitempty"`
	Result     any                   `json:"result,omitempty"`
	Bundles    map[string]BundleInfo `json:"bundles"`
	Timestamp  time.Time             `json:"timestamp"`
	Labels     map[string]string     `json:"labels,omitempty"`
	Custom     map[string]any        `json:"custom,omitempty"`
}

// BundleInfo names the bundle revision that made the decision.
type BundleInfo struct {
	Revision string `json:"revision"`
}

// Config controls the logger.
type Config struct {
	Buffer       int               // events waiting to be processed; more are dropped; default 4096
	Keep         int               // recent events kept for lookup by id; default 2000
	MaskMessages bool              // replace message texts by their size (data residency); the default
	Labels       map[string]string // added to every event (instance id, version)
	Sink         func(line []byte) // optional: where encoded events go besides memory (console, file, HTTP)
}

// Logger is safe for concurrent use.
type Logger struct {
	cfg     Config
	ch      chan Record
	dropped atomic.Int64
	logged  atomic.Int64
	mu      sync.RWMutex
	byID    map[string][]byte
	order   []string
	next    int
	done    chan struct{}

	// Shared parts of inputs (the provider snapshot, a key's caller record) are the same
	// value for thousands of requests: encode each once.
	cacheKeys [8]ast.Value
	cacheVals [8]json.RawMessage
	cacheNext int
}

// New starts a logger; Close stops it.
func New(cfg Config) *Logger {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 4096
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 2000
	}
	l := &Logger{cfg: cfg, ch: make(chan Record, cfg.Buffer), byID: make(map[string][]byte, cfg.Keep),
		order: make([]string, cfg.Keep), done: make(chan struct{})}
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
	e, ok := l.byID[id]
	return e, ok
}

// Close processes what is buffered and stops.
func (l *Logger) Close(ctx context.Context) {
	close(l.ch)
	select {
	case <-l.done:
	case <-ctx.Done():
	}
}

func (l *Logger) run() {
	defer close(l.done)
	for r := range l.ch {
		line := MarshalLine(l.event(r))
		if line == nil {
			continue
		}
		l.keep(r.ID, line)
		if l.cfg.Sink != nil {
			l.cfg.Sink(line)
		}
		l.logged.Add(1)
	}
}

func (l *Logger) keep(id string, line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old := l.order[l.next]; old != "" {
		delete(l.byID, old)
	}
	l.order[l.next] = id
	l.next = (l.next + 1) % len(l.order)
	l.byID[id] = line
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

func (l *Logger) event(r Record) *Event {
	e := &Event{DecisionID: r.ID, Path: "gavel/decision", Timestamp: r.Time.UTC(),
		Bundles: map[string]BundleInfo{"gavel": {Revision: r.Revision}}, Labels: l.cfg.Labels,
		Custom: map[string]any{"route": r.Route, "status": r.Status}}
	if r.Error != "" {
		e.Custom["error"] = r.Error
	}
	if obj, ok := r.Input.(ast.Object); ok {
		in := rawObject{}
		obj.Foreach(func(k, v *ast.Term) {
			key, _ := k.Value.(ast.String)
			switch key {
			case "plan":
				return // derived from providers, large, and reproducible: never converted
			case "providers", "caller":
				if b := l.shared(v.Value); b != nil {
					in = append(in, rawField{string(key), b})
				}
				return
			}
			x, err := ast.JSON(v.Value)
			if err != nil {
				return
			}
			if key == "request" && l.cfg.MaskMessages {
				maskMessages(x)
			}
			if b, err := json.Marshal(x); err == nil {
				in = append(in, rawField{string(key), b})
			}
		})
		e.Input = in
	}
	if r.Result != nil {
		if res, err := ast.JSON(r.Result); err == nil {
			e.Result = res
		}
	}
	return e
}

// rawObject is a JSON object assembled from already-encoded members, so the large shared
// parts are copied, not re-encoded or re-validated, for every event.
type rawObject []rawField

type rawField struct {
	key string
	val []byte
}

// MarshalJSON writes the members as they are.
func (o rawObject) MarshalJSON() ([]byte, error) {
	n := 2
	for _, f := range o {
		n += len(f.key) + len(f.val) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, f := range o {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, f.key)
		b = append(b, ':')
		b = append(b, f.val...)
	}
	return append(b, '}'), nil
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

// MarshalLine encodes an event as one JSON line. The input's members are spliced in as
// encoded (encoding/json would re-validate the large shared provider snapshot on every
// event); everything else goes through encoding/json.
func MarshalLine(e *Event) []byte {
	in, raw := e.Input.(rawObject)
	if !raw {
		b, err := json.Marshal(e)
		if err != nil {
			return nil
		}
		return append(b, '\n')
	}
	rest := *e
	rest.Input = nil
	b, err := json.Marshal(&rest)
	if err != nil || len(b) < 2 {
		return nil
	}
	inb, _ := in.MarshalJSON()
	out := make([]byte, 0, len(b)+len(inb)+12)
	out = append(out, b[:len(b)-1]...)
	out = append(out, `,"input":`...)
	out = append(out, inb...)
	out = append(out, '}', '\n')
	return out
}
