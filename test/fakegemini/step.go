package fakegemini

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gavel-gw/gavel/test/internal/fakecore"
)

// Defaults used when a Step leaves a field at its zero value.
const (
	DefaultChunks        = 4   // partial responses a streamed reply's text is split into
	DefaultPromptTokens  = 12  // usageMetadata.promptTokenCount unless Step.Usage says otherwise
	DefaultEmbeddingDims = 768 // embedding length when a request has no outputDimensionality
	MaxEmbeddingDims     = 3072
	toolCallTokens       = 10 // candidates tokens counted per function call
)

// Finish and block reasons of the Gemini API.
const (
	FinishStop       = "STOP"
	FinishMaxTokens  = "MAX_TOKENS"
	FinishSafety     = "SAFETY"
	FinishRecitation = "RECITATION"
	FinishOther      = "OTHER"
	BlockSafety      = "SAFETY"
)

// Fault is a failure injected into an otherwise successful response, after Step.FaultAfter
// stream events.
type Fault int

const (
	// NoFault sends the whole response.
	NoFault Fault = iota
	// Abort hijacks the connection and closes it without the terminating zero-length
	// chunk, so the client reads io.ErrUnexpectedEOF. On a non-streamed request (and an
	// embedding request), FaultAfter == 0 closes before any response byte, FaultAfter > 0
	// after the headers and half the body.
	Abort
	// Hang stops writing and blocks until the client goes away or the server closes, then
	// drops the connection. On a non-streamed request, FaultAfter == 0 hangs before the
	// headers, FaultAfter > 0 after the headers and half the body.
	Hang
	// MidStreamError sends `data: {"error":{"code":503,"message":"The model is overloaded.
	// Please try again later.","status":"UNAVAILABLE"}}` (Step.StatusName and Step.Message
	// override status and message; the code follows the status) in place of the remaining
	// events and ends the stream, as Gemini does. Ignored for non-streamed requests.
	MidStreamError
)

// Step is one scripted behaviour of the fake for one request. The zero Step is the default:
// a 200 reply "Hello from <model>" with finishReason "STOP", streamed in DefaultChunks
// partial responses.
//
// A streamed response (streamGenerateContent) is this sequence of GenerateContentResponse
// events: one per piece of the Reply's text, then one carrying all ToolCalls as
// functionCall parts (Gemini never splits a function call); the last event also carries
// the finishReason and the usageMetadata. Every event has modelVersion and responseId.
// There is no terminating event such as [DONE]. FaultAfter counts events of this sequence.
//
// An embedding request (batchEmbedContents, embedContent) consumes a step too, from the
// same per-model queue, but only uses Status and the error fields, Header, Latency, and
// the Abort and Hang faults.
type Step struct {
	// Status >= 400 turns the response into a Google error
	// {"error":{"code":…,"message":…,"status":…}} with this HTTP status (for streamed
	// requests too: Gemini rejects before the stream starts).
	Status int
	// StatusName and Message fill the error's status and message; empty ones get defaults
	// derived from Status (429 RESOURCE_EXHAUSTED, 503 UNAVAILABLE "The model is
	// overloaded. Please try again later.", ...). With MidStreamError they fill the error
	// event instead.
	StatusName, Message string
	// Details are the error's details, sent verbatim when non-nil (an empty slice sends
	// none). When nil, a 429 gets a QuotaFailure and a RetryInfo detail whose retryDelay is
	// RetryDelay ("2s" when empty); other statuses get none.
	Details []map[string]any
	// RetryDelay is the retryDelay of a 429's default RetryInfo detail, e.g. "2s" or "0.5s".
	RetryDelay string
	// RetryAfter is sent verbatim as the Retry-After header when non-empty. Gemini does not
	// send one itself; it is here to test how gavel treats one.
	RetryAfter string
	// Header holds extra response headers.
	Header http.Header

	// Latency is waited before the response headers; the wait ends early if the client goes.
	Latency time.Duration

	// Reply is the model text. Empty means "Hello from <model>" unless ToolCalls is set or
	// FinishReason is one that ends a candidate without content (anything but "", STOP and
	// MAX_TOKENS): the candidate then has no content, as when Gemini blocks its output.
	Reply string
	// Chunks is how many partial responses a streamed Reply is split into (0: DefaultChunks).
	Chunks int
	// ChunkInterval is waited between consecutive stream events.
	ChunkInterval time.Duration
	// ToolCalls makes the model call these functions, as functionCall parts after the text.
	// The finishReason stays "STOP", as Gemini reports it for function calls.
	ToolCalls []ToolCall
	// FinishReason overrides the candidate's finishReason ("MAX_TOKENS", "SAFETY", ...).
	FinishReason string
	// Blocked answers as Gemini does when it blocks the prompt: a 200 with promptFeedback
	// {"blockReason": BlockReason} (default "SAFETY") and no candidates, in one event when
	// streamed.
	Blocked     bool
	BlockReason string
	// Usage overrides the reported usageMetadata. By default promptTokenCount is
	// DefaultPromptTokens, candidatesTokenCount the number of words of the text plus 10
	// per function call, and totalTokenCount their sum.
	Usage *UsageMetadata
	// UsageEveryEvent puts usageMetadata on every stream event, with the candidates count
	// so far, as the live API does; by default only the last event has it.
	UsageEveryEvent bool

	// Fault injects a failure after FaultAfter stream events; see Fault.
	Fault      Fault
	FaultAfter int
}

// ToolCall is one function the fake model calls, answered as a functionCall part.
type ToolCall struct {
	Name string
	// Arguments is the call's args as a JSON object, sent verbatim ("" means {}). Script
	// and SetDefault panic if it is not a JSON object.
	Arguments string
	// ID is the functionCall's id, sent only when set (the Gemini API leaves it out).
	ID string
	// ThoughtSignature is sent as the part's thoughtSignature when set, as Gemini 3 models
	// do on the first function call of a turn.
	ThoughtSignature string
}

// UsageMetadata is the usageMetadata of a response. Zero counts are left out, as proto3
// JSON does.
type UsageMetadata struct {
	PromptTokenCount        int `json:"promptTokenCount,omitempty"`
	CandidatesTokenCount    int `json:"candidatesTokenCount,omitempty"`
	TotalTokenCount         int `json:"totalTokenCount,omitempty"`
	CachedContentTokenCount int `json:"cachedContentTokenCount,omitempty"`
	ThoughtsTokenCount      int `json:"thoughtsTokenCount,omitempty"`
}

// isError reports whether the step answers with a Google error instead of a response.
func (st *Step) isError() bool { return st.Status >= 400 }

// check panics on a step that cannot be rendered, in the goroutine of the test that
// scripted it rather than in a handler.
func (st *Step) check() {
	for i, tc := range st.ToolCalls {
		if tc.Arguments == "" {
			continue
		}
		if !fakecore.IsJSONObject(tc.Arguments) {
			panic(fmt.Sprintf("fakegemini: ToolCalls[%d] (%s): Arguments %q is not a JSON object", i, tc.Name, tc.Arguments))
		}
	}
}
