package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
)

// DefaultBaseURL is OpenAI's API root.
const DefaultBaseURL = "https://api.openai.com/v1"

// maxResponseBody bounds a non-streamed response. It is far above any real completion
// (n=128 long answers stay under it) and only stops a broken upstream from exhausting memory.
const maxResponseBody = 64 << 20

// Config configures one OpenAI-compatible upstream.
type Config struct {
	// Name is the provider's name in the catalog and in errors. Required.
	Name string
	// BaseURL is the API root, "https://api.openai.com/v1" when empty. For vLLM or Ollama
	// it is e.g. "http://localhost:11434/v1"; for Azure the resource endpoint
	// "https://NAME.openai.azure.com".
	BaseURL string
	// APIKey is sent as "Authorization: Bearer KEY" (or "api-key: KEY" for Azure); no
	// header is sent when it is empty, as local servers such as Ollama need none.
	APIKey       string
	Organization string // OpenAI-Organization header, when set
	Project      string // OpenAI-Project header, when set
	// Headers are added to every request and may replace the authentication headers (a
	// vLLM behind a proxy with its own scheme); the adapter's own Content-Type, Accept and
	// framing headers cannot be replaced.
	Headers map[string]string
	// APIVersion selects Azure OpenAI: requests go to
	// {BaseURL}/openai/deployments/{model}/chat/completions?api-version={APIVersion}
	// (…/{model}/embeddings?… for embeddings) and the key travels in the "api-key" header.
	APIVersion string
	// HTTPClient replaces the adapter's own client. Its Timeout should be zero: deadlines
	// come from the request context, and a client timeout would cut long streams.
	HTTPClient *http.Client
}

// Provider talks to one OpenAI-compatible upstream. It is safe for concurrent use.
type Provider struct {
	name   string
	apiKey string

	chat         endpoint
	embed        endpoint
	azurePrefix  string      // Azure: URL up to the deployment name
	jsonHeader   http.Header // non-streamed exchanges: chat and embeddings
	streamHeader http.Header

	client httpx.Client
}

var (
	_ adapters.Provider = (*Provider)(nil)
	_ adapters.Closer   = (*Provider)(nil)
)

// endpoint is where one operation is sent: a fixed URL under a plain base URL or, on
// Azure, the part after the deployment name, which each request's model supplies.
type endpoint struct {
	url         string // non-Azure: the operation's fixed URL
	azureSuffix string // Azure: path after the deployment name, with the api-version query
}

// New validates cfg and returns a Provider.
func New(cfg Config) (*Provider, error) {
	if strings.TrimSpace(cfg.Name) == "" {
		return nil, errors.New("openai: provider name is required")
	}
	base, err := httpx.BaseURL("openai", cfg.Name, cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	if !httpx.ValidHeaderValue(cfg.APIKey) || !httpx.ValidHeaderValue(cfg.Organization) || !httpx.ValidHeaderValue(cfg.Project) {
		return nil, fmt.Errorf("openai: provider %q: api key, organization and project must not contain control characters", cfg.Name)
	}

	p := &Provider{name: cfg.Name, apiKey: cfg.APIKey, client: httpx.OwnClient(cfg.HTTPClient)}
	if cfg.APIVersion != "" {
		p.azurePrefix = base + "/openai/deployments/"
		version := "?api-version=" + url.QueryEscape(cfg.APIVersion)
		p.chat.azureSuffix = "/chat/completions" + version
		p.embed.azureSuffix = "/embeddings" + version
	} else {
		p.chat.url = base + "/chat/completions"
		p.embed.url = base + "/embeddings"
	}

	h := make(http.Header, 6+len(cfg.Headers))
	h.Set("Content-Type", "application/json")
	if cfg.APIKey != "" {
		if cfg.APIVersion != "" {
			h.Set("Api-Key", cfg.APIKey)
		} else {
			h.Set("Authorization", "Bearer "+cfg.APIKey)
		}
	}
	if cfg.Organization != "" {
		h.Set("OpenAI-Organization", cfg.Organization)
	}
	if cfg.Project != "" {
		h.Set("OpenAI-Project", cfg.Project)
	}
	if err := httpx.AddHeaders("openai", cfg.Name, h, cfg.Headers); err != nil {
		return nil, err
	}
	p.jsonHeader = h.Clone()
	p.jsonHeader.Set("Accept", "application/json")
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
	wire := *req // shallow copy: the caller's request is never mutated
	wire.Stream = false
	wire.StreamOptions = nil
	out := new(adapters.ChatResponse)
	err := p.exchange(ctx, p.chat, req.Model, &wire, out, maxResponseBody, "chat completion",
		func() bool { return len(out.Choices) > 0 })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// exchange is the non-streamed request path shared by every operation: it sends payload,
// reads the 2xx answer (at most limit bytes) and decodes it into out. what names the
// answer in a decode error. hasResult reports whether the decoded answer holds a result;
// when it does not, the body is checked for the error that some compatible servers and
// proxies report with a 2xx status. Every failure is an *adapters.Error.
func (p *Provider) exchange(ctx context.Context, ep endpoint, model string, payload, out any,
	limit int64, what string, hasResult func() bool) error {
	resp, err := p.do(ctx, ep, model, payload, p.jsonHeader)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return p.statusError(resp)
	}

	buf := httpx.GetBuffer()
	defer httpx.PutBuffer(buf)
	if err := httpx.ReadBody(ctx, p.name, resp, buf, limit); err != nil {
		return err
	}
	if err := json.Unmarshal(buf.Bytes(), out); err != nil {
		return p.protocolError("cannot decode "+what, err)
	}
	if !hasResult() && mayHoldError(buf.Bytes()) {
		if w, ok := parseErrorBody(buf.Bytes()); ok {
			e := p.streamError(w)
			e.Status = resp.StatusCode
			return e
		}
	}
	return nil
}

// ChatStream opens a streamed completion. It returns once the upstream has answered with
// its response headers; a non-2xx answer is returned as an *adapters.Error.
func (p *Provider) ChatStream(ctx context.Context, req *adapters.ChatRequest) (adapters.ChunkStream, error) {
	wire := *req
	wire.Stream = true // StreamOptions pass through: the caller decides include_usage
	resp, err := p.do(ctx, p.chat, req.Model, &wire, p.streamHeader)
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
	return newStream(ctx, p, resp.Body), nil
}

// jsonInsteadOfStream explains a 2xx JSON answer to a stream request: either an error
// reported with a success status, or a server that ignored "stream": true.
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

// do posts payload as JSON to ep; on Azure, model names the deployment. A failure to get
// any response is classified here.
func (p *Provider) do(ctx context.Context, ep endpoint, model string, payload any, header http.Header) (*http.Response, error) {
	target := ep.url
	if target == "" {
		if model == "" {
			return nil, &adapters.Error{Provider: p.name, Kind: adapters.KindBadRequest, Message: "azure deployment (model) is required"}
		}
		target = p.azurePrefix + url.PathEscape(model) + ep.azureSuffix
	}
	body, err := json.Marshal(payload)
	if err != nil {
		// Only a malformed json.RawMessage (tool_choice, response_format) gets here.
		return nil, &adapters.Error{Provider: p.name, Kind: adapters.KindBadRequest, Message: "cannot encode request", Err: err}
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
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
