package server

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/internal/reqtest"
	"github.com/gavel-gw/gavel/engine/pipeline"
	"github.com/gavel-gw/gavel/engine/policy"
)

// FuzzChatRequest drives arbitrary bytes through the steps a request body takes before
// the policy sees it (decode, validate, features, input). A panic there would take the
// request's goroutine down with a 500 instead of a 400, so none is acceptable.
func FuzzChatRequest(f *testing.F) {
	reqs := reqtest.Bodies(f)
	for _, name := range slices.Sorted(maps.Keys(reqs)) {
		raw := reqs[name]
		f.Add(raw, "")
		f.Add(raw, "a=1, b = 2,bad")
	}
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[]}]}`), "=,,=x, =y")
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]}`), "k=v=w")
	f.Add([]byte(`null`), "")
	caller := reqtest.Anonymous(f)

	f.Fuzz(func(t *testing.T, body []byte, tags string) {
		req := &adapters.ChatRequest{}
		if err := json.Unmarshal(body, req); err != nil {
			return // decode answers invalid_json
		}
		if e := validate(req); e != nil {
			if e.Status != http.StatusBadRequest || e.Code == "" || e.Type != "invalid_request_error" {
				t.Fatalf("validate returned a malformed error: %+v", e)
			}
			return
		}
		feat := pipeline.ChatFeatures("id", req, tags, caller)
		if feat.Bucket < 0 || feat.Bucket > 9999 {
			t.Fatalf("bucket = %d, outside 0..9999", feat.Bucket)
		}
		if framing := 4*len(req.Messages) + 3; feat.EstInputTokens < framing {
			t.Fatalf("est_input_tokens = %d, below the framing alone (%d)", feat.EstInputTokens, framing)
		}
		if len(feat.Messages) != len(req.Messages) || feat.HasTools != (len(req.Tools) > 0) {
			t.Fatalf("features lost messages or tools: %+v", feat)
		}
		v := (&policy.Input{Request: feat}).Value()
		obj, ok := v.(ast.Object)
		if !ok || obj.Get(ast.StringTerm("request")) == nil {
			t.Fatalf("input is not an object with a request: %v", v)
		}
	})
}
