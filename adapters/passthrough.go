package adapters

import (
	"context"
	"errors"
	"net/http"
)

// Wire protocols a client may speak to gavel, as RawRequest.Protocol names them. They
// match input.request.protocol.
const (
	ProtocolAnthropic = "anthropic" // Anthropic Messages (POST /v1/messages)
	ProtocolResponses = "responses" // OpenAI Responses (POST /v1/responses)
)

// Operations of RawRequest.Op besides the protocol's main generation call.
const (
	OpCountTokens = "count_tokens" // Anthropic's POST /v1/messages/count_tokens
)

// Passthrough is the optional capability of providers that can forward a client's body
// in their own wire format: when the client speaks the provider's native protocol
// (Messages to Anthropic, Responses to OpenAI), the body goes upstream as the client sent
// it with only its model (and, when the decision caps it, its output bound) rewritten, so
// fields gavel does not model (new betas, cache_control, thinking signatures) survive byte
// for byte, and the answer comes back untouched. The executor finds it by type assertion
// and still runs the call through the target's retries, breaker and timeout.
type Passthrough interface {
	// RawCall sends req upstream. A protocol (or operation) the provider does not speak
	// natively is refused with ErrNotNative before anything is sent, so the caller can
	// translate through the canonical types instead. Every other failure is an *Error,
	// classified as for Chat: a non-2xx answer, an error body or an error event before the
	// first one. A streamed call returns once the upstream sent its response headers.
	RawCall(ctx context.Context, req *RawRequest) (*RawResult, error)
}

// ErrNotNative is RawCall's refusal of a protocol the provider does not speak natively.
var ErrNotNative = errors.New("the provider does not speak this protocol natively")

// RawRequest is a client's request in its own wire format.
type RawRequest struct {
	// Protocol is the wire format of Body: ProtocolAnthropic or ProtocolResponses.
	Protocol string
	// Op is "" for the protocol's generation call, or another operation (OpCountTokens).
	Op string
	// Body is the client's JSON body, never mutated. Its top-level "model" is replaced by
	// Model; nothing else in it is re-encoded.
	Body []byte
	// Model is the upstream model name.
	Model string
	// Stream: Body asks for a stream, and the result is a RawStream.
	Stream bool
	// MaxOutputTokens is the decision's cap on the answer's tokens, 0 for none: a larger
	// bound in Body is lowered to it, and a missing one is set to it.
	MaxOutputTokens int
	// Header holds the client's protocol headers to forward (anthropic-version,
	// anthropic-beta, openai-beta); nil for none. Authentication is the provider's own.
	Header http.Header
}

// RawResult is the upstream's answer to a RawRequest.
type RawResult struct {
	// Status is the upstream's 2xx status.
	Status int
	// Body is a non-streamed answer as the upstream sent it; nil for a stream.
	Body []byte
	// Stream yields a streamed answer's events; nil for a non-streamed answer.
	Stream RawStream
	// Usage is a non-streamed answer's usage, in the canonical counts (cached input
	// included in PromptTokens); nil when the answer reported none.
	Usage *Usage
	// Model is the model the upstream says answered, "" when it did not say.
	Model string
}

// RawStream is an upstream's event stream, passed to the client event by event.
type RawStream interface {
	// Recv returns the next event, io.EOF after the protocol's last one, or an *Error
	// when the upstream failed (an error event, a truncated body, a cancelled context):
	// an upstream error event is not returned as an event, so the caller tells its client
	// in its own words. The event's bytes are valid until the next Recv.
	Recv() (RawEvent, error)
	// Usage is the usage the stream reported so far, in the canonical counts; nil while
	// it reported none. The upstream's counts are cumulative, so after io.EOF it is the
	// answer's.
	Usage() *Usage
	// Close releases the upstream connection; safe to call more than once.
	Close() error
}

// RawEvent is one server-sent event as the upstream sent it.
type RawEvent struct {
	Name []byte // the "event:" field, nil when the event had none
	Data []byte // the data, lines joined with "\n"
}
