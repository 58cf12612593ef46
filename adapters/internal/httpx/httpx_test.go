package httpx

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/internal/scrub"
)

func TestClean(t *testing.T) {
	const key = "sk-secret-123"
	tests := []struct {
		name, in string
		limit    int
		want     string
	}{
		{name: "plain", in: "  bad request  ", limit: 100, want: "bad request"},
		{name: "key", in: "invalid key sk-secret-123 given", limit: 100, want: "invalid key [redacted] given"},
		{name: "key cut by the limit", in: "key: sk-secret-123", limit: 10, want: "key: [reda"},
		{name: "key joined by folding", in: "sk-secret\n-123", limit: 100, want: "sk-secret -123"},
		{name: "controls folded", in: "a\r\nb\tc\x00d\x7fe", limit: 100, want: "a b c d e"},
		{name: "invalid utf-8", in: "a\xffb", limit: 100, want: "a\uFFFDb"},
		{name: "rune cut in half", in: "ééé", limit: 3, want: "é\uFFFD"},
		{name: "empty", in: " \n ", limit: 100, want: ""},
		{name: "header value", in: `{"echo":{"X-Tenant-Token":"tenant-s3cret"}}`, limit: 100, want: `{"echo":{"X-Tenant-Token":"[redacted]"}}`},
		{name: "header value in HTML", in: "<p>x-tenant-token: tenant-s3cret</p>", limit: 100, want: "<p>x-tenant-token: [redacted]</p>"},
	}
	secrets := scrub.New(key, "tenant-s3cret")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Clean(tt.in, tt.limit, secrets); got != tt.want {
				t.Errorf("Clean(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
			}
		})
	}
	if got := Clean("no key here", 100, scrub.Set{}); got != "no key here" {
		t.Errorf("empty secret: %q", got)
	}
}

func FuzzClean(f *testing.F) {
	f.Add("invalid key sk-abc", 10, "sk-abc")
	f.Add("a\r\n\xffsk-\nabc", 3, "sk-abc")
	f.Fuzz(func(t *testing.T, s string, limit int, secret string) {
		if limit < 0 || limit > 1<<16 {
			return
		}
		got := Clean(s, limit, scrub.New(secret))
		if !utf8.ValidString(got) || strings.ContainsFunc(got, IsControl) || len(got) > 3*limit {
			t.Fatalf("Clean(%q, %d) = %q", s, limit, got)
		}
		if len(secret) >= scrub.MinLen && !strings.Contains("[redacted]", secret) && strings.Contains(got, secret) {
			t.Fatalf("Clean(%q) = %q keeps the secret %q", s, got, secret)
		}
	})
}

func TestValidHeader(t *testing.T) {
	for _, s := range []string{"X-Api-Key", "a", "x_y.z~!#$%&'*+-^`|"} {
		if !ValidHeaderName(s) {
			t.Errorf("ValidHeaderName(%q) = false", s)
		}
	}
	for _, s := range []string{"", "a b", "a:b", "a\nb", "é", "a(b)"} {
		if ValidHeaderName(s) {
			t.Errorf("ValidHeaderName(%q) = true", s)
		}
	}
	for _, s := range []string{"", "Bearer x", "a\tb", "é"} {
		if !ValidHeaderValue(s) {
			t.Errorf("ValidHeaderValue(%q) = false", s)
		}
	}
	for _, s := range []string{"a\r\nX-Evil: 1", "a\nb", "a\x00", "a\x7f"} {
		if ValidHeaderValue(s) {
			t.Errorf("ValidHeaderValue(%q) = true", s)
		}
	}
}

func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                 true,
		" Application/JSON; charset=utf-8": true,
		"text/event-stream":                false,
		"":                                 false,
	} {
		if IsJSON(ct) != want {
			t.Errorf("IsJSON(%q) = %v", ct, !want)
		}
	}
}

type errBody struct{ err error }

func (e errBody) Read([]byte) (int, error) { return 0, e.err }

