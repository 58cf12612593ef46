package openai

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gavel-gw/gavel/adapters"
)

// seedFiles adds every testdata file matching pattern to the corpus.
func seedFiles(f *testing.F, pattern string, add func(b []byte)) {
	names, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(names) == 0 {
		f.Fatalf("no seeds for %s: %v", pattern, err)
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
}

// FuzzSSEStream feeds arbitrary bytes to the stream reader, in reads of arbitrary size.
// Recv must terminate with io.EOF or an *adapters.Error and never panic, and the event
// splitter must agree with a plain reading of the SSE spec whatever the read size.
func FuzzSSEStream(f *testing.F) {
	seedFiles(f, "*.sse", func(b []byte) {
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

		if len(body) <= maxEvent {
			wantEvents, wantPartial := referenceSSE(body)
			r := getSSEReader(&chunkedReader{r: bytes.NewReader(body), n: size})
			var got []string
			var partial string
			for i := 0; ; i++ {
				if i > len(body)+1 {
					t.Fatal("event reader does not terminate")
				}
				data, err := r.next()
				if err != nil {
					if err != io.EOF {
						t.Fatalf("unexpected reader error %v", err)
					}
					partial = string(data)
					break
				}
				got = append(got, string(data))
			}
			putSSEReader(r)
			if len(got) != len(wantEvents) || strings.Join(got, "\x00") != strings.Join(wantEvents, "\x00") {
				t.Fatalf("events = %q, want %q", got, wantEvents)
			}
			if partial != wantPartial {
				t.Fatalf("partial = %q, want %q", partial, wantPartial)
			}
		}

		s := memStream(t, &chunkedReader{r: bytes.NewReader(body), n: size})
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

// referenceSSE is a direct, allocation-heavy transcription of the WHATWG parsing rules,
// to check the optimised reader against. A last line cut off by the end of input is
// read as a line; the data of an unfinished event is returned as partial.
func referenceSSE(in []byte) (events []string, partial string) {
	s := strings.TrimPrefix(string(in), "\xEF\xBB\xBF")
	var lines []string
	for {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			if s != "" {
				lines = append(lines, s)
			}
			break
		}
		lines = append(lines, s[:i])
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
	}
	var data []string
	for _, line := range lines {
		switch {
		case line == "":
			if data != nil {
				events = append(events, strings.Join(data, "\n"))
			}
			data = nil
		case line[0] == ':':
		default:
			field, value, found := strings.Cut(line, ":")
			if found {
				value = strings.TrimPrefix(value, " ")
			}
			if field == "data" {
				data = append(data, value)
			}
		}
	}
	return events, strings.Join(data, "\n")
}

// FuzzErrorBody classifies arbitrary error bodies: never a panic, always a usable error
// whose message is bounded, printable, valid UTF-8 and free of the API key.
func FuzzErrorBody(f *testing.F) {
	statuses := map[string]int{"429": 429, "401": 401, "404": 404, "500": 500, "502": 502, "400": 400}
	seedFiles(f, "error_*", func(b []byte) {
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
		e := p.errorFromBody(status, h, body, now)
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
			if !utf8.ValidString(s) || strings.ContainsFunc(s, isControl) || len(s) > 3*maxMessage {
				t.Fatalf("unsafe text %q", s)
			}
			if strings.Contains(s, key) {
				t.Fatalf("text leaks the key: %q", s)
			}
		}
		if e.Message == "" || len(e.Code) > 3*maxCode {
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
