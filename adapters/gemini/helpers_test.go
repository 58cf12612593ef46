package gemini

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/adaptertest"
)

// fixedNow is the clock of test providers, so "created" is reproducible.
var fixedNow = time.Unix(1754300000, 0)

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

// newTestProvider is the adapter's constructor for the shared tests in adaptertest.
func newTestProvider(tb testing.TB, baseURL, apiKey string) adaptertest.Provider {
	tb.Helper()
	p, err := New(Config{Name: "test", BaseURL: baseURL, APIKey: apiKey})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// testAdapter describes the adapter to the shared tests in adaptertest, with requests
// that ask for the usage chunk or not.
func testAdapter(includeUsage bool) adaptertest.Adapter {
	return adaptertest.Adapter{New: newTestProvider, Request: func() *adapters.ChatRequest { return chatRequest(includeUsage) }}
}
