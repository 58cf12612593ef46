package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	neturl "net/url"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/sse"
	"github.com/gavel-gw/gavel/internal/scrub"
)

// Base is the part of a provider that every HTTP adapter has: its name, key, client and
// request headers, and the request path from posting a body to classifying the answer. A
// vendor's Provider embeds it, which gives the Provider Name, Close, WrapTransport and
// GenAIProvider; what is left in the vendor's package is its wire format.
type Base struct {
	name    string
	secrets scrub.Set // the API key and the operator's header values
	genAI   string
	client  Client

	errs        ErrorBody
	check       func(out any, body []byte) *adapters.Error
	maxResponse int64 // bytes of a chat answer: a non-streamed body, or a whole stream

	jsonHeader   http.Header // a request answered with JSON
	streamHeader http.Header // a request answered with an event stream
}

var (
	_ adapters.Closer           = (*Base)(nil)
	_ adapters.TransportWrapper = (*Base)(nil)
	_ adapters.GenAIProvider    = (*Base)(nil)
)

// ErrorBody is how one vendor's error bodies read; Errors builds one.
type ErrorBody interface {
	// Fill sets e's Code and Message from the body of a failed response and may sharpen
	// e.Kind, which the status gave. It reports whether body was one of the vendor's error
	// bodies; when it was not (an HTML page from a proxy), the body's first words become
	// the message.
	Fill(e *adapters.Error, body []byte) bool
	// InBody returns the error a body answered with a 2xx status reports, or nil.
	InBody(body []byte) *adapters.Error
}

// Errors is an ErrorBody made of a vendor's parser of error bodies and what the vendor
// makes of the error it keeps of one, W.
type Errors[W any] struct {
	Parse  func(body []byte) (W, bool)
	Failed func(e *adapters.Error, w W) // a failed response's: see ErrorBody.Fill
	Event  func(w W) *adapters.Error    // reported with a 2xx status, in a body or an event
}

// Fill implements ErrorBody.
func (x Errors[W]) Fill(e *adapters.Error, body []byte) bool {
	w, ok := x.Parse(body)
	if ok {
		x.Failed(e, w)
	}
	return ok
}

// InBody implements ErrorBody.
func (x Errors[W]) InBody(body []byte) *adapters.Error {
	if w, ok := x.Parse(body); ok {
		return x.Event(w)
	}
	return nil
}

// Setup is what NewBase builds a Base from.
type Setup struct {
	Adapter string // the adapter's name, which prefixes configuration errors
	Name    string // the provider's configured name
	APIKey  string // kept out of every error text, like every Extra value
	GenAI   string // the OpenTelemetry gen_ai.provider.name
	// Header holds the vendor's own headers (authentication, API version); Extra is the
	// operator's, which may replace them but not the framing headers. Extra's values are
	// treated as secrets (they usually are: gateway tokens, tenant keys), so an upstream
	// that echoes the request's headers in an error does not hand them to the caller.
	Header http.Header
	Extra  map[string]string
	Client *http.Client // a client of the provider's own when nil
	Errors ErrorBody
	// CheckAnswer, when set, returns the error a 2xx answer that decoded into out reports
	// (OpenAI-compatible servers, proxies and Gemini report some failures so), or nil.
	CheckAnswer func(out any, body []byte) *adapters.Error
	// MaxResponse bounds the bytes of one chat answer, a non-streamed body or all of a
	// stream's events; DefaultMaxResponse when zero.
	MaxResponse int64
}

// DefaultMaxResponse bounds a chat answer when the provider's configuration does not.
// The longest answers models give today, 128k tokens, are 0.5–1 MB of JSON (a token is
// about 4 bytes of text, and JSON escaping and, in a stream, the per-chunk framing add up
// to about twice that); 32 MiB is some 30 times that, so no real answer comes near it,
// while one misbehaving upstream can make gavel hold no more than this per request (a
// non-streamed answer is read whole before it is decoded).
const DefaultMaxResponse = 32 << 20

