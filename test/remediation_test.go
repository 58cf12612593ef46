package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// remediation is error.remediation as a client reads it.
type remediation struct {
	Models []string `json:"models"`
	Budget *struct {
		Name          string `json:"name"`
		RemainingMUSD int64  `json:"remaining_musd"`
		ResetsAt      string `json:"resets_at"`
	} `json:"budget"`
	MaxTokens   int `json:"max_tokens"`
	RetryAfterS int `json:"retry_after_s"`
}

// remediationOf reads the remediation of a denial the way an SDK user would: from the
// openai-go error's JSON.
func remediationOf(t *testing.T, err error, status int, code string) remediation {
	t.Helper()
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != status || apiErr.Code != code {
		t.Fatalf("err = %v, want %d %s", err, status, code)
	}
	var body struct {
		Remediation *remediation `json:"remediation"`
	}
	if err := json.Unmarshal([]byte(apiErr.RawJSON()), &body); err != nil || body.Remediation == nil {
		t.Fatalf("no error.remediation in %s (%v)", apiErr.RawJSON(), err)
	}
	r := *body.Remediation
	return r
}

// A request the budget cannot cover is told what is left, when the period resets and the
// max_tokens that would fit; sent again with that max_tokens it passes, with one more it
// does not.
func TestRemediationBudgetDenialSDK(t *testing.T) {
	yaml, key, _, _ := budgetSetup(t, 100, 0, "")
	g := start(t, yaml(), nil)
	c := g.client(key)
	p := userParams("solo", "hi")
	p.MaxTokens = openai.Int(1000) // 2000 µUSD of output alone: far over the 100 µUSD budget
	before := time.Now().UTC()
	_, err := c.Chat.Completions.New(context.Background(), p)
	r := remediationOf(t, err, 429, "insufficient_quota")
	after := time.Now().UTC()
	if r.Budget == nil || r.Budget.Name != "team-daily" || r.Budget.RemainingMUSD != 100 {
		t.Fatalf("remediation.budget = %+v, want team-daily with 100 µUSD left", r.Budget)
	}
	midnight := func(t time.Time) string { return t.Truncate(24 * time.Hour).Add(24 * time.Hour).Format(time.RFC3339) }
	if r.Budget.ResetsAt != midnight(before) && r.Budget.ResetsAt != midnight(after) {
		t.Errorf("resets_at %q, want the next UTC midnight %s", r.Budget.ResetsAt, midnight(after))
	}
	if r.MaxTokens <= 0 || r.MaxTokens >= 1000 {
		t.Fatalf("remediation.max_tokens = %d", r.MaxTokens)
	}
	p.MaxTokens = openai.Int(int64(r.MaxTokens + 1))
	if _, err := c.Chat.Completions.New(context.Background(), p); err == nil {
		t.Errorf("max_tokens %d (one more than the remediation's) passed", r.MaxTokens+1)
	}
	p.MaxTokens = openai.Int(int64(r.MaxTokens))
	if _, err := c.Chat.Completions.New(context.Background(), p); err != nil {
		t.Errorf("max_tokens %d from the remediation: %v", r.MaxTokens, err)
	}
}

// A silver key asking for a premium model is denied with the aliases it may use, and one
// of them works.
func TestRemediationTierDenialSDK(t *testing.T) {
	up := fakeupstream.New()
	t.Cleanup(up.Close)
	silver, silverHash, _ := auth.NewKey()
	gold, goldHash, _ := auth.NewKey()
	data := twoProviders(map[string]any{
		silverHash: map[string]any{"key_id": "k-silver", "team": "support", "tier": "silver"},
		goldHash:   map[string]any{"key_id": "k-gold", "team": "search", "tier": "gold"},
	})
	cat := data["catalog"].(map[string]any)
	cat["a/m1"].(map[string]any)["tier"] = "premium"
	data["aliases"].(map[string]any)["lite"] = map[string]any{"strategy": "ordered", "candidates": []string{"b/m1"}}
	data["routing"].(map[string]any)["tiers"] = []string{"premium", "standard"}
	data["tier_access"] = map[string]any{"silver": []string{"standard"}}
	dir := bundle(t, "tiers-1", data)
	g := start(t, fmt.Sprintf("policy: %s\nproviders:\n  - {name: a, type: openai, base_url: %q}\n  - {name: b, type: openai, base_url: %q}\n", dir, up.URL(), up.URL()), nil)

	_, err := g.client(silver).Chat.Completions.New(context.Background(), userParams("chat", "hi"))
	r := remediationOf(t, err, 403, "tier_not_allowed")
	if !slices.Equal(r.Models, []string{"lite"}) {
		t.Fatalf("remediation.models = %v, want [lite]", r.Models)
	}
	if _, err := g.client(silver).Chat.Completions.New(context.Background(), userParams(r.Models[0], "hi")); err != nil {
		t.Errorf("the remediation's model: %v", err)
	}
	if _, err := g.client(gold).Chat.Completions.New(context.Background(), userParams("chat", "hi")); err != nil {
		t.Errorf("gold may use the premium model: %v", err)
	}
}

// A rate-limited request is told when to retry, in the body and in Retry-After.
func TestRemediationRateLimitSDK(t *testing.T) {
	yaml, key, _, _ := budgetSetup(t, 1_000_000, 1, "")
	g := start(t, yaml(), nil)
	c := g.client(key)
	if _, err := c.Chat.Completions.New(context.Background(), userParams("solo", "hi")); err != nil {
		t.Fatal(err)
	}
	var resp *http.Response
	_, err := c.Chat.Completions.New(context.Background(), userParams("solo", "hi"), option.WithResponseInto(&resp))
	r := remediationOf(t, err, 429, "rate_limit_exceeded")
	if r.RetryAfterS < 1 || r.RetryAfterS > 120 || resp.Header.Get("Retry-After") != fmt.Sprint(r.RetryAfterS) {
		t.Errorf("retry_after_s %d, Retry-After %q", r.RetryAfterS, resp.Header.Get("Retry-After"))
	}
}
