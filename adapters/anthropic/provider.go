package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// maxResponseBody bounds a non-streamed response. It is far above any real completion and
// only stops a broken upstream from exhausting memory.
const maxResponseBody = 64 << 20

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
}

// Provider talks to one Anthropic upstream. It is safe for concurrent use.
type Provider struct {
	name      string
	apiKey    string
	url       string
	maxTokens int

	chatHeader   http.Header
	streamHeader http.Header

	client httpx.Client
}

var (
	_ adapters.Provider = (*Provider)(nil)
	_ adapters.Closer   = (*Provider)(nil)
)

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

	p := &Provider{
		name:      cfg.Name,
		apiKey:    cfg.APIKey,
		url:       base + "/v1/messages",
		maxTokens: cfg.DefaultMaxTokens,
		client:    httpx.OwnClient(cfg.HTTPClient),
	}
	if p.maxTokens == 0 {
		p.maxTokens = DefaultMaxTokens
	}

	h := make(http.Header, 4+len(cfg.Headers))
	h.Set("Content-Type", "application/json")
	h.Set("Anthropic-Version", version)
	if cfg.APIKey != "" {
		h.Set("X-Api-Key", cfg.APIKey)
	}
	if err := httpx.AddHeaders("anthropic", cfg.Name, h, cfg.Headers); err != nil {
		return nil, err
	}
	p.chatHeader = h.Clone()
	p.chatHeader.Set("Accept", "application/json")
	p.streamHeader = h.Clone()
	p.streamHeader.Set("Accept", "text/event-stream")
	return p, nil
}

// Name returns the configured provider name.
func (p *Provider) Name() string { return p.name }

// Close drops idle upstream connections. A client passed in Config is left alone, since
// others may share it.
func (p *Provider) Close() error {
	p.client.CloseIdle()
	return nil
}

// Chat performs a non-streamed completion.
func (p *Provider) Chat(ctx context.Context, req *adapters.ChatRequest) (*adapters.ChatResponse, error) {
	resp, err := p.do(ctx, req, false, p.chatHeader)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, p.statusError(resp)
	}

	buf := httpx.GetBuffer()
	defer httpx.PutBuffer(buf)
	if err := httpx.ReadBody(ctx, p.name, resp, buf, maxResponseBody); err != nil {
		return nil, err
	}
	var w messageResponse
	if err := json.Unmarshal(buf.Bytes(), &w); err != nil {
		return nil, p.protocolError("cannot decode message", err)
	}
	return p.response(&w, resp.StatusCode, req.Model, time.Now().Unix())
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
		e := p.protocolError(fmt.Sprintf("unexpected response type %q", p.clean(w.Type, httpx.MaxCode)), nil)
		e.Status = status
		return nil, e
	}
	return translateResponse(w, model, created), nil
}

// ChatStream opens a streamed completion. It returns once the upstream has answered with
// its response headers; a non-2xx answer is returned as an *adapters.Error.
func (p *Provider) ChatStream(ctx context.Context, req *adapters.ChatRequest) (adapters.ChunkStream, error) {
	resp, err := p.do(ctx, req, true, p.streamHeader)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, p.statusError(resp)
	}
	if httpx.IsJSON(resp.Header.Get("Content-Type")) {
		defer resp.Body.Close()
		return nil, p.jsonInsteadOfStream(resp)
	}
	opts := streamOptions{
		model:        req.Model,
		includeUsage: req.StreamOptions != nil && req.StreamOptions.IncludeUsage,
		created:      time.Now().Unix(),
	}
	return newStream(ctx, p, resp.Body, opts), nil
}

// jsonInsteadOfStream explains a 2xx JSON answer to a stream request: either an error
// reported with a success status, or an upstream that ignored "stream": true.
func (p *Provider) jsonInsteadOfStream(resp *http.Response) *adapters.Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, httpx.MaxErrorBody))
	if w, ok := parseErrorBody(body); ok {
		e := p.streamError(w)
		e.Status = resp.StatusCode
		return e
	}
	e := p.protocolError("upstream answered a stream request with application/json instead of text/event-stream", nil)
	e.Status = resp.StatusCode
	return e
}

// do translates and sends the request; a request the Messages API cannot express and a
// failure to get any response are classified here.
func (p *Provider) do(ctx context.Context, req *adapters.ChatRequest, stream bool, header http.Header) (*http.Response, error) {
	wire, err := translateRequest(req, p.maxTokens, stream)
	if err != nil {
		return nil, &adapters.Error{Provider: p.name, Kind: adapters.KindBadRequest, Message: err.Error(), Err: err}
	}
	body, err := json.Marshal(wire)
	if err != nil {
		return nil, &adapters.Error{Provider: p.name, Kind: adapters.KindBadRequest, Message: "cannot encode request", Err: err}
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return nil, &adapters.Error{Provider: p.name, Kind: adapters.KindBadRequest, Message: "cannot build request", Err: err}
	}
	hr.Header = header.Clone()
	resp, err := p.client.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, httpx.ContextError(p.name, ctx)
		}
		return nil, adapters.TransportError(p.name, ctx, err)
	}
	return resp, nil
}