// NewBase validates the extra headers and returns the Base of one provider.
func NewBase(s Setup) (Base, error) {
	h := make(http.Header, 2+len(s.Header)+len(s.Extra))
	h.Set("Content-Type", "application/json")
	for k, v := range s.Header {
		h[k] = v
	}
	if err := AddHeaders(s.Adapter, s.Name, h, s.Extra); err != nil {
		return Base{}, err
	}
	secrets := make([]string, 0, 1+len(s.Extra))
	secrets = append(secrets, s.APIKey)
	for _, v := range s.Extra {
		secrets = append(secrets, v)
	}
	b := Base{name: s.Name, secrets: scrub.New(secrets...), genAI: s.GenAI, client: OwnClient(s.Client),
		errs: s.Errors, check: s.CheckAnswer, maxResponse: s.MaxResponse}
	if b.maxResponse <= 0 {
		b.maxResponse = DefaultMaxResponse
	}
	b.jsonHeader = h.Clone()
	b.jsonHeader.Set("Accept", "application/json")
	b.streamHeader = h.Clone()
	b.streamHeader.Set("Accept", "text/event-stream")
	return b, nil
}

// MaxResponse is the most bytes a chat answer may take: Exchange's limit for a
// non-streamed one, and what StreamBody reads of a stream.
func (b *Base) MaxResponse() int64 { return b.maxResponse }

// Name returns the configured provider name.
func (b *Base) Name() string { return b.name }

// Close drops idle upstream connections. A client passed in the provider's Config is left
// alone, since others may share it.
func (b *Base) Close() error {
	b.client.CloseIdle()
	return nil
}

// WrapTransport wraps the transport of the client the provider built itself; a client
// passed in Config belongs to the caller, who instruments it as they see fit. Call it
// before the first request.
func (b *Base) WrapTransport(wrap func(http.RoundTripper) http.RoundTripper) {
	b.client.WrapTransport(wrap)
}

// GenAIProvider is the OpenTelemetry gen_ai.provider.name of this upstream.
func (b *Base) GenAIProvider() string { return b.genAI }

// Clean makes upstream text safe to keep: at most limit bytes, valid UTF-8, on one line,
// and without the provider's API key or configured header values, which an upstream or a
// proxy may echo back in an authentication error.
func (b *Base) Clean(s string, limit int) string { return Clean(s, limit, b.secrets) }

// ProtocolError is an answer the adapter cannot use.
func (b *Base) ProtocolError(msg string, err error) *adapters.Error {
	return &adapters.Error{Provider: b.name, Kind: adapters.KindProtocol, Message: msg, Err: err}
}

// EventError is a failure the upstream reported without a status to go by (an error event
// in a stream, an error body with a 2xx status): kind is what the vendor read in code, and
// fallback the message when the upstream gave none.
func (b *Base) EventError(kind adapters.Kind, code, msg, fallback string) *adapters.Error {
	msg = b.Clean(msg, MaxMessage)
	if msg == "" {
		msg = fallback
	}
	return &adapters.Error{Provider: b.name, Kind: kind, Code: b.Clean(code, MaxCode), Message: msg}
}

// KindForHTTP is adapters.KindForStatus, except that a non-2xx status below 400 (a
// redirect the client was told not to follow) means the upstream answered something the
// adapter cannot use.
func KindForHTTP(status int) adapters.Kind {
	if status < 400 {
		return adapters.KindProtocol
	}
	return adapters.KindForStatus(status)
}

// ErrorFromBody classifies an HTTP failure from its status, headers and body.
func (b *Base) ErrorFromBody(status int, h http.Header, body []byte, now time.Time) *adapters.Error {
	e := &adapters.Error{Provider: b.name, Status: status, Kind: KindForHTTP(status)}
	if h != nil {
		e.RetryAfter = adapters.ParseRetryAfter(h, now)
	}
	if !b.errs.Fill(e, body) {
		// Its first words usually say which hop failed, which is worth keeping.
		e.Message = b.Clean(string(body), MaxMessage)
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
		if e.Message == "" {
			e.Message = "upstream returned status without a message"
		}
	}
	return e
}

// statusError turns a non-2xx response into an *adapters.Error. It reads (a bounded part
// of) the body but does not close it.
func (b *Base) statusError(resp *http.Response) *adapters.Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	return b.ErrorFromBody(resp.StatusCode, resp.Header, body, time.Now())
}

