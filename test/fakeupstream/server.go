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
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/test/internal/fakecore"
)

// AnyModel is the model name whose Script and SetDefault apply to every model that has none
// of its own.
const AnyModel = "*"

// Server is a running fake upstream. All methods are safe for concurrent use.
type Server struct {
	core *fakecore.Server

	seq     atomic.Uint64 // response id and x-request-id sequence
	created int64         // "created" of every response: the server's start, in Unix seconds

	steps  *fakecore.Steps[Step] // scripts, defaults (whose Cache holds their renderings) and counts
	apiKey atomic.Pointer[string]
	rec    fakecore.Recorder[Recorded]

	vectors sync.Map // input text → []float32 (SetVector)
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
	core, err := fakecore.Listen(addr, fakecore.Options{Name: "fakeupstream", Path: "/v1"})
	if err != nil {
		return nil, err
	}
	s := &Server{
		core:    core,
		created: time.Now().Unix(),
		steps:   fakecore.NewSteps[Step](),
	}
	core.Serve(s)
	return s, nil
}

// URL returns the base URL including /v1, e.g. "http://127.0.0.1:41234/v1".
func (s *Server) URL() string { return s.core.URL() }

// Close stops the server, releases hanging responses and waits (up to 5 s) for handlers.
func (s *Server) Close() { s.core.Close() }

// Script queues steps for model, consumed one per chat request in order; once the queue is
// empty the model's default applies again. Steps queued for AnyModel serve any model whose
// own queue is empty.
func (s *Server) Script(model string, steps ...Step) { s.steps.Script(model, steps...) }

// SetDefault sets the steady behaviour for model (AnyModel: for every model without its own).
func (s *Server) SetDefault(model string, st Step) { s.steps.SetDefault(model, st) }

// RequireAPIKey makes chat and model requests without "Authorization: Bearer key" fail with
// OpenAI's 401 invalid_api_key; "" accepts any request (the default).
func (s *Server) RequireAPIKey(key string) { s.apiKey.Store(&key) }

// SetRecording switches request recording on (the default) or off. Count works either way.
func (s *Server) SetRecording(on bool) { s.rec.SetOn(on) }

// Requests returns a copy of the requests recorded so far, oldest first.
func (s *Server) Requests() []Recorded { return s.rec.All() }

// Count returns how many chat completion requests named model; AnyModel counts all of them.
func (s *Server) Count(model string) int { return s.steps.Count(model) }

// Reset forgets recorded requests, counts, queued scripts and defaults set with SetDefault.
// The recording switch and the required API key stay as they are.
func (s *Server) Reset() {
	s.steps.Reset()
	s.rec.Reset()
}

// ActiveStreams returns how many streamed chat requests are being handled right now, from
// receipt to the end of the response. After a client disconnects it drops promptly, so a
// test can assert that gavel cancelled its upstream call.
func (s *Server) ActiveStreams() int { return s.core.ActiveStreams() }

// InFlight returns how many requests of any kind are being handled right now.
func (s *Server) InFlight() int { return s.core.InFlight() }

// WaitIdle waits until no streamed request is active, or ctx ends.
func (s *Server) WaitIdle(ctx context.Context) error { return s.core.WaitIdle(ctx) }

// renderFor returns the rendering of st for this request, cached in the defaults snapshot
// when st is a default (defaults != nil).
func (s *Server) renderFor(model string, st Step, defaults *fakecore.Defaults[Step], stream, usage bool) *rendered {
	if defaults == nil {
		return render(model, st, stream, usage, s.created)
	}
	key := renderKey{model: model, stream: stream, usage: usage}
	if r, ok := defaults.Cache.Load(key); ok {
		return r.(*rendered)
	}
	r := render(model, st, stream, usage, s.created)
	defaults.Cache.Store(key, r)
	return r
}

// modelIDs lists the models GET /v1/models reports: a fixed set plus every model that has
// a script or a default.
func (s *Server) modelIDs() []string {
	set := map[string]bool{"gpt-4o": true, "gpt-4o-mini": true, "gpt-4.1": true, "gpt-4.1-mini": true, "o3-mini": true}
	for _, m := range s.steps.Models() {
		set[m] = true
	}
	ids := make([]string, 0, len(set))
	for m := range set {
		ids = append(ids, m)
	}
	sort.Strings(ids)
	return ids
}
