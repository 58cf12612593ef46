// Package fakegemini is a fake Gemini API (generativelanguage.googleapis.com) upstream for
// gavel's end-to-end tests.
//
// It serves, under /v1beta (and /v1):
//
//	POST /v1beta/models/{model}:generateContent
//	POST /v1beta/models/{model}:streamGenerateContent?alt=sse   (without alt=sse: a JSON array)
//	POST /v1beta/models/{model}:batchEmbedContents
//	POST /v1beta/models/{model}:embedContent
//
// in Gemini's wire format: GenerateContentResponse objects, the SSE stream of partial
// responses (`data: {...}` events ending in "\r\n\r\n", no [DONE]), and Google's
// {"error":{"code":…,"message":…,"status":…}} errors. It takes the API key from the
// x-goog-api-key header or the key query parameter and records which one was used,
// validates request bodies the way Gemini does for the basics (contents required, roles
// user and model, non-empty parts with one data field each, no unknown top-level fields),
// answers every model with a deterministic reply and embeddings by default, can be scripted
// per model to return errors, delays, function calls, blocked prompts and broken streams,
// and records the requests it receives so tests can assert what gavel sent.
//
//	up := fakegemini.New()
//	defer up.Close()
//	up.Script("gemini-2.5-flash", fakegemini.Step{Status: 429, RetryDelay: "1s"})
//	// point gavel's gemini provider at up.URL() ... then:
//	_ = up.Count("gemini-2.5-flash")
//
// It mirrors the API of the fake OpenAI upstream in test/fakeupstream.
package fakegemini

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/gavel-gw/gavel/test/internal/fakecore"
)

// AnyModel is the model name whose Script and SetDefault apply to every model that has none
// of its own.
const AnyModel = "*"

// Event terminators for SetEventTerminator.
const (
	TerminatorCRLF = "\r\n\r\n" // what Gemini sends, and the default
	TerminatorLF   = "\n\n"
	TerminatorCR   = "\r\r"
)

// Where a request's API key came from (Recorded.KeyFrom).
const (
	KeyNone   = ""
	KeyHeader = "header"       // x-goog-api-key
	KeyQuery  = "query"        // ?key=
	KeyBoth   = "header+query" // both; the header's key is the one checked
)

// Actions of the API (Recorded.Action).
const (
	ActionGenerate   = "generateContent"
	ActionStream     = "streamGenerateContent"
	ActionBatchEmbed = "batchEmbedContents"
	ActionEmbed      = "embedContent"
)

// Server is a running fake Gemini API. All methods are safe for concurrent use.
type Server struct {
	core *fakecore.Server

	seq        atomic.Uint64 // responseId sequence
	terminator atomic.Pointer[string]

	steps  *fakecore.Steps[Step] // scripts, defaults and counts
	apiKey atomic.Pointer[string]
	rec    fakecore.Recorder[Recorded]
}

// Recorded is one request the fake received, valid or not.
type Recorded struct {
	Time    time.Time
	Method  string
	Path    string     // e.g. "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
	Query   url.Values // e.g. alt=sse
	Header  http.Header
	Raw     []byte         // the body as received
	Body    map[string]any // the decoded JSON body; nil if it was not a JSON object
	Model   string         // the model of the path ("gemini-2.5-flash")
	Action  string         // ActionGenerate, ActionStream, ActionBatchEmbed, ActionEmbed or ""
	Stream  bool           // Action == ActionStream
	APIKey  string         // the key the request was checked with
	KeyFrom string         // KeyHeader, KeyQuery, KeyBoth or KeyNone
}

// New starts a fake Gemini API on a random 127.0.0.1 port. It panics if it cannot listen,
// like httptest.NewServer.
func New() *Server {
	s, err := NewOn("127.0.0.1:0")
	if err != nil {
		panic("fakegemini: " + err.Error())
	}
	return s
}

// NewOn starts a fake Gemini API listening on addr ("127.0.0.1:9999", or port 0 for any).
func NewOn(addr string) (*Server, error) {
	core, err := fakecore.Listen(addr, fakecore.Options{Name: "fakegemini", Drop: true})
	if err != nil {
		return nil, err
	}
	s := &Server{core: core, steps: fakecore.NewSteps[Step]()}
	s.SetEventTerminator(TerminatorCRLF)
	core.Serve(s)
	return s, nil
}

// URL returns the API root without a version, e.g. "http://127.0.0.1:41234", which is what
// Gemini clients take as their base URL: requests go to URL()+"/v1beta/models/…".
func (s *Server) URL() string { return s.core.URL() }

// Close stops the server, releases hanging responses and waits (up to 5 s) for handlers.
func (s *Server) Close() { s.core.Close() }

// Script queues steps for model, consumed one per valid request for model (of any action)
// in order; once the queue is empty the model's default applies again. Steps queued for
// AnyModel serve any model whose own queue is empty. It panics if a step's tool call
// arguments are not a JSON object.
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

// RequireAPIKey makes requests whose key (x-goog-api-key, else ?key=) is not key fail with
// Google's 400 INVALID_ARGUMENT "API key not valid. Please pass a valid API key." (reason
// API_KEY_INVALID); "" accepts any non-empty key (the default). A request without any key
// is always rejected with 403 PERMISSION_DENIED, as Gemini does.
func (s *Server) RequireAPIKey(key string) { s.apiKey.Store(&key) }

// SetEventTerminator sets what ends each SSE event: TerminatorCRLF (the default, what
// Gemini sends), TerminatorLF or TerminatorCR. It panics on anything else.
func (s *Server) SetEventTerminator(term string) {
	switch term {
	case TerminatorCRLF, TerminatorLF, TerminatorCR:
		s.terminator.Store(&term)
	default:
		panic(fmt.Sprintf("fakegemini: %q is not an SSE event terminator", term))
	}
}

// SetRecording switches request recording on (the default) or off. Count works either way.
func (s *Server) SetRecording(on bool) { s.rec.SetOn(on) }

// Requests returns a copy of the requests recorded so far, oldest first, including those
// the fake rejected (bad key, unknown path, invalid body).
func (s *Server) Requests() []Recorded { return s.rec.All() }

// Count returns how many valid requests (of any action) named model in their path, that is
// how many consumed a step; AnyModel counts all of them. Rejected requests do not count
// (see Requests).
func (s *Server) Count(model string) int { return s.steps.Count(model) }

// Reset forgets recorded requests, counts, queued scripts and defaults set with SetDefault.
// The recording switch, the required API key and the event terminator stay as they are.
func (s *Server) Reset() {
	s.steps.Reset()
	s.rec.Reset()
}

// ActiveStreams returns how many streamGenerateContent requests are being handled right
// now, from receipt to the end of the response. After a client disconnects it drops
// promptly, so a test can assert that gavel cancelled its upstream call.
func (s *Server) ActiveStreams() int { return s.core.ActiveStreams() }

// InFlight returns how many requests of any kind are being handled right now.
func (s *Server) InFlight() int { return s.core.InFlight() }

// WaitIdle waits until no streamed request is active, or ctx ends.
func (s *Server) WaitIdle(ctx context.Context) error { return s.core.WaitIdle(ctx) }
