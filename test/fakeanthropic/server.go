// Package fakeanthropic is a fake Anthropic Messages API upstream for gavel's end-to-end
// tests.
//
// It serves POST /v1/messages in Anthropic's wire format: the JSON message, the SSE stream
// of typed events (message_start, content_block_start, ping, content_block_delta,
// content_block_stop, message_delta, message_stop) and the {"type":"error",...} errors. It
// checks the x-api-key and anthropic-version headers and validates request bodies the way
// Anthropic does for the basics (required fields, alternating roles starting with user,
// non-empty content, tool_use/tool_result pairing), so a test fails when gavel sends
// something the real API would reject. It answers every model with a deterministic reply
// by default, can be scripted per model to return errors, delays, tool calls and broken
// streams, and records the requests it receives so tests can assert what gavel sent.
//
//	up := fakeanthropic.New()
//	defer up.Close()
//	up.Script("claude-sonnet-4-5", fakeanthropic.Step{Status: 529})
//	// point gavel's anthropic provider at up.URL() ... then:
//	_ = up.Count("claude-sonnet-4-5")
//
// It mirrors the API of the fake OpenAI upstream in test/fakeupstream.
package fakeanthropic

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gavel-gw/gavel/test/internal/fakecore"
)

// AnyModel is the model name whose Script and SetDefault apply to every model that has none
// of its own.
const AnyModel = "*"

// Server is a running fake Anthropic API. All methods are safe for concurrent use.
type Server struct {
	core *fakecore.Server

	seq atomic.Uint64 // message id and request-id sequence

	steps  *fakecore.Steps[Step] // scripts, defaults and counts
	apiKey atomic.Pointer[string]
	rec    fakecore.Recorder[Recorded]
}

// Recorded is one request the fake received, valid or not.
type Recorded struct {
	Time   time.Time
	Method string
	Path   string
	Header http.Header
	Raw    []byte         // the body as received
	Body   map[string]any // the decoded JSON body; nil if it was not a JSON object
	Model  string         // Body["model"], for convenience
	Stream bool           // Body["stream"] == true
}

// New starts a fake Anthropic API on a random 127.0.0.1 port. It panics if it cannot
// listen, like httptest.NewServer.
func New() *Server {
	s, err := NewOn("127.0.0.1:0")
	if err != nil {
		panic("fakeanthropic: " + err.Error())
	}
	return s
}

// NewOn starts a fake Anthropic API listening on addr ("127.0.0.1:9999", or port 0 for any).
func NewOn(addr string) (*Server, error) {
	core, err := fakecore.Listen(addr, fakecore.Options{Name: "fakeanthropic", Drop: true})
	if err != nil {
		return nil, err
	}
	s := &Server{core: core, steps: fakecore.NewSteps[Step]()}
	core.Serve(s)
	return s, nil
}

// URL returns the API root without a version, e.g. "http://127.0.0.1:41234", which is what
// Anthropic clients take as their base URL: requests go to URL()+"/v1/messages".
func (s *Server) URL() string { return s.core.URL() }

// Close stops the server, releases hanging responses and waits (up to 5 s) for handlers.
func (s *Server) Close() { s.core.Close() }

// Script queues steps for model, consumed one per valid messages request in order; once the
// queue is empty the model's default applies again. Steps queued for AnyModel serve any
// model whose own queue is empty. It panics if a step's tool call arguments are not a JSON
// object.
func (s *Server) Script(model string, steps ...Step) {
	for i := range steps {
		steps[i].check()
	}
	s.steps.Script(model, steps...)
}

// SetDefault sets the steady behaviour for model (AnyModel: for every model without its own).
// It panics if the step's tool call arguments are not a JSON object.
func (s *Server) SetDefault(model string, st Step) {
	st.check()
	s.steps.SetDefault(model, st)
}

// RequireAPIKey makes requests whose x-api-key header is not key fail with Anthropic's 401
// authentication_error "invalid x-api-key"; "" accepts any non-empty key (the default). A
// request without x-api-key is always rejected, as Anthropic does.
func (s *Server) RequireAPIKey(key string) { s.apiKey.Store(&key) }

// SetRecording switches request recording on (the default) or off. Count works either way.
func (s *Server) SetRecording(on bool) { s.rec.SetOn(on) }

// Requests returns a copy of the requests recorded so far, oldest first, including those
// the fake rejected (bad headers, invalid bodies).
func (s *Server) Requests() []Recorded { return s.rec.All() }

// Count returns how many valid messages requests named model, that is how many consumed a
// step; AnyModel counts all of them. Requests rejected for their headers or body do not
// count (see Requests).
func (s *Server) Count(model string) int { return s.steps.Count(model) }

// Reset forgets recorded requests, counts, queued scripts and defaults set with SetDefault.
// The recording switch and the required API key stay as they are.
func (s *Server) Reset() {
	s.steps.Reset()
	s.rec.Reset()
}

// ActiveStreams returns how many streamed messages requests are being handled right now,
// from receipt to the end of the response. After a client disconnects it drops promptly, so
// a test can assert that gavel cancelled its upstream call.
func (s *Server) ActiveStreams() int { return s.core.ActiveStreams() }

// InFlight returns how many requests of any kind are being handled right now.
func (s *Server) InFlight() int { return s.core.InFlight() }

// WaitIdle waits until no streamed request is active, or ctx ends.
func (s *Server) WaitIdle(ctx context.Context) error { return s.core.WaitIdle(ctx) }
