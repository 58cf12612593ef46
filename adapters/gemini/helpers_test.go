package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

var update = flag.Bool("update", false, "rewrite the expected (translated) files in testdata")

// fixedNow is the clock of test providers, so "created" is reproducible.
var fixedNow = time.Unix(1754300000, 0)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// canonicalJSON re-indents a JSON document so that two documents equal in meaning (key
// order and spacing aside) compare equal as text.
func canonicalJSON(t testing.TB, b []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	return out
}

// golden compares got with testdata/name, or rewrites the file under -update. JSON
// files are compared by meaning; .jsonl files line by line.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	jsonl := strings.HasSuffix(name, ".jsonl")
	if *update {
		var out []byte
		if jsonl {
			out = got
		} else {
			out = append(canonicalJSON(t, got), '\n')
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := readTestdata(t, name)
	if !jsonl {
		if w, g := canonicalJSON(t, want), canonicalJSON(t, got); !bytes.Equal(w, g) {
			t.Errorf("%s differs\nwant:\n%s\ngot:\n%s", name, w, g)
		}
		return
	}
	wl, gl := splitLines(want), splitLines(got)
	for i := 0; i < max(len(wl), len(gl)); i++ {
		switch {
		case i >= len(wl):
			t.Errorf("%s: extra line %d: %s", name, i+1, gl[i])
		case i >= len(gl):
			t.Errorf("%s: missing line %d: %s", name, i+1, wl[i])
		case !bytes.Equal(canonicalJSON(t, wl[i]), canonicalJSON(t, gl[i])):
			t.Errorf("%s: line %d differs\nwant: %s\ngot:  %s", name, i+1, wl[i], gl[i])
		}
	}
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// generatedID matches the ids the adapter makes up when Gemini sends no responseId.
var generatedID = regexp.MustCompile(`chatcmpl-[0-9a-f]{24}"`)

func normalizeIDs(b []byte) []byte {
	return generatedID.ReplaceAll(b, []byte(`chatcmpl-GENERATED"`))
}

func mustProvider(t testing.TB, cfg Config) *Provider {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.now = func() time.Time { return fixedNow }
	t.Cleanup(func() { p.Close() })
	return p
}

// asError asserts err is an *adapters.Error of the given kind.
func asError(t *testing.T, err error, kind adapters.Kind) *adapters.Error {
	t.Helper()
	e := adapters.AsError(err)
	if e == nil {
		t.Fatalf("error %v (%T) is not an *adapters.Error", err, err)
	}
	if e.Kind != kind {
		t.Fatalf("kind = %v, want %v (error: %v)", e.Kind, kind, e)
	}
	return e
}

// drainStream reads a stream to its end.
func drainStream(s adapters.ChunkStream) ([]*adapters.ChatChunk, error) {
	var out []*adapters.ChatChunk
	for {
		c, err := s.Recv()
		if err != nil {
			return out, err
		}
		if c == nil {
			return out, errors.New("nil chunk with nil error")
		}
		out = append(out, c)
	}
}

// errorJSON describes an error for golden files, without the parts that vary (the
// underlying cause's text).
func errorJSON(err error) []byte {
	if err == io.EOF {
		return []byte(`{"end":"EOF"}`)
	}
	e := adapters.AsError(err)
	if e == nil {
		b, _ := json.Marshal(map[string]string{"unexpected": err.Error()})
		return b
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"provider": e.Provider, "kind": e.Kind.String(), "status": e.Status, "code": e.Code,
		"message": e.Message, "retry_after": e.RetryAfter.String(),
	}})
	return b
}

// recorder is an httptest handler that remembers the last request and answers with a
// fixed status, headers and body.
type recorder struct {
	mu       sync.Mutex
	method   string
	path     string
	rawQuery string
	uri      string
	header   http.Header
	body     []byte
	requests int
	status   int
	headers  map[string]string
	reply    []byte
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.method, rec.path, rec.rawQuery, rec.uri = r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.RequestURI
	rec.header, rec.body = r.Header.Clone(), b
	rec.requests++
	status, headers, reply := rec.status, rec.headers, rec.reply
	rec.mu.Unlock()
	for k, v := range headers {
		w.Header().Set(k, v)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	}
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	w.Write(reply)
}

func newRecorder(t *testing.T, status int, reply []byte, headers map[string]string) (*recorder, *httptest.Server) {
	rec := &recorder{status: status, reply: reply, headers: headers}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return rec, srv
}

// sseServer streams body as text/event-stream.
func sseServer(t *testing.T, body []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// checkNoLeak fails the test when goroutines started during it that belong to net/http
// or this package are still running once it has cleaned up (callers close servers and
// idle connections first). Goroutines are told apart by id, so a baseline taken before
// the test excludes everything that was already there.
func checkNoLeak(t *testing.T) func() {
	t.Helper()
	before := interestingGoroutines()
	return func() {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			var leaked []string
			for id, stack := range interestingGoroutines() {
				if _, ok := before[id]; !ok {
					leaked = append(leaked, stack)
				}
			}
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d goroutine(s) leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func interestingGoroutines() map[string]string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "net/http.") && !strings.Contains(g, "adapters/gemini.") {
			continue
		}
		if strings.Contains(g, "interestingGoroutines") {
			continue
		}
		id, _, _ := strings.Cut(g, " [")
		out[id] = g
	}
	return out
}

// chunkedReader returns at most n bytes per Read, to move event boundaries across reads.
type chunkedReader struct {
	r io.Reader
	n int
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func ptr[T any](v T) *T { return &v }
