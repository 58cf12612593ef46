// Package fakeupstream is a fake OpenAI-compatible upstream for gavel's end-to-end tests and
// load benchmark.
//
// It speaks the Chat Completions wire format (JSON and SSE streams, errors, GET /v1/models)
// closely enough for the official OpenAI Go SDK, answers every model with a deterministic
// reply by default, and can be scripted per model to return errors, delays, tool calls and
// broken streams. It records the requests it receives so tests can assert what gavel sent.
//
//	up := fakeupstream.New()
//	defer up.Close()
//	up.Script("gpt-4o-mini", fakeupstream.Step{Status: 429, RetryAfter: "1"})
//	// point gavel at up.URL() ... then:
//	_ = up.Count("gpt-4o-mini")
//
// The default responses are rendered once per model and replayed, and recording can be
// switched off, so the fake is cheap enough to be the upstream of a load benchmark.
package fakeupstream

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

// AnyModel is the model name whose Script and SetDefault apply to every model that has none
// of its own.
const AnyModel = "*"

// Server is a running fake upstream. All methods are safe for concurrent use.
type Server struct {
	url  string
	srv  *http.Server
	done chan struct{} // closed by Close: releases hanging handlers
	stop sync.Once

	seq     atomic.Uint64 // response id and x-request-id sequence
	created int64         // "created" of every response: the server's start, in Unix seconds

	mu      sync.Mutex        // guards scripts and writes of cfg
	scripts map[string][]Step // queued steps per model
	queued  atomic.Int64      // steps in scripts, so the hot path can skip mu
	cfg     atomic.Pointer[config]
	apiKey  atomic.Pointer[string]

	recording atomic.Bool
	recMu     sync.Mutex
	records   []Recorded
	counts    atomic.Pointer[sync.Map] // model -> *atomic.Int64

	inFlight      atomic.Int64
	activeStreams atomic.Int64
}

// config is the steady behaviour: per-model defaults and the cache of their renderings.
// It is replaced as a whole, so a request never pairs a default with a stale rendering.
type config struct {
	defaults map[string]Step
	rendered sync.Map // renderKey -> *rendered
}

type renderKey struct {
	model         string
	stream, usage bool
}

// Recorded is one request the fake received.
type Recorded struct {
	Time   time.Time
	Method string
	Path   string
	Header http.Header
	Raw    []byte               // the body as received
	Body   adapters.ChatRequest // the decoded body of a chat completion request
	Model  string               // Body.Model, for convenience
	Stream bool                 // Body.Stream
}

// New starts a fake upstream on a random 127.0.0.1 port. It panics if it cannot listen,
// like httptest.NewServer.
func New() *Server {
	s, err := NewOn("127.0.0.1:0")
	if err != nil {
		panic("fakeupstream: " + err.Error())
	}
	return s
}

// NewOn starts a fake upstream listening on addr ("127.0.0.1:9999", or port 0 for any).
func NewOn(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		url:     "http://" + ln.Addr().String() + "/v1",
		done:    make(chan struct{}),
		created: time.Now().Unix(),
		scripts: map[string][]Step{},
	}
	s.cfg.Store(&config{defaults: map[string]Step{}})
	s.counts.Store(new(sync.Map))
	s.recording.Store(true)
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL returns the base URL including /v1, e.g. "http://127.0.0.1:41234/v1".
func (s *Server) URL() string { return s.url }

// Close stops the server, releases hanging responses and waits (up to 5 s) for handlers.
func (s *Server) Close() {
	s.stop.Do(func() {
		close(s.done)
		_ = s.srv.Close()
		for deadline := time.Now().Add(5 * time.Second); s.inFlight.Load() > 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	})
}

// Script queues steps for model, consumed one per chat request in order; once the queue is
// empty the model's default applies again. Steps queued for AnyModel serve any model whose
// own queue is empty.
func (s *Server) Script(model string, steps ...Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[model] = append(s.scripts[model], steps...)
	s.queued.Add(int64(len(steps)))
}

// SetDefault sets the steady behaviour for model (AnyModel: for every model without its own).
func (s *Server) SetDefault(model string, st Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cfg.Load().defaults
	defaults := make(map[string]Step, len(old)+1)
	for k, v := range old {
		defaults[k] = v
	}
	defaults[model] = st
	s.cfg.Store(&config{defaults: defaults})
}

