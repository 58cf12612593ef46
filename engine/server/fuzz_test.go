package server

import (
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/pipeline"
	"github.com/gavel-gw/gavel/engine/policy"
)

// readRequests returns the bodies under testdata/requests, keyed by file name.
func readRequests(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "requests", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no request bodies in testdata/requests")
	}
	out := make(map[string][]byte, len(paths))
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = raw
	}
	return out
}

func anonymous(t testing.TB) *auth.Caller {
	t.Helper()
	c, err := auth.New(nil, true).Authenticate("")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// FuzzChatRequest drives arbitrary bytes through the steps a request body takes before
// the policy sees it (decode, validate, features, input). A panic there would take the
// request's goroutine down with a 500 instead of a 400, so none is acceptable.
func FuzzChatRequest(f *testing.F) {
	reqs := readRequests(f)
	for _, name := range slices.Sorted(maps.Keys(reqs)) {
		raw := reqs[name]
		f.Add(raw, "")
		f.Add(raw, "a=1, b = 2,bad")
	}
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[]}]}`), "=,,=x, =y")
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]}`), "k=v=w")
	f.Add([]byte(`null`), "")
	caller := anonymous(f)

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
