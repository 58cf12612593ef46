package openai

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/adaptertest"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
)

// FuzzSSEStream feeds arbitrary bytes to the stream reader, in reads of arbitrary size.
// Recv must terminate with io.EOF or an *adapters.Error and never panic. (The event
// splitter itself is fuzzed against the SSE spec in adapters/internal/sse.)
func FuzzSSEStream(f *testing.F) {
	adaptertest.SeedFiles(f, "*.sse", func(_ string, b []byte) {
		f.Add(b, uint16(0))
		f.Add(b, uint16(1))
		f.Add(bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")), uint16(5))
		f.Add(bytes.ReplaceAll(b, []byte("\n"), []byte("\r")), uint16(4096))
	})
	f.Add([]byte("\xEF\xBB\xBFdata: [DONE]"), uint16(2))
	f.Add([]byte(": c\r\ndata\r\rdata: {\"error\":\"x\"}\n\n"), uint16(3))
	f.Fuzz(func(t *testing.T, body []byte, readSize uint16) {
		size := int(readSize)
		if size == 0 {
			size = len(body) + 1
		}
		s := memStream(t, adaptertest.ChunkedReader(bytes.NewReader(body), size))
		defer s.Close()
		for i := 0; ; i++ {
			if i > len(body)+1 {
				t.Fatal("Recv does not terminate")
			}
			c, err := s.Recv()
			if err == nil {
				if c == nil {
					t.Fatal("nil chunk without error")
				}
				continue
			}
			if err != io.EOF && adapters.AsError(err) == nil {
				t.Fatalf("error %v (%T) is neither io.EOF nor *adapters.Error", err, err)
			}
			if _, again := s.Recv(); again != err {
				t.Fatalf("end not sticky: %v then %v", err, again)
			}
			return
		}
	})
}

// FuzzErrorBody classifies arbitrary error bodies: never a panic, always a usable error
// whose message is bounded, printable, valid UTF-8 and free of the API key.
func FuzzErrorBody(f *testing.F) {
	statuses := map[string]int{"429": 429, "401": 401, "404": 404, "500": 500, "502": 502, "400": 400}
	adaptertest.SeedFiles(f, "error_*", func(_ string, b []byte) {
		for k, st := range statuses {
			if bytes.Contains(b, []byte(k)) || k == "400" {
				f.Add(st, b, "1")
			}
		}
	})
	f.Add(200, []byte(`{"error":{"message":"sk-fuzz-secret-key","code":{"nested":true}}}`), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(0, []byte{}, "")
	const key = "sk-fuzz-secret-key"
	p, err := New(Config{Name: "fuzz", APIKey: key})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		e := p.ErrorFromBody(status, h, body, now)
		if e == nil || e.Provider != "fuzz" || e.Status != status {
			t.Fatalf("error = %+v", e)
		}
		if e.Kind.String() == "" || strings.HasPrefix(e.Kind.String(), "kind(") {
			t.Fatalf("invalid kind %d", e.Kind)
		}
		if status >= 400 && status < 600 && e.Kind == adapters.KindProtocol {
			t.Fatalf("status %d classified as protocol", status)
		}
		if e.RetryAfter < 0 {
			t.Fatalf("negative retry after %v", e.RetryAfter)
		}
		for _, s := range []string{e.Message, e.Code} {
			if !utf8.ValidString(s) || strings.ContainsFunc(s, httpx.IsControl) || len(s) > 3*httpx.MaxMessage {
				t.Fatalf("unsafe text %q", s)
			}
			if strings.Contains(s, key) {
				t.Fatalf("text leaks the key: %q", s)
			}
		}
		if e.Message == "" || len(e.Code) > 3*httpx.MaxCode {
			t.Fatalf("message %q code %q", e.Message, e.Code)
		}
		_ = e.Error()
		// The same body inside a stream must classify without a panic too.
		if w, ok := parseErrorBody(body); ok {
			se := p.streamError(w)
			if se.Message == "" || strings.Contains(se.Message, key) {
				t.Fatalf("stream error message %q", se.Message)
			}
		}
	})
}
