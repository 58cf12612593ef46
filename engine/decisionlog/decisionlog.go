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
	Keep         int               // recent events kept for lookup by id; default 10000
	MaskMessages bool              // replace message texts by their size (data residency); the default
	Labels       map[string]string // added to every event (instance id, version)
	Sink         func(*Event)      // optional: where events go besides memory (console, file, HTTP)
}

// Logger is safe for concurrent use.
type Logger struct {
	cfg     Config
	ch      chan Record
	dropped atomic.Int64
	logged  atomic.Int64
	mu      sync.RWMutex
	byID    map[string]*Event
	order   []string
	next    int
	done    chan struct{}
}

// New starts a logger; Close stops it.
func New(cfg Config) *Logger {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 4096
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 10000
	}
	l := &Logger{cfg: cfg, ch: make(chan Record, cfg.Buffer), byID: make(map[string]*Event, cfg.Keep),
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

// Get returns a recent event by decision id.
func (l *Logger) Get(id string) (*Event, bool) {
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
		e := l.event(r)
		l.keep(e)
		if l.cfg.Sink != nil {
			l.cfg.Sink(e)
		}
		l.logged.Add(1)
	}
}

func (l *Logger) keep(e *Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old := l.order[l.next]; old != "" {
		delete(l.byID, old)
	}
	l.order[l.next] = e.DecisionID
	l.next = (l.next + 1) % len(l.order)
	l.byID[e.DecisionID] = e
}

func (l *Logger) event(r Record) *Event {
	e := &Event{DecisionID: r.ID, Path: "gavel/decision", Timestamp: r.Time.UTC(),
		Bundles: map[string]BundleInfo{"gavel": {Revision: r.Revision}}, Labels: l.cfg.Labels,
		Custom: map[string]any{"route": r.Route, "status": r.Status}}
	if r.Error != "" {
		e.Custom["error"] = r.Error
	}
	if obj, ok := r.Input.(ast.Object); ok {
		m := make(map[string]any, obj.Len())
		obj.Foreach(func(k, v *ast.Term) {
			key, _ := k.Value.(ast.String)
			if key == "plan" {
				return // derived from providers, large, and reproducible: never converted
			}
			if x, err := ast.JSON(v.Value); err == nil {
				m[string(key)] = x
			}
		})
		if l.cfg.MaskMessages {
			maskMessages(m)
		}
		e.Input = m
	}
	if r.Result != nil {
		if res, err := ast.JSON(r.Result); err == nil {
			e.Result = res
		}
	}
	return e
}

// maskMessages replaces every message text with its size: prompts stay out of logs unless
// the operator opts in.
func maskMessages(in map[string]any) {
	req, _ := in["request"].(map[string]any)
	msgs, _ := req["messages"].([]any)
	for _, m := range msgs {
		if mm, ok := m.(map[string]any); ok {
			if t, ok := mm["text"].(string); ok {
				mm["text"] = "[masked " + strconv.Itoa(len(t)) + " bytes]"
			}
		}
	}
}

// MarshalLine encodes an event as one JSON line.
func MarshalLine(e *Event) []byte {
	b, err := json.Marshal(e)
	if err != nil {
		return nil
	}
	return append(b, '\n')
}