// RequireAPIKey makes chat and model requests without "Authorization: Bearer key" fail with
// OpenAI's 401 invalid_api_key; "" accepts any request (the default).
func (s *Server) RequireAPIKey(key string) { s.apiKey.Store(&key) }

// SetRecording switches request recording on (the default) or off. Count works either way.
func (s *Server) SetRecording(on bool) { s.recording.Store(on) }

// Requests returns a copy of the requests recorded so far, oldest first.
func (s *Server) Requests() []Recorded {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	return append([]Recorded(nil), s.records...)
}

// Count returns how many chat completion requests named model; AnyModel counts all of them.
func (s *Server) Count(model string) int {
	counts := s.counts.Load()
	if model == AnyModel {
		total := 0
		counts.Range(func(_, v any) bool {
			total += int(v.(*atomic.Int64).Load())
			return true
		})
		return total
	}
	if v, ok := counts.Load(model); ok {
		return int(v.(*atomic.Int64).Load())
	}
	return 0
}

// Reset forgets recorded requests, counts, queued scripts and defaults set with SetDefault.
// The recording switch and the required API key stay as they are.
func (s *Server) Reset() {
	s.mu.Lock()
	s.scripts = map[string][]Step{}
	s.queued.Store(0)
	s.cfg.Store(&config{defaults: map[string]Step{}})
	s.mu.Unlock()

	s.recMu.Lock()
	s.records = nil
	s.counts.Store(new(sync.Map))
	s.recMu.Unlock()
}

// ActiveStreams returns how many streamed chat requests are being handled right now, from
// receipt to the end of the response. After a client disconnects it drops promptly, so a
// test can assert that gavel cancelled its upstream call.
func (s *Server) ActiveStreams() int { return int(s.activeStreams.Load()) }

// InFlight returns how many requests of any kind are being handled right now.
func (s *Server) InFlight() int { return int(s.inFlight.Load()) }

// WaitIdle waits until no streamed request is active, or ctx ends.
func (s *Server) WaitIdle(ctx context.Context) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for s.ActiveStreams() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("fakeupstream: %d streams still active: %w", s.ActiveStreams(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// next returns the behaviour for the next request for model, and the rendering cache to use
// when it is a default; it is nil for a scripted step, which is rendered afresh.
func (s *Server) next(model string) (Step, *config) {
	if s.queued.Load() > 0 {
		if st, ok := s.pop(model); ok {
			return st, nil
		}
	}
	cfg := s.cfg.Load()
	if st, ok := cfg.defaults[model]; ok {
		return st, cfg
	}
	return cfg.defaults[AnyModel], cfg
}

func (s *Server) pop(model string) (Step, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range [2]string{model, AnyModel} {
		if q := s.scripts[m]; len(q) > 0 {
			s.scripts[m] = q[1:]
			s.queued.Add(-1)
			return q[0], true
		}
	}
	return Step{}, false
}

// renderFor returns the rendering of st for this request, cached when st is a default.
func (s *Server) renderFor(model string, st Step, cfg *config, stream, usage bool) *rendered {
	if cfg == nil {
		return render(model, st, stream, usage, s.created)
	}
	key := renderKey{model: model, stream: stream, usage: usage}
	if r, ok := cfg.rendered.Load(key); ok {
		return r.(*rendered)
	}
	r := render(model, st, stream, usage, s.created)
	cfg.rendered.Store(key, r)
	return r
}

func (s *Server) count(model string) {
	counts := s.counts.Load()
	v, ok := counts.Load(model)
	if !ok {
		v, _ = counts.LoadOrStore(model, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

func (s *Server) record(rec Recorded) {
	s.recMu.Lock()
	s.records = append(s.records, rec)
	s.recMu.Unlock()
}

// modelIDs lists the models GET /v1/models reports: a fixed set plus every model that has
// a script or a default.
func (s *Server) modelIDs() []string {
	set := map[string]bool{"gpt-4o": true, "gpt-4o-mini": true, "gpt-4.1": true, "gpt-4.1-mini": true, "o3-mini": true}
	s.mu.Lock()
	for m := range s.scripts {
		set[m] = true
	}
	for m := range s.cfg.Load().defaults {
		set[m] = true
	}
	s.mu.Unlock()
	delete(set, AnyModel)
	ids := make([]string, 0, len(set))
	for m := range set {
		ids = append(ids, m)
	}
	sort.Strings(ids)
	return ids
}
