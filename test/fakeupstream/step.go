package fakeupstream

import (
	"net/http"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

// Defaults used when a Step leaves a field at its zero value.
const (
	DefaultChunks        = 4                 // content pieces a streamed reply is split into
	DefaultArgPieces     = 3                 // pieces a streamed tool call's arguments are split into
	DefaultPromptTokens  = 12                // usage.prompt_tokens unless Step.Usage says otherwise
	SystemFingerprint    = "fp_fakeupstream" // system_fingerprint of every response and chunk
	toolCallTokens       = 10                // completion tokens counted per tool call
	defaultMidStreamType = "server_error"
)

// Fault is a failure injected into an otherwise successful response, after Step.FaultAfter
// stream events.
type Fault int

const (
	// NoFault sends the whole response.
	NoFault Fault = iota
	// Abort hijacks the connection and closes it without the terminating zero-length chunk
	// and without [DONE], so the client reads io.ErrUnexpectedEOF. On a non-streamed
	// request, FaultAfter == 0 closes before any response byte, FaultAfter > 0 after the
	// headers and half the body.
	Abort
	// Hang stops writing and blocks until the client goes away or the server closes.
	// On a non-streamed request, FaultAfter == 0 hangs before the headers, FaultAfter > 0
	// after the headers and half the body.
	Hang
	// MidStreamError sends `data: {"error":{...}}` (from Step's Code, Type, Message, Param;
	// Type defaults to "server_error") and ends the stream cleanly without [DONE], as
	// OpenAI does. Ignored for non-streamed requests.
	MidStreamError
)

// Step is one scripted behaviour of the fake for one request. The zero Step is the default:
// a 200 reply "Hello from <model>" with usage, streamed in DefaultChunks pieces.
//
// A streamed response is this sequence of events: a role chunk ({"role":"assistant",
// "content":""}; when there is no Reply it carries the first tool call's header instead),
// the Reply's content chunks, per tool call a header chunk (unless merged into the role chunk)
// and its argument pieces, a finish chunk with an empty delta and the finish_reason, the
// usage chunk (only with stream_options.include_usage) and `data: [DONE]`. FaultAfter
// counts events of this sequence.
type Step struct {
	// Status >= 400 turns the response into an OpenAI error {"error":{...}} with this
	// HTTP status (for streamed requests too: OpenAI rejects before the stream starts).
	Status int
	// Code, Type, Message and Param fill the error object. Empty Code and Param are sent as
	// null; empty Type and Message get defaults derived from Status.
	Code, Type, Message, Param string
	// RetryAfter is sent verbatim as the Retry-After header when non-empty ("1" or an HTTP
	// date); RetryAfterMs likewise as retry-after-ms.
	RetryAfter   string
	RetryAfterMs string
	// Header holds extra response headers (e.g. x-ratelimit-remaining-requests).
	Header http.Header

	// Latency is waited before the response headers; the wait ends early if the client goes.
	Latency time.Duration

	// Reply is the assistant text; empty means "Hello from <model>" unless ToolCalls is set.
	Reply string
	// Chunks is how many content chunks a streamed Reply is split into (0: DefaultChunks).
	Chunks int
	// ChunkInterval is waited between consecutive stream events.
	ChunkInterval time.Duration
	// ToolCalls makes the model call these functions (finish_reason "tool_calls").
	ToolCalls []ToolCall
	// FinishReason overrides the finish_reason ("length", "content_filter", ...).
	FinishReason string
	// IgnoreIncludeUsage streams no usage chunk even when asked, as some OpenAI-compatible
	// servers do.
	IgnoreIncludeUsage bool
	// Usage overrides the reported usage. By default prompt_tokens is DefaultPromptTokens and
	// completion_tokens is the number of words of Reply plus 10 per tool call.
	Usage *adapters.Usage

	// Reasoning, on the Responses API only, adds a reasoning item before the reply whose
	// encrypted_content is this text (a pass-through must deliver it untouched).
	Reasoning string

	// Fault injects a failure after FaultAfter stream events; see Fault.
	Fault      Fault
	FaultAfter int

	// Continue makes a streamed reply go on from where the request's assistant text
	// stops, as a model asked to continue a cut answer does: when the request's messages
	// end with an assistant message (a prefill), or with an assistant message and one user
	// message (a continuation instruction), and the reply begins with that assistant
	// text, only the rest of the reply is sent (the tool calls in full). Repeat bytes of
	// the assistant text's end (whole runes) are sent again first, as models sometimes
	// repeat the last words.
	Continue bool
	Repeat   int

	empty bool // the reply is empty even without tool calls (a continuation of a whole text)
}

// ToolCall is one function call the fake model makes.
type ToolCall struct {
	ID        string // call id; empty means "call_fake<i>" for the i-th call
	Name      string // function name
	Arguments string // JSON arguments, sent verbatim
	// Pieces is how many chunks the streamed arguments are split into (0: DefaultArgPieces).
	// Only the first delta of a call carries its id, type and name, as OpenAI does.
	Pieces int
}

// isError reports whether the step answers with an OpenAI error instead of a completion.
func (st *Step) isError() bool { return st.Status >= 400 }