// Exchange is the non-streamed request path: it posts payload as JSON to url, reads the
// 2xx answer (at most limit bytes) and decodes it into out; what names the answer in a
// decode error. Every failure is an *adapters.Error. status is the answer's once it was
// read whole, even when it then failed to decode or reported an error, and 0 before.
func (b *Base) Exchange(ctx context.Context, url string, payload, out any, limit int64, what string) (status int, err error) {
	resp, err := b.post(ctx, url, payload, b.jsonHeader)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return 0, b.statusError(resp)
	}

	buf := GetBuffer()
	defer PutBuffer(buf)
	if err := ReadBody(ctx, b.name, resp, buf, limit); err != nil {
		var e *adapters.Error
		if errors.As(err, &e) && errors.Is(err, ErrBodyTooLarge) && limit == b.maxResponse {
			// Name the setting, so whoever reads the error knows what to raise.
			e.Message = "response body exceeds max_response_bytes (" + Size(limit) + ")"
		}
		return 0, err
	}
	// An answer type with a decoder of its own (FastUnmarshaler) is decoded without
	// reflection when it can be; the rest with a pooled decoder: json.Unmarshal would
	// validate the answer in a first pass and set up its scanner afresh for every call.
	if f, ok := out.(FastUnmarshaler); !ok || !f.UnmarshalFast(buf.Bytes()) {
		dec := sse.GetJSONDecoder()
		err = dec.Decode(buf.Bytes(), out)
		sse.PutJSONDecoder(dec)
	}
	if err != nil {
		return resp.StatusCode, b.ProtocolError("cannot decode "+what, err)
	}
	if b.check != nil {
		if e := b.check(out, buf.Bytes()); e != nil {
			e.Status = resp.StatusCode
			return resp.StatusCode, e
		}
	}
	return resp.StatusCode, nil
}

// Get is the read-only request path (model listings): it GETs url, reads the 2xx answer
// (at most limit bytes) and decodes it into out; what names the answer in a decode error.
// Every failure is an *adapters.Error, scrubbed like a chat failure.
func (b *Base) Get(ctx context.Context, url string, out any, limit int64, what string) error {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return &adapters.Error{Provider: b.name, Kind: adapters.KindBadRequest, Message: "cannot build request", Err: err}
	}
	hr.Header = b.jsonHeader.Clone()
	hr.Header.Del("Content-Type") // a GET has no body
	resp, err := b.client.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return ContextError(b.name, ctx)
		}
		return adapters.TransportError(b.name, ctx, b.scrubTransport(err, url))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return b.statusError(resp)
	}
	buf := GetBuffer()
	defer PutBuffer(buf)
	if err := ReadBody(ctx, b.name, resp, buf, limit); err != nil {
		return err
	}
	if err := json.Unmarshal(buf.Bytes(), out); err != nil {
		return b.ProtocolError("cannot decode "+what, err)
	}
	return nil
}

// OpenStream posts payload as JSON to url and returns the body of the event stream that
// answers it, once the upstream has sent its response headers. A non-2xx answer, or a
// JSON one, is returned as an *adapters.Error.
func (b *Base) OpenStream(ctx context.Context, url string, payload any) (io.ReadCloser, error) {
	resp, err := b.post(ctx, url, payload, b.streamHeader)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, b.statusError(resp)
	}
	if IsJSON(resp.Header.Get("Content-Type")) {
		defer resp.Body.Close()
		return nil, b.jsonInsteadOfStream(resp)
	}
	return resp.Body, nil
}

// ExchangeRaw is Exchange for a body passed through: body is posted as it is, with the
// client's protocol headers fwd, and the 2xx answer's bytes are returned undecoded (a
// copy the caller owns) with its status. check, when set, returns the error a 2xx body
// reports (an error body some proxies answer with), or nil.
func (b *Base) ExchangeRaw(ctx context.Context, url string, body []byte, fwd http.Header, check func([]byte) *adapters.Error) (status int, out []byte, err error) {
	resp, err := b.postBytes(ctx, url, body, b.jsonHeader, fwd)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return 0, nil, b.statusError(resp)
	}
	buf := GetBuffer()
	defer PutBuffer(buf)
	if err := ReadBody(ctx, b.name, resp, buf, b.maxResponse); err != nil {
		var e *adapters.Error
		if errors.As(err, &e) && errors.Is(err, ErrBodyTooLarge) {
			e.Message = "response body exceeds max_response_bytes (" + Size(b.maxResponse) + ")"
		}
		return 0, nil, err
	}
	if !json.Valid(buf.Bytes()) {
		return resp.StatusCode, nil, b.ProtocolError("upstream answer is not valid JSON", nil)
	}
	if check != nil {
		if e := check(buf.Bytes()); e != nil {
			e.Status = resp.StatusCode
			return resp.StatusCode, nil, e
		}
	}
	return resp.StatusCode, bytes.Clone(buf.Bytes()), nil
}

