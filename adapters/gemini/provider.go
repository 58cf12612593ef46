package gemini

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
)

// DefaultBaseURL is the Gemini API's root.
const DefaultBaseURL = "https://generativelanguage.googleapis.com"

// DefaultAPIVersion is the API version requests go to. v1beta is where Gemini ships
// function calling, system instructions and JSON mode first, and what Google's own
// SDKs use.
const DefaultAPIVersion = "v1beta"

// maxEmbeddingsBody bounds an embeddings batch: 100 vectors of 3072 floats as
// pretty-printed JSON stay far below it. It only stops a broken upstream from exhausting
// memory.
const maxEmbeddingsBody = 64 << 20

// Config configures one Gemini API upstream.
type Config struct {
	// Name is the provider's name in the catalog and in errors. Required.
	Name string
	// BaseURL is the API root, "https://generativelanguage.googleapis.com" when empty.
	BaseURL string
	// APIKey is sent in the "x-goog-api-key" header, never in the URL, where it would
	// reach access logs and error messages. No header is sent when it is empty (a proxy
	// that adds its own credentials).
	APIKey string
	// APIVersion is the path segment after the root, "v1beta" when empty.
	APIVersion string
	// Headers are added to every request and may replace x-goog-api-key (a proxy with
	// its own scheme); the adapter's own Content-Type, Accept and framing headers cannot
	// be replaced.
	Headers map[string]string
	// HTTPClient replaces the adapter's own client. Its Timeout should be zero: deadlines
	// come from the request context, and a client timeout would cut long streams. It
	// should not follow redirects either: Go forwards custom headers such as
	// x-goog-api-key to the redirect target.
	HTTPClient *http.Client
	// MaxResponseBytes bounds one chat answer: a non-streamed body, or all the bytes of a
	// stream; httpx.DefaultMaxResponse (32 MiB) when zero. Embeddings keep their own bound.
	MaxResponseBytes int64
}

// Provider talks to the Gemini API. It is safe for concurrent use.
type Provider struct {
	httpx.Base

	prefix string // {BaseURL}/{APIVersion}/

	now func() time.Time // the clock for "created"; replaced by tests
}

var (
	_ adapters.FieldTranslator  = (*Provider)(nil)
	_ adapters.Provider         = (*Provider)(nil)
	_ adapters.Embedder         = (*Provider)(nil)
	_ adapters.Closer           = (*Provider)(nil)
	_ adapters.TransportWrapper = (*Provider)(nil)
	_ adapters.GenAIProvider    = (*Provider)(nil)
)

// New validates cfg and returns a Provider.
func New(cfg Config) (*Provider, error) {
	if strings.TrimSpace(cfg.Name) == "" {
		return nil, errors.New("gemini: provider name is required")
	}
	base, err := httpx.BaseURL("gemini", cfg.Name, cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	version := strings.Trim(strings.TrimSpace(cfg.APIVersion), "/")
	if version == "" {
		version = DefaultAPIVersion
	}
	if !validName(version, 32) {
		return nil, fmt.Errorf("gemini: provider %q: api_version %q is not a version name such as v1beta", cfg.Name, version)
	}
	if !httpx.ValidHeaderValue(cfg.APIKey) {
		return nil, fmt.Errorf("gemini: provider %q: api key must not contain control characters", cfg.Name)
	}

	p := &Provider{prefix: base + "/" + version + "/", now: time.Now}
	h := make(http.Header, 1)
	if cfg.APIKey != "" {
		h.Set("X-Goog-Api-Key", cfg.APIKey)
	}
	p.Base, err = httpx.NewBase(httpx.Setup{Adapter: "gemini", Name: cfg.Name, APIKey: cfg.APIKey, GenAI: "gcp.gemini",
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
	target, wire, err := p.chatRequest(req, ":generateContent")
	if err != nil {
		return nil, err
	}
	var g generateResponse
	status, err := p.Exchange(ctx, target, wire, &g, p.MaxResponse(), "GenerateContentResponse")
	if err != nil {
		if e := adapters.AsError(err); e != nil && status != 0 {
			e.Status = status // an answer that does not decode keeps its status too
		}
		return nil, err
	}
	out, e := toChatResponse(&g, req.Model, responseID(string(g.ResponseID)), p.now().Unix())
	if e != nil {
		e.Status = status
		return nil, p.own(e)
	}
	out.Model = safeModel(out.Model, req.Model)
	return out, nil
}

// ChatStream opens a streamed completion. It returns once the upstream has answered with
// its response headers; a non-2xx answer is returned as an *adapters.Error. A JSON answer
// is one too: a proxy that dropped alt=sse makes Gemini stream one JSON array, which this
// adapter does not parse.
func (p *Provider) ChatStream(ctx context.Context, req *adapters.ChatRequest) (adapters.ChunkStream, error) {
	target, wire, err := p.chatRequest(req, ":streamGenerateContent?alt=sse")
	if err != nil {
		return nil, err
	}
	body, err := p.OpenStream(ctx, target, wire)
	if err != nil {
		return nil, err
	}
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	return newStream(ctx, p, body, req.Model, includeUsage), nil
}

// chatRequest builds the URL and the wire request of a chat call.
func (p *Provider) chatRequest(req *adapters.ChatRequest, method string) (string, *generateRequest, error) {
	model, ok := modelPath(req.Model)
	if !ok {
		return "", nil, &adapters.Error{Provider: p.Name(), Kind: adapters.KindBadRequest,
			Message: fmt.Sprintf("model %q is not a Gemini model name", truncate(req.Model, 128))}
	}
	g, err := translateRequest(req)
	if err != nil {
		if e := adapters.AsError(err); e != nil {
			e.Provider = p.Name()
		}
		return "", nil, err
	}
	return p.prefix + model + method, g, nil
}

// own makes an error the translation built this provider's, its upstream text cleaned.
func (p *Provider) own(e *adapters.Error) *adapters.Error {
	e.Provider = p.Name()
	e.Code, e.Message = p.Clean(e.Code, httpx.MaxCode), p.Clean(e.Message, httpx.MaxMessage)
	return e
}

// modelPath turns a model name into its resource name: "gemini-2.5-flash" and
// "models/gemini-2.5-flash" into "models/gemini-2.5-flash", "tunedModels/x" into itself.
// Only plain names are accepted, so a model cannot reach another path or method.
func modelPath(model string) (string, bool) {
	collection, name := "models/", strings.TrimPrefix(model, "models/")
	if rest, ok := strings.CutPrefix(model, "tunedModels/"); ok {
		collection, name = "tunedModels/", rest
	}
	if !validName(name, 256) {
		return "", false
	}
	return collection + name, true
}

// validName accepts the characters of Gemini resource ids and versions.
func validName(s string, max int) bool {
	if s == "" || len(s) > max || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_':
		default:
			return false
		}
	}
	return true
}

// responseID derives the completion id from Gemini's responseId, or makes one up.
func responseID(upstream string) string {
	if validName(upstream, 128) {
		return "chatcmpl-" + upstream
	}
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms
	return "chatcmpl-" + hex.EncodeToString(b[:])
}

// safeModel keeps an upstream model version only when it is a plain, short string.
func safeModel(upstream, requested string) string {
	if upstream == "" || len(upstream) > 256 || !utf8.ValidString(upstream) || strings.ContainsFunc(upstream, httpx.IsControl) {
		return requested
	}
	return upstream
}

func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
