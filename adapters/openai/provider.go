package openai

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
)

// DefaultBaseURL is OpenAI's API root.
const DefaultBaseURL = "https://api.openai.com/v1"

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
	// Responses says whether the upstream serves OpenAI's Responses API (POST
	// {BaseURL}/responses), so that Responses requests pass through untranslated; nil is
	// on for OpenAI's own API (the default BaseURL) and off for other servers, which get
	// Responses requests translated to Chat Completions. Azure deployments never do.
	Responses *bool
	// MaxResponseBytes bounds one chat answer: a non-streamed body, or all the bytes of a
	// stream; httpx.DefaultMaxResponse (32 MiB) when zero. Embeddings keep their own bound.
	MaxResponseBytes int64
}

// Provider talks to one OpenAI-compatible upstream. It is safe for concurrent use.
type Provider struct {
	httpx.Base

	chat        endpoint
	embed       endpoint
	azurePrefix string // Azure: URL up to the deployment name
	responses   string // the Responses API's URL when the upstream serves it natively, else ""
	models      string // GET {base}/models; empty on Azure, which lists no deployments there
}

var (
	_ adapters.Provider         = (*Provider)(nil)
	_ adapters.Closer           = (*Provider)(nil)
	_ adapters.TransportWrapper = (*Provider)(nil)
	_ adapters.GenAIProvider    = (*Provider)(nil)
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

	p := new(Provider)
	genAI := "openai"
	h := make(http.Header, 3)
	if cfg.APIVersion != "" {
		genAI = "azure.ai.openai"
		p.azurePrefix = base + "/openai/deployments/"
		version := "?api-version=" + url.QueryEscape(cfg.APIVersion)
		p.chat.azureSuffix = "/chat/completions" + version
		p.embed.azureSuffix = "/embeddings" + version
		if cfg.APIKey != "" {
			h.Set("Api-Key", cfg.APIKey)
		}
	} else {
		p.chat.url = base + "/chat/completions"
		p.embed.url = base + "/embeddings"
		if (cfg.Responses == nil && base == DefaultBaseURL) || (cfg.Responses != nil && *cfg.Responses) {
			p.responses = base + "/responses"
		}
		p.models = base + "/models"
		if cfg.APIKey != "" {
			h.Set("Authorization", "Bearer "+cfg.APIKey)
		}
	}
	if cfg.Organization != "" {
		h.Set("OpenAI-Organization", cfg.Organization)
	}
	if cfg.Project != "" {
		h.Set("OpenAI-Project", cfg.Project)
	}
	p.Base, err = httpx.NewBase(httpx.Setup{Adapter: "openai", Name: cfg.Name, APIKey: cfg.APIKey, GenAI: genAI,
		Header: h, Extra: cfg.Headers, Client: cfg.HTTPClient, MaxResponse: cfg.MaxResponseBytes,
		Errors:      httpx.Errors[wireError]{Parse: parseErrorBody, Failed: p.failed, Event: p.streamError},
		CheckAnswer: p.checkAnswer})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Chat performs a non-streamed completion.
func (p *Provider) Chat(ctx context.Context, req *adapters.ChatRequest) (*adapters.ChatResponse, error) {
	target, err := p.target(p.chat, req.Model)
	if err != nil {
		return nil, err
	}
	wire := *req // shallow copy: the caller's request is never mutated
	wire.Stream = false
	wire.StreamOptions = nil
	out := new(adapters.ChatResponse)
	if _, err := p.Exchange(ctx, target, payload(&wire), out, p.MaxResponse(), "chat completion"); err != nil {
		return nil, err
	}
	return out, nil
}

// ChatStream opens a streamed completion. It returns once the upstream has answered with
// its response headers; a non-2xx answer is returned as an *adapters.Error.
func (p *Provider) ChatStream(ctx context.Context, req *adapters.ChatRequest) (adapters.ChunkStream, error) {
	target, err := p.target(p.chat, req.Model)
	if err != nil {
		return nil, err
	}
	wire := *req
	wire.Stream = true // StreamOptions pass through: the caller decides include_usage
	body, err := p.OpenStream(ctx, target, payload(&wire))
	if err != nil {
		return nil, err
	}
	return newStream(ctx, p, body), nil
}

// payload is what is posted for req: the request with the members gavel has no typed
// field for, if it carries any (the same protocol upstream takes them unchanged), encoded
// without reflection.
func payload(req *adapters.ChatRequest) httpx.Appender { return wireRequest{req} }

// wireRequest encodes a chat request as the upstream receives it (AppendWire).
type wireRequest struct{ r *adapters.ChatRequest }

func (w wireRequest) AppendJSON(b []byte) ([]byte, error) { return w.r.AppendWire(b) }
func (w wireRequest) SizeHint() int                       { return w.r.SizeHint() }

// target is the URL of ep; on Azure, model names the deployment.
func (p *Provider) target(ep endpoint, model string) (string, error) {
	if ep.url != "" {
		return ep.url, nil
	}
	if model == "" {
		return "", &adapters.Error{Provider: p.Name(), Kind: adapters.KindBadRequest, Message: "azure deployment (model) is required"}
	}
	return p.azurePrefix + url.PathEscape(model) + ep.azureSuffix, nil
}
