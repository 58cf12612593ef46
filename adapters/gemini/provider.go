package gemini

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// maxResponseBody bounds a non-streamed response (and an embeddings batch: 100 vectors
// of 3072 floats as pretty-printed JSON stay far below it). It only stops a broken
// upstream from exhausting memory.
const maxResponseBody = 64 << 20

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
}

// Provider talks to the Gemini API. It is safe for concurrent use.
type Provider struct {
	name   string
	apiKey string

	prefix       string // {BaseURL}/{APIVersion}/
	jsonHeader   http.Header
	streamHeader http.Header

	client httpx.Client

	now func() time.Time // the clock for "created"; replaced by tests
}

var (
	_ adapters.Provider = (*Provider)(nil)
	_ adapters.Embedder = (*Provider)(nil)
	_ adapters.Closer   = (*Provider)(nil)
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

	p := &Provider{name: cfg.Name, apiKey: cfg.APIKey, client: httpx.OwnClient(cfg.HTTPClient), now: time.Now,
		prefix: base + "/" + version + "/"}
	h := make(http.Header, 4+len(cfg.Headers))
	h.Set("Content-Type", "application/json")
	if cfg.APIKey != "" {
		h.Set("X-Goog-Api-Key", cfg.APIKey)
	}
	if err := httpx.AddHeaders("gemini", cfg.Name, h, cfg.Headers); err != nil {
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
	target, body, err := p.chatRequest(req, ":generateContent")
	if err != nil {
		return nil, err
	}
	resp, err := p.post(ctx, target, body, p.jsonHeader)
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
	var g generateResponse
	if err := json.Unmarshal(buf.Bytes(), &g); err != nil {
		e := p.protocolError("cannot decode GenerateContentResponse", err)
		e.Status = resp.StatusCode
		return nil, e
	}
	if w, ok := parseErrorObject(g.Error); ok {
		e := p.streamError(w)
		e.Status = resp.StatusCode
		return nil, e
	}
	out, e := toChatResponse(&g, req.Model, responseID(string(g.ResponseID)), p.now().Unix())
	if e != nil {
		e.Provider, e.Status = p.name, resp.StatusCode
		e.Code, e.Message = p.clean(e.Code, httpx.MaxCode), p.clean(e.Message, httpx.MaxMessage)
		return nil, e
	}
	out.Model = safeModel(out.Model, req.Model)
	return out, nil
}

// ChatStream opens a streamed completion. It returns once the upstream has answered with
// its response headers; a non-2xx answer is returned as an *adapters.Error.
func (p *Provider) ChatStream(ctx context.Context, req *adapters.ChatRequest) (adapters.ChunkStream, error) {
	target, body, err := p.chatRequest(req, ":streamGenerateContent?alt=sse")
	if err != nil {
		return nil, err
	}
	resp, err := p.post(ctx, target, body, p.streamHeader)
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
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	return newStream(ctx, p, resp.Body, req.Model, includeUsage), nil
}

// jsonInsteadOfStream explains a 2xx JSON answer to a stream request: an error reported
// with a success status, or a proxy that dropped alt=sse (Gemini then streams one JSON
// array, which this adapter does not parse).
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

// chatRequest builds the URL and body of a chat call.
func (p *Provider) chatRequest(req *adapters.ChatRequest, method string) (string, []byte, error) {
	model, ok := modelPath(req.Model)
	if !ok {
		return "", nil, &adapters.Error{Provider: p.name, Kind: adapters.KindBadRequest,
			Message: fmt.Sprintf("model %q is not a Gemini model name", truncate(req.Model, 128))}
	}
	g, err := translateRequest(req)
	if err != nil {
		if e := adapters.AsError(err); e != nil {
			e.Provider = p.name
		}
		return "", nil, err
	}
	body, err := json.Marshal(g)
	if err != nil {
		// Only a value the translation let through unchecked (a NaN temperature) gets here.
		return "", nil, &adapters.Error{Provider: p.name, Kind: adapters.KindBadRequest, Message: "cannot encode request", Err: err}
	}
	return p.prefix + model + method, body, nil
}

// post sends a request; a failure to get any response is classified here.
func (p *Provider) post(ctx context.Context, target string, body []byte, header http.Header) (*http.Response, error) {
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
