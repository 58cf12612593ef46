package anthropic

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
)

const (
	// DefaultBaseURL is Anthropic's API root; requests go to {BaseURL}/v1/messages.
	DefaultBaseURL = "https://api.anthropic.com"
	// DefaultVersion is the anthropic-version header sent when Config.Version is empty.
	DefaultVersion = "2023-06-01"
	// DefaultMaxTokens is max_tokens when neither the request nor Config sets it: the
	// Messages API requires a value, and OpenAI clients usually send none.
	DefaultMaxTokens = 4096
)

// Config configures one Anthropic upstream.
type Config struct {
	// Name is the provider's name in the catalog and in errors. Required.
	Name string
	// BaseURL is the API root, "https://api.anthropic.com" when empty; the adapter appends
	// "/v1/messages", so a proxy's root is given without "/v1".
	BaseURL string
	// APIKey is sent as "x-api-key"; no header is sent when it is empty (a proxy that
	// authenticates with its own header, set in Headers).
	APIKey string
	// Version is the "anthropic-version" header, "2023-06-01" when empty.
	Version string
	// DefaultMaxTokens is max_tokens for requests that set neither max_tokens nor
	// max_completion_tokens; 4096 when zero.
	DefaultMaxTokens int
	// Headers are added to every request, e.g. "anthropic-beta". They may replace
	// x-api-key and anthropic-version; the adapter's own Content-Type, Accept and framing
	// headers cannot be replaced.
	Headers map[string]string
	// HTTPClient replaces the adapter's own client. Its Timeout should be zero: deadlines
	// come from the request context, and a client timeout would cut long streams.
	HTTPClient *http.Client
	// MaxResponseBytes bounds one chat answer: a non-streamed body, or all the bytes of a
	// stream; httpx.DefaultMaxResponse (32 MiB) when zero. Embeddings keep their own bound.
	MaxResponseBytes int64
}

// Provider talks to one Anthropic upstream. It is safe for concurrent use.
type Provider struct {
	httpx.Base

	url       string
	maxTokens int
}

var (
	_ adapters.FieldTranslator  = (*Provider)(nil)
	_ adapters.Provider         = (*Provider)(nil)
	_ adapters.Closer           = (*Provider)(nil)
	_ adapters.TransportWrapper = (*Provider)(nil)
	_ adapters.GenAIProvider    = (*Provider)(nil)
	_ adapters.Prefiller        = (*Provider)(nil)
)

// Prefills reports that the Messages API continues a trailing assistant message: the
// answer goes on from its last word rather than starting a new turn.
func (p *Provider) Prefills() bool { return true }

// New validates cfg and returns a Provider.
func New(cfg Config) (*Provider, error) {
	if strings.TrimSpace(cfg.Name) == "" {
		return nil, errors.New("anthropic: provider name is required")
	}
	base, err := httpx.BaseURL("anthropic", cfg.Name, cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.DefaultMaxTokens < 0 {
		return nil, fmt.Errorf("anthropic: provider %q: default max tokens must not be negative", cfg.Name)
	}
	version := cfg.Version
	if version == "" {
		version = DefaultVersion
	}
	if !httpx.ValidHeaderValue(cfg.APIKey) || !httpx.ValidHeaderValue(version) {
		return nil, fmt.Errorf("anthropic: provider %q: api key and version must not contain control characters", cfg.Name)
	}

	p := &Provider{url: base + "/v1/messages", maxTokens: cfg.DefaultMaxTokens}
	if p.maxTokens == 0 {
		p.maxTokens = DefaultMaxTokens
	}
	h := make(http.Header, 2)
	h.Set("Anthropic-Version", version)
	if cfg.APIKey != "" {
		h.Set("X-Api-Key", cfg.APIKey)
	}
	p.Base, err = httpx.NewBase(httpx.Setup{Adapter: "anthropic", Name: cfg.Name, APIKey: cfg.APIKey, GenAI: "anthropic",
		Header: h, Extra: cfg.Headers, Client: cfg.HTTPClient, MaxResponse: cfg.MaxResponseBytes,
		Errors: httpx.Errors[wireError]{Parse: parseErrorBody, Failed: p.failed, Event: p.streamError}})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Chat performs a non-streamed completion.
func (p *Provider) Chat(ctx context.Context, req *adapters.ChatRequest) (*adapters.ChatResponse, error) {
	wire, err := p.translate(req, false)
	if err != nil {
		return nil, err
	}
	var w messageResponse
	status, err := p.Exchange(ctx, p.url, wire, &w, p.MaxResponse(), "message")
	if err != nil {
		return nil, err
	}
	return p.response(&w, status, req.Model, time.Now().Unix())
}

// response checks and translates a decoded 2xx answer.
func (p *Provider) response(w *messageResponse, status int, model string, created int64) (*adapters.ChatResponse, error) {
	switch {
	case w.Type == "error" || w.Error != nil:
		// Proxies in front of Anthropic sometimes report failures with a 2xx status.
		e := p.streamError(errorObject(w.Error))
		e.Status = status
		return nil, e
	case w.Type != "" && w.Type != "message":
		e := p.ProtocolError(fmt.Sprintf("unexpected response type %q", p.Clean(w.Type, httpx.MaxCode)), nil)
		e.Status = status
		return nil, e
	}
	return translateResponse(w, model, created), nil
}

// ChatStream opens a streamed completion. It returns once the upstream has answered with
// its response headers; a non-2xx answer is returned as an *adapters.Error.
func (p *Provider) ChatStream(ctx context.Context, req *adapters.ChatRequest) (adapters.ChunkStream, error) {
	wire, err := p.translate(req, true)
	if err != nil {
		return nil, err
	}
	body, err := p.OpenStream(ctx, p.url, wire)
	if err != nil {
		return nil, err
	}
	opts := streamOptions{
		model:        req.Model,
		includeUsage: req.StreamOptions != nil && req.StreamOptions.IncludeUsage,
		created:      time.Now().Unix(),
	}
	return newStream(ctx, p, body, opts), nil
}

// translate builds the wire request; one the Messages API cannot express is the
// request's fault.
func (p *Provider) translate(req *adapters.ChatRequest, stream bool) (*messagesRequest, error) {
	wire, err := translateRequest(req, p.maxTokens, stream)
	if err != nil {
		return nil, &adapters.Error{Provider: p.Name(), Kind: adapters.KindBadRequest, Message: err.Error(), Err: err}
	}
	return wire, nil
}
