package decisionlog

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// A canary disagreement is its own event beside the request's: both results, the kinds,
// both revisions, and mask rules under /result erase from both results.
func TestCanaryEvent(t *testing.T) {
	active := ast.MustParseTerm(`{"allow": true, "targets": [{"provider": "a", "model": "m"}], "labels": {"team": "x"}}`).Value
	cand := ast.MustParseTerm(`{"allow": true, "targets": [{"provider": "b", "model": "m"}], "labels": {"team": "x"}}`).Value
	for _, tc := range []struct {
		name       string
		mask       []string
		c          Canary
		wantResult any
		wantActive any
		wantErased []any
	}{
		{name: "both results", c: Canary{Candidate: cand, Kinds: []string{"targets"}},
			wantResult: map[string]any{"allow": true, "targets": []any{map[string]any{"provider": "b", "model": "m"}}, "labels": map[string]any{"team": "x"}},
			wantActive: map[string]any{"allow": true, "targets": []any{map[string]any{"provider": "a", "model": "m"}}, "labels": map[string]any{"team": "x"}}},
		{name: "masked labels", mask: []string{"/result/labels", "/input/caller"}, c: Canary{Candidate: cand, Kinds: []string{"targets"}},
			wantResult: map[string]any{"allow": true, "targets": []any{map[string]any{"provider": "b", "model": "m"}}},
			wantActive: map[string]any{"allow": true, "targets": []any{map[string]any{"provider": "a", "model": "m"}}},
			wantErased: []any{"/result/labels"}},
		{name: "candidate failed", c: Canary{Error: "policy evaluation: boom", Kinds: []string{"error"}},
			wantActive: map[string]any{"allow": true, "targets": []any{map[string]any{"provider": "a", "model": "m"}}, "labels": map[string]any{"team": "x"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New(Config{Mask: tc.mask, Labels: map[string]string{"id": "gw1"}})
			c := tc.c
			c.DecisionID, c.Time, c.ActiveRevision, c.CandidateRevision, c.Active = "abc", time.Unix(5, 0), "r1", "r2", active
			if !l.LogCanary(c) {
				t.Fatal("dropped")
			}
			l.Close(context.Background())
			if _, ok := l.Get("abc"); ok {
				t.Error("the canary event took the request's own id")
			}
			raw, ok := l.Get("abc-canary")
			if !ok {
				t.Fatal("canary event missing")
			}
			var ev map[string]any
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatalf("%v: %s", err, raw)
			}
			custom, _ := ev["custom"].(map[string]any)
			checks := map[string][2]any{
				"path":             {ev["path"], CanaryPath},
				"revision":         {ev["bundles"], map[string]any{"gavel": map[string]any{"revision": "r2"}}},
				"kind":             {custom["kind"], "canary"},
				"decision_id":      {custom["decision_id"], "abc"},
				"active_revision":  {custom["active_revision"], "r1"},
				"result":           {ev["result"], tc.wantResult},
				"active_result":    {custom["active_result"], tc.wantActive},
				"labels":           {ev["labels"], map[string]any{"id": "gw1"}},
				"erased":           {ev["erased"], orNil(tc.wantErased)},
				"timestamp":        {ev["timestamp"], "1970-01-01T00:00:05Z"},
				"disagreements[0]": {custom["disagreements"].([]any)[0], tc.c.Kinds[0]},
				"error":            {custom["error"], map[bool]any{true: tc.c.Error, false: nil}[tc.c.Error != ""]},
			}
			for name, c := range checks {
				if !reflect.DeepEqual(c[0], c[1]) {
					t.Errorf("%s = %#v, want %#v\n%s", name, c[0], c[1], raw)
				}
			}
		})
	}
}

func orNil(s []any) any {
	if s == nil {
		return nil
	}
	return s
}
