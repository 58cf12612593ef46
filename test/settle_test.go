package test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// settleProbe is a response writer that, when the answer's last bytes are written (a
// buffered answer's body, a stream's [DONE]), reads the caller's spend: what a crash at
// that moment would leave in the ledger.
type settleProbe struct {
	*httptest.ResponseRecorder
	last  []byte
	spend func() int64
	seen  int64 // spend when the last bytes were written; -1 until then
}

func (p *settleProbe) Write(b []byte) (int, error) {
	if p.seen < 0 && bytes.Contains(b, p.last) {
		p.seen = p.spend()
	}
	return p.ResponseRecorder.Write(b)
}

// TestSpendIsCommittedBeforeTheAnswerIsWritten: once a client can hold its answer, the
// charge is in the ledger, so a kill -9 then loses nothing.
func TestSpendIsCommittedBeforeTheAnswerIsWritten(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		last       []byte
	}{
		{"buffered", `{"model":"solo","messages":[{"role":"user","content":"hi"}]}`, []byte(`"choices"`)},
		{"stream", `{"model":"solo","stream":true,"messages":[{"role":"user","content":"hi"}]}`, []byte("[DONE]")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yaml, key, admin, _ := budgetSetup(t, 1_000_000, 0, "")
			g := start(t, yaml(), nil)
			p := &settleProbe{ResponseRecorder: httptest.NewRecorder(), last: tc.last, seen: -1,
				spend: func() int64 { return spendOf(t, g, admin) }}
			req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+key)
			g.gw.Handler().ServeHTTP(p, req)
			if p.Code != http.StatusOK || p.seen < 0 {
				t.Fatalf("status %d, last bytes seen: %v\n%s", p.Code, p.seen >= 0, p.Body)
			}
			if p.seen == 0 {
				t.Errorf("the answer was written before its charge was committed")
			}
		})
	}
}