func TestReadBody(t *testing.T) {
	resp := func(body io.Reader, n int64) *http.Response {
		return &http.Response{Body: io.NopCloser(body), ContentLength: n}
	}
	ctx := context.Background()
	buf := GetBuffer()
	defer PutBuffer(buf)

	if err := ReadBody(ctx, "p", resp(strings.NewReader("hello"), 5), buf, 1<<20); err != nil || buf.String() != "hello" {
		t.Fatalf("ReadBody = %v, %q", err, buf.String())
	}

	buf.Reset()
	err := ReadBody(ctx, "p", resp(bytes.NewReader(make([]byte, 1<<20+1)), -1), buf, 1<<20)
	var e *adapters.Error
	if !errors.As(err, &e) || e.Kind != adapters.KindProtocol || e.Message != "response body exceeds 1 MiB" || e.Provider != "p" {
		t.Fatalf("oversized body: %#v", err)
	}

	buf.Reset()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err = ReadBody(cctx, "p", resp(errBody{errors.New("closed")}, -1), buf, 1<<20)
	if !errors.As(err, &e) || e.Kind != adapters.KindCanceled {
		t.Fatalf("cancelled: %#v", err)
	}

	dctx, dcancel := context.WithTimeout(ctx, 0)
	defer dcancel()
	<-dctx.Done()
	if e := ContextError("p", dctx); e.Kind != adapters.KindTimeout || !errors.Is(e, context.DeadlineExceeded) {
		t.Fatalf("deadline: %#v", e)
	}

	err = ReadBody(ctx, "p", resp(errBody{io.ErrUnexpectedEOF}, -1), buf, 1<<20)
	if !errors.As(err, &e) || e.Provider != "p" {
		t.Fatalf("transport failure: %#v", err)
	}
}

func TestPutBufferDropsHuge(t *testing.T) {
	b := GetBuffer()
	b.Grow(2 << 20)
	PutBuffer(b) // must not panic, and is not pooled
	small := GetBuffer()
	small.WriteString("x")
	PutBuffer(small)
	if got := GetBuffer(); got.Len() != 0 {
		t.Fatalf("pooled buffer not reset: %q", got.String())
	}
}

func TestNewClientRefusesRedirects(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
			return
		}
		t.Errorf("redirect followed to %s", r.URL.Path)
	}))
	defer srv.Close()
	c := NewClient()
	defer c.CloseIdleConnections()
	resp, err := c.Get(srv.URL + "/moved")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("status = %d, want 307", resp.StatusCode)
	}
	if tr, ok := c.Transport.(*http.Transport); !ok || tr.MaxIdleConnsPerHost != 256 || c.Timeout != 0 {
		t.Fatalf("unexpected client setup: %#v", c)
	}
}

// noErrors is an ErrorBody that recognises no body, so the body's first words become the
// message.
var noErrors = Errors[struct{}]{
	Parse:  func([]byte) (struct{}, bool) { return struct{}{}, false },
	Failed: func(*adapters.Error, struct{}) {},
	Event:  func(struct{}) *adapters.Error { return nil },
}

// The API key and every configured header value are kept out of what a provider's errors
// say: an upstream's error body that echoes them, and a transport error quoting the URL.
func TestBaseKeepsSecretsOutOfErrors(t *testing.T) {
	b, err := NewBase(Setup{Adapter: "test", Name: "p", APIKey: "sk-key-0123", Errors: noErrors,
		Extra: map[string]string{"X-Custom-Key": "hdr-s3cret-9", "X-Short": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	body := "<html><body>401: Authorization=Bearer sk-key-0123; X-Custom-Key=hdr-s3cret-9; X-Short=1</body></html>"
	e := b.ErrorFromBody(401, nil, []byte(body), time.Now())
	want := "<html><body>401: Authorization=Bearer [redacted]; X-Custom-Key=[redacted]; X-Short=1</body></html>"
	if e.Message != want {
		t.Errorf("message = %q, want %q", e.Message, want)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: the request fails with the client's error quoting the URL
	var out struct{}
	_, err = b.Exchange(context.Background(), "http://tok3n-user-0123:pw-0123@"+addr+"/v1/x", struct{}{}, &out, 1<<20, "x")
	var ae *adapters.Error
	if !errors.As(err, &ae) || ae.Kind != adapters.KindConnection || !strings.Contains(err.Error(), addr) {
		t.Fatalf("err = %v", err)
	}
	for _, s := range []string{"tok3n-user-0123", "pw-0123"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("transport error %q shows %q", err, s)
		}
	}
}
