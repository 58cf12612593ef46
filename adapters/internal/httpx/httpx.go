// Package httpx holds the HTTP plumbing the provider adapters share, so that a vendor's
// package holds only its wire format: Base, the part of a Provider that posts requests and
// classifies the answers, StreamBody, the upstream end of a streamed answer, the gateway's
// default client, header validation, pooled and bounded reads of response bodies, and the
// sanitising of upstream text before it is kept in an error.
package httpx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/internal/scrub"
)

// NewClient builds a client for a gateway: many concurrent requests to few hosts, so a
// deep idle pool per host, and no client Timeout because a long stream is legitimate and
// every request carries its own deadline in its context.
func NewClient() *http.Client {
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          0, // no global cap; the per-host cap is what matters
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: t,
		// A redirect would replay the body and the API-key header (api-key, x-api-key,
		// x-goog-api-key: Go strips only Authorization and cookies across hosts) to
		// wherever Location points; an API endpoint that redirects is misconfigured, so
		// say so.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// ValidHeaderName reports whether s is an RFC 9110 token.
func ValidHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// ValidHeaderValue rejects control characters, which would let a value split the header.
func ValidHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// GetBuffer returns an empty pooled buffer for a response body.
func GetBuffer() *bytes.Buffer { return bufferPool.Get().(*bytes.Buffer) }

// PutBuffer recycles a response buffer, except the rare huge one that would pin memory.
func PutBuffer(b *bytes.Buffer) {
	if b.Cap() > 1<<20 {
		return
	}
	b.Reset()
	bufferPool.Put(b)
}

// ReadBody reads a 2xx body into buf, at most limit bytes. A failure is an
// *adapters.Error of provider: the context's end if ctx is done, a transport error, or a
// protocol error for a body over limit (a whole number of MiB).
func ReadBody(ctx context.Context, provider string, resp *http.Response, buf *bytes.Buffer, limit int64) error {
	if resp.ContentLength > 0 && resp.ContentLength <= limit {
		buf.Grow(int(resp.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if ctx.Err() != nil {
			return ContextError(provider, ctx)
		}
		return adapters.TransportError(provider, ctx, err)
	}
	if n > limit {
		return &adapters.Error{Provider: provider, Kind: adapters.KindProtocol,
			Message: fmt.Sprintf("response body exceeds %d MiB", limit>>20)}
	}
	return nil
}

// ContextError classifies a failure that happened because ctx ended, whatever error the
// interrupted read reported (a closed body says nothing about why it was closed).
func ContextError(provider string, ctx context.Context) *adapters.Error {
	kind := adapters.KindCanceled
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		kind = adapters.KindTimeout
	}
	return &adapters.Error{Provider: provider, Kind: kind, Err: context.Cause(ctx)}
}

// IsJSON reports whether a Content-Type is JSON; a stream request answered with JSON
// means the upstream failed with a 2xx or ignored the request to stream.
func IsJSON(contentType string) bool {
	ct := strings.TrimSpace(strings.ToLower(contentType))
	return strings.HasPrefix(ct, "application/json")
}

// Clean makes upstream text safe to keep: at most limit bytes (before the repair below),
// valid UTF-8, on one line, and without secrets (our API key, our header values), which
// an upstream or a proxy may echo back in an authentication error. Secrets are removed
// before truncation (which could leave half of one) and again after the whitespace
// folding (which could join pieces of one).
func Clean(s string, limit int, secrets scrub.Set) string {
	s = secrets.Scrub(s)
	s = strings.TrimSpace(s)
	if len(s) > limit {
		s = s[:limit] // a rune cut in half becomes U+FFFD just below
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.ContainsFunc(s, IsControl) {
		s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || IsControl(r) }), " ")
	}
	return secrets.Scrub(s)
}

// IsControl reports whether r is an ASCII control character.
func IsControl(r rune) bool { return r < ' ' || r == 0x7f }
