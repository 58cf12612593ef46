package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// event is a decision-log line as the logger writes it: input without plan, the result.
func event(t *testing.T, rev *Revision, id, model string) string {
	t.Helper()
	providers := ast.MustParseTerm(`{"mock": {"healthy": true, "circuit": "closed", "models": {}}}`).Value
	in := &Input{Request: Request{ID: id, Endpoint: "chat", Model: model}, Providers: providers, Caller: ast.NewObject()}
	plan, err := rev.Plan(context.Background(), providers)
	if err != nil {
		t.Fatal(err)
	}
	in.Plan = plan
	res, err := rev.Evaluate(context.Background(), in.Value())
	if err != nil {
		t.Fatal(err)
	}
	in.Plan = nil
	return fmt.Sprintf(`{"decision_id":%q,"path":"gavel/decision","input":%s,"result":%s,"bundles":{"gavel":{"revision":%q}}}`,
		id, in.Value(), res, rev.ID)
}

func TestReplay(t *testing.T) {
	ctx := context.Background()
	b, err := LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	old, err := Prepare(ctx, b, "embedded")
	if err != nil {
		t.Fatal(err)
	}
	// The candidate sends alias "fast" to the large mock model instead.
	cb, _ := LoadEmbedded()
	cb.Manifest.Revision = "candidate"
	cb.Data["gavel"].(map[string]any)["aliases"].(map[string]any)["fast"] = map[string]any{"strategy": "ordered", "candidates": []any{"mock/mock-large"}}
	cand, err := Prepare(ctx, cb, "candidate")
	if err != nil {
		t.Fatal(err)
	}
	log := strings.Join([]string{
		event(t, old, "d-fast-1", "fast"),
		event(t, old, "d-smart", "smart"),
		`{"decision_id":"d-no-policy","input":null,"result":null}`,
		"",
		// A canary disagreement is not a decision: passed over, not even counted skipped.
		`{"decision_id":"d-smart-canary","path":"gavel/canary","result":{"allow":false},"custom":{"kind":"canary","decision_id":"d-smart"}}`,
		event(t, old, "d-unknown", "no-such-model"),
		event(t, old, "d-fast-2", "fast"),
	}, "\n") // no newline after the last event: still read

	tests := []struct {
		name    string
		rev     *Revision
		changed []string
		sum     ReplaySummary
	}{
		{"candidate changes the fast alias only", cand, []string{"d-fast-1", "d-fast-2"}, ReplaySummary{Replayed: 4, Changed: 2, Unchanged: 2, Skipped: 1}},
		{"same policy changes nothing", old, nil, ReplaySummary{Replayed: 4, Unchanged: 4, Skipped: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			sum, err := Replay(ctx, tc.rev, strings.NewReader(log), func(c Change) {
				got = append(got, c.DecisionID)
				if !c.Old.Allow || !c.New.Allow || c.Old.Targets[0] == c.New.Targets[0] || c.New.Targets[0] != "mock/mock-large" {
					t.Errorf("change %s: %s → %s", c.DecisionID, c.Old, c.New)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.changed) || sum != tc.sum {
				t.Errorf("changed %v %+v, want %v %+v", got, sum, tc.changed, tc.sum)
			}
		})
	}
}

func TestReplayBadLog(t *testing.T) {
	b, _ := LoadEmbedded()
	rev, err := Prepare(context.Background(), b, "embedded")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"{not json\n", "[1,2]\n"} {
		if _, err := Replay(context.Background(), rev, strings.NewReader(bad), nil); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("Replay(%q) = %v, want an error naming line 1", bad, err)
		}
	}
}