// OpenRawStream is OpenStream for a body passed through (see ExchangeRaw).
func (b *Base) OpenRawStream(ctx context.Context, url string, body []byte, fwd http.Header) (io.ReadCloser, int, error) {
	resp, err := b.postBytes(ctx, url, body, b.streamHeader, fwd)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, 0, b.statusError(resp)
	}
	if IsJSON(resp.Header.Get("Content-Type")) {
		defer resp.Body.Close()
		return nil, 0, b.jsonInsteadOfStream(resp)
	}
	return resp.Body, resp.StatusCode, nil
}

// jsonInsteadOfStream explains a 2xx JSON answer to a stream request: either an error
// reported with a success status, or an upstream (or a proxy) that ignored the request to
// stream.
func (b *Base) jsonInsteadOfStream(resp *http.Response) *adapters.Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	e := b.errs.InBody(body)
	if e == nil {
		e = b.ProtocolError("upstream answered a stream request with application/json instead of text/event-stream", nil)
	}
	e.Status = resp.StatusCode
	return e
}

// FastUnmarshaler is an answer type that decodes the answers it can without reflection,
// exactly as encoding/json would, and reports false (leaving itself unchanged) for the
// rest (adapters.ChatResponse).
type FastUnmarshaler interface {
	UnmarshalFast(body []byte) bool
}

// Appender is a payload that encodes itself as json.Marshal would encode it, without
// reflection (the canonical chat request, adapters/append.go); SizeHint is about how
// many bytes it takes, so that the body is allocated once.
type Appender interface {
	AppendJSON(b []byte) ([]byte, error)
	SizeHint() int
}

// post sends payload as JSON; a failure to encode it or to get any response is
// classified here.
func (b *Base) post(ctx context.Context, url string, payload any, header http.Header) (*http.Response, error) {
	var body []byte
	var err error
	if a, ok := payload.(Appender); ok {
		body, err = a.AppendJSON(make([]byte, 0, a.SizeHint()))
	} else {
		body, err = json.Marshal(payload)
	}
	if err != nil {
		// Only a value the translation let through unchecked (a malformed
		// json.RawMessage, a NaN) gets here.
		return nil, &adapters.Error{Provider: b.name, Kind: adapters.KindBadRequest, Message: "cannot encode request", Err: err}
	}
	return b.postBytes(ctx, url, body, header, nil)
}

// postBytes sends a JSON body as it is, with the client's forwarded headers (fwd, nil for
// none) under the provider's own: authentication and framing are never the client's.
func (b *Base) postBytes(ctx context.Context, url string, body []byte, header, fwd http.Header) (*http.Response, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, &adapters.Error{Provider: b.name, Kind: adapters.KindBadRequest, Message: "cannot build request", Err: err}
	}
	hr.Header = header.Clone()
	for k, v := range fwd {
		hr.Header[http.CanonicalHeaderKey(k)] = v
	}
	resp, err := b.client.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ContextError(b.name, ctx)
		}
		return nil, adapters.TransportError(b.name, ctx, b.scrubTransport(err, url))
	}
	return resp, nil
}

// scrubTransport keeps credentials out of a transport error, which callers see: the
// client's error quotes the request URL, whose password Go masks but not a user name
// (often a token), and a proxy's answer may quote our headers.
func (b *Base) scrubTransport(err error, rawURL string) error {
	err = b.secrets.Error(err)
	if u, perr := neturl.Parse(rawURL); perr == nil && u.User != nil {
		err = scrub.New(scrub.URLSecrets(u.Scheme + "://" + u.User.String() + "@" + u.Host)...).Error(err)
	}
	return err
}
