package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/gavel-gw/gavel/engine/tokens"
)

// deniedEvent is a logged request the active policy denied (an unknown model), with the
// token estimate and max_tokens its input carries.
func deniedEvent(t *testing.T, rev *Revision, id, model string, estIn, maxOut int) string {
	t.Helper()
	providers := ast.MustParseTerm(`{"mock": {"healthy": true, "circuit": "closed", "models": {}}}`).Value
	in := &Input{Request: Request{ID: id, Endpoint: "chat", Model: model, EstInputTokens: estIn, MaxTokens: maxOut},
		Providers: providers, Caller: ast.MustParseTerm(`{"team": "t1", "key_id": "k1"}`).Value}
	plan, err := rev.Plan(context.Background(), providers)
	if err != nil {
		t.Fatal(err)
	}
	in.Plan = plan
	res, err := rev.Evaluate(context.Background(), in.Value())
	if err != nil {
		t.Fatal(err)
	}
	if d, err := ParseDecision(res); err != nil || d.Allow {
		t.Fatalf("the active policy allowed %s (%v)", model, err)
	}
	in.Plan = nil
	return fmt.Sprintf(`{"decision_id":%q,"path":"gavel/decision","input":%s,"result":%s,"custom":{"route":"none","status":404,"latency_ms":1}}`,
		id, in.Value(), res)
}

// Newly allowed requests logged no usage (they were denied): those whose input carries a
// token estimate are priced at what gavel would reserve for them under the candidate
// (the estimate, and max_tokens or the default of output, at the candidate's price);
// the others stay unpriced.
func TestImpactPricesNewlyAllowedFromEstimates(t *testing.T) {
	ctx := context.Background()
	b, err := LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	old, err := Prepare(ctx, b, "embedded")
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := LoadEmbedded()
	cb.Manifest.Revision = "candidate"
	cb.Data["gavel"].(map[string]any)["aliases"].(map[string]any)["newname"] = map[string]any{"strategy": "ordered", "candidates": []any{"mock/mock-large"}}
	// The candidate's catalog prices it: the estimate is priced at the candidate's price.
	cb.Data["gavel"].(map[string]any)["catalog"].(map[string]any)["mock/mock-large"].(map[string]any)["price"] = map[string]any{
		"input_musd_per_mtok": 2000000, "output_musd_per_mtok": 8000000}
	cand, err := Prepare(ctx, cb, "candidate")
	if err != nil {
		t.Fatal(err)
	}
	log := strings.Join([]string{
		deniedEvent(t, old, "e1", "newname", 1000, 200),
		deniedEvent(t, old, "e2", "newname", 3000, 0), // no max_tokens: the default output
		deniedEvent(t, old, "e3", "newname", 0, 0),    // no estimate logged
		deniedEvent(t, old, "e4", "still-unknown", 500, 10),
	}, "\n")
	im, err := ComputeImpact(ctx, cand, strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	price := cand.Data.Price("mock/mock-large")
	if price == (tokens.Price{}) {
		t.Fatal("mock/mock-large has no price in the default catalog: the test would prove nothing")
	}
	want := tokens.Cost(price, 1000, 0, 200) + tokens.Cost(price, 3000, 0, tokens.DefaultMaxOutputTokens)
	if im.NewlyAllowed != 3 || im.Estimated != 2 || im.Unpriced != 1 || im.SpendEstimatedMUSD != want || im.SpendAfterMUSD != want || im.SpendBeforeMUSD != 0 {
		t.Errorf("newly allowed %d, estimated %d (%d musd), unpriced %d, spend %d -> %d; want 3, 2 (%d), 1, 0 -> %d",
			im.NewlyAllowed, im.Estimated, im.SpendEstimatedMUSD, im.Unpriced, im.SpendBeforeMUSD, im.SpendAfterMUSD, want, want)
	}
	if g := im.Groups["team"]; len(g) != 1 || g[0].SpendAfterMUSD != want || g[0].NewlyAllowed != 3 {
		t.Errorf("team groups %+v", g)
	}
	if s := im.Summary(); !strings.Contains(s, "estimated for 2 newly allowed") || !strings.Contains(s, "1 newly allowed requests not priced") {
		t.Errorf("summary %q", s)
	}
}
