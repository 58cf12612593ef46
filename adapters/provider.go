package adapters

import (
	"context"
	"net/http"
)

// Provider is one configured upstream (an OpenAI account, a vLLM server, the mock…).
// The request's Model is already the upstream model name when a provider sees it.
// Implementations are safe for concurrent use and never mutate the request.
type Provider interface {
	// Name is the provider's configured name, as the catalog and the policy refer to it.
	Name() string
	// Chat performs a non-streamed completion.
	Chat(ctx context.Context, req *ChatRequest) (*ChatResponse, error)
	// ChatStream opens a streamed completion. The stream is open once this returns
	// without error: upstream accepted the request and sent its response headers.
	ChatStream(ctx context.Context, req *ChatRequest) (ChunkStream, error)
}

// ChunkStream yields a streamed completion chunk by chunk.
type ChunkStream interface {
	// Recv returns the next chunk, io.EOF after the last one, or an *Error when the
	// upstream failed mid-stream (an error event, a truncated body, a cancelled context).
	Recv() (*ChatChunk, error)
	// Close releases the upstream connection; safe to call more than once.
	Close() error
}

// ReadyStream is the optional capability of a ChunkStream that can tell when its next
// Recv will return without waiting for the upstream (the next event is already read in
// whole). A server relaying the stream then writes a chunk without flushing it, and
// flushes once per batch of chunks that arrived together: the client gets the same bytes
// no later than the next chunk it could have had, in fewer writes.
type ReadyStream interface {
	NextReady() bool
}

// Closer is implemented by providers that hold resources (idle connections, probes).
type Closer interface {
	Close() error
}

// TransportWrapper is implemented by providers that call upstream over their own HTTP
// client and let the gateway wrap its transport (tracing) before any request is made.
type TransportWrapper interface {
	WrapTransport(wrap func(http.RoundTripper) http.RoundTripper)
}

// GenAIProvider is implemented by providers that know their OpenTelemetry
// gen_ai.provider.name (openai, anthropic, gcp.gemini…); traces fall back to the
// provider's configured name.
type GenAIProvider interface {
	GenAIProvider() string
}

// ModelLister is implemented by providers that can say which models their upstream
// serves (an OpenAI-compatible GET /v1/models). gavel asks it only for providers whose
// configuration sets discover_models, at startup and then periodically; what it returns
// joins the provider's declared models in input.providers.<name>.catalog.
type ModelLister interface {
	ListModels(ctx context.Context) ([]ModelInfo, error)
}

// ModelInfo is one model an upstream lists: its upstream name and, when the upstream
// says, who owns it.
type ModelInfo struct {
	ID      string
	OwnedBy string
}

// FieldTranslator is implemented by providers that translate the canonical request into
// another protocol (Anthropic, Gemini). UnsupportedFields names, as ExtraNames does, the
// request's extra fields it has no place for; the gateway refuses the request or drops
// them, per the provider's drop_params, so that none is lost without a word. A provider
// without it speaks the canonical protocol and forwards every field as it was received.
type FieldTranslator interface {
	UnsupportedFields(req *ChatRequest) []string
}

// Prefiller is implemented by providers whose upstream continues a trailing assistant
// message instead of answering after it (a prefill: Anthropic's Messages API). gavel's
// mid-stream continuation sends such a provider the conversation plus the text already
// relayed as that message, with its trailing whitespace removed (Anthropic refuses a
// prefill ending in whitespace); the other providers get it as a finished assistant
// turn followed by an instruction to continue.
type Prefiller interface {
	Prefills() bool
}
