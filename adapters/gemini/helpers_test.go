package gemini

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"regexp"
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

// newRecorder starts a server that remembers the last request; see adaptertest.Recorder.
func newRecorder(t *testing.T, status int, reply []byte, headers map[string]string) (*adaptertest.Recorder, *httptest.Server) {
	return adaptertest.NewRecorder(t, "application/json; charset=UTF-8", status, reply, headers)
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
