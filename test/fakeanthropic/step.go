package fakeanthropic

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gavel-gw/gavel/test/internal/fakecore"
)

// Defaults used when a Step leaves a field at its zero value.
const (
	DefaultChunks       = 4  // text_delta pieces a streamed reply is split into
	DefaultArgPieces    = 3  // input_json_delta pieces a streamed tool input is split into
	DefaultInputTokens  = 12 // usage.input_tokens unless Step.Usage says otherwise
	toolCallTokens      = 10 // output tokens counted per tool call
	defaultMidStreamErr = "overloaded_error"
)

// Stop reasons of the Messages API.
const (
	StopEndTurn   = "end_turn"
	StopMaxTokens = "max_tokens"
	StopSequence  = "stop_sequence"
	StopToolUse   = "tool_use"
	StopPauseTurn = "pause_turn"
	StopRefusal   = "refusal"
)

// Fault is a failure injected into an otherwise successful response, after Step.FaultAfter
// stream events.
type Fault int

const (
	// NoFault sends the whole response.
	NoFault Fault = iota
	// Abort hijacks the connection and closes it without the terminating zero-length chunk
	// and without message_stop, so the client reads io.ErrUnexpectedEOF. On a non-streamed
	// request, FaultAfter == 0 closes before any response byte, FaultAfter > 0 after the
	// headers and half the body.
	Abort
	// Hang stops writing and blocks until the client goes away or the server closes, then
	// drops the connection. On a non-streamed request, FaultAfter == 0 hangs before the headers, FaultAfter > 0
	// after the headers and half the body.
	Hang
	// MidStreamError sends `event: error` with
	// `data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`
	// (Step.Type and Step.Message override type and message) and ends the stream cleanly
	// without message_stop, as Anthropic does. Ignored for non-streamed requests.
	MidStreamError
)

// Step is one scripted behaviour of the fake for one request. The zero Step is the default:
// a 200 reply "Hello from <model>" with stop_reason "end_turn", streamed in DefaultChunks
// text_delta pieces.
//
// A streamed response is this sequence of events: message_start (empty content, the input
// usage and output_tokens 1, as Anthropic sends), then per content block (the Reply's text
// block first, then one tool_use block per tool call) content_block_start, its deltas and
// content_block_stop, with a ping right after the first content_block_start; then
// message_delta (stop_reason and the final output_tokens) and message_stop. FaultAfter
// counts events of this sequence.
type Step struct {
	// Status >= 400 turns the response into an Anthropic error
	// {"type":"error","error":{"type":…,"message":…}} with this HTTP status (for streamed
	// requests too: Anthropic rejects before the stream starts).
	Status int
	// Type and Message fill the error object; empty ones get defaults derived from Status
	// (529 overloaded_error "Overloaded", 429 rate_limit_error, ...). With MidStreamError
	// they fill the error event instead (default overloaded_error "Overloaded").
	Type, Message string
	// RetryAfter is sent verbatim as the retry-after header when non-empty ("1" or an HTTP
	// date). There is no default, not even for 429: tests that want one say so.
	RetryAfter string
	// Header holds extra response headers (e.g. anthropic-ratelimit-requests-remaining).
	Header http.Header

	// Latency is waited before the response headers; the wait ends early if the client goes.
	Latency time.Duration

	// Thinking, when set, makes the answer start with a thinking block of this text, signed
	// with Signature (streamed as thinking_delta pieces and one signature_delta).
	Thinking, Signature string

	// Reply is the assistant text; empty means "Hello from <model>" unless ToolCalls is set.
	Reply string
	// Chunks is how many text_delta events a streamed Reply is split into (0: DefaultChunks).
	Chunks int
	// ChunkInterval is waited between consecutive stream events.
	ChunkInterval time.Duration
	// ToolCalls makes the model call these tools, as tool_use blocks after the text block
	// (stop_reason "tool_use").
	ToolCalls []ToolCall
	// StopReason overrides the stop_reason ("max_tokens", "stop_sequence", "refusal", ...).
	StopReason string
	// StopSequence is the stop_sequence reported with StopReason "stop_sequence".
	StopSequence string
	// Usage overrides the reported usage. By default input_tokens is DefaultInputTokens and
	// output_tokens is the number of words of Reply plus 10 per tool call.
	Usage *Usage

	// Fault injects a failure after FaultAfter stream events; see Fault.
	Fault      Fault
	FaultAfter int

	// Continue makes the reply go on from a prefill, as the Messages API does: when the
	// request's last message is the assistant's and the reply begins with its text, only
	// the rest of the reply is sent (the tool calls in full).
	Continue bool

	empty bool // the reply is empty even without tool calls (a continuation of a whole text)
}

// ToolCall is one tool the fake model calls, answered as a tool_use content block.
type ToolCall struct {
	ID   string // tool_use id; empty means "toolu_fake<i>" for the i-th call
	Name string // tool name
	// Arguments is the tool input as a JSON object, sent verbatim ("" means {}). Script and
	// SetDefault panic if it is not a JSON object.
	Arguments string
	// Pieces is how many input_json_delta events the streamed input is split into
	// (0: DefaultArgPieces).
	Pieces int
}

// Usage is the usage object of a message. The cache counters are always sent, as zero
// unless set.
type Usage struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	OutputTokens             int `json:"output_tokens"`
}

// isError reports whether the step answers with an Anthropic error instead of a message.
func (st *Step) isError() bool { return st.Status >= 400 }

// check panics on a step that cannot be rendered, in the goroutine of the test that
// scripted it rather than in a handler.
func (st *Step) check() {
	for i, tc := range st.ToolCalls {
		if tc.Arguments == "" {
			continue
		}
		if !fakecore.IsJSONObject(tc.Arguments) {
			panic(fmt.Sprintf("fakeanthropic: ToolCalls[%d] (%s): Arguments %q is not a JSON object", i, tc.Name, tc.Arguments))
		}
	}
}
