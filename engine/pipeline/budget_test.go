package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters/mock"
	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/pipeline"
	"github.com/gavel-gw/gavel/engine/tokens"
)

// serve runs one chat request for model through the whole pipeline and fails the test
// unless it succeeds.
func serve(t *testing.T, r *rig, model string) {
	t.Helper()
	x := r.p.Start(pipeline.EndpointChat)
	if err := r.p.AdmitChat(context.Background(), x, ana, chatRequest(model), ""); err != nil {
		t.Fatalf("AdmitChat: %v", err)
	}
	if _, err := r.p.Chat(context.Background(), x); err != nil {
		t.Fatalf("Chat: %v", err)
	}
	r.p.Finish(x, 200, "")
}

// A hard budget the request's estimate does not fit refuses it before anything is sent,
// naming the decision's budget and its standing; nothing is reserved for it and it takes
// no rate quota.
func TestBudgetExceeded(t *testing.T) {
	ctx := context.Background()
	req := chatRequest(goodID)
	_, amount := estimate(req, price)
	spent := cost(price, upstreamUsage(t, mock.Config{Name: "good", Reply: goodReply}, req))
	tests := []struct {
		name  string
		limit int64
		// before runs requests that leave spent or reserved behind; in flight is the
		// number it leaves admitted and unfinished.
		before   func(t *testing.T, r *rig)
		inFlight int
		// the standing the refusal reports
		spent, reserved int64
	}{
		{"one request is more than the budget", amount - 1, func(*testing.T, *rig) {}, 0, 0, 0},
		{"spent before", spent + amount - 1, func(t *testing.T, r *rig) { serve(t, r, goodID) }, 0, spent, 0},
		{"reserved by a request in flight", 2*amount - 1, func(t *testing.T, r *rig) {
			x := r.p.Start(pipeline.EndpointChat)
			if err := r.p.AdmitChat(ctx, x, ana, chatRequest(goodID), ""); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.p.Finish(x, 499, "client_closed_request") })
		}, 1, 0, amount},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, setup{budgets: []map[string]any{teamDaily(tc.limit)}, rateLimits: []map[string]any{keyRate(100, 100_000)}})
			tc.before(t, r)
			rateBefore := r.rate(t, keyLimit(100, 100_000))

			x := r.p.Start(pipeline.EndpointChat)
			err := r.p.AdmitChat(ctx, x, ana, req, "")
			var ex *pipeline.BudgetExceeded
			if !errors.As(err, &ex) {
				t.Fatalf("AdmitChat error = %v (%T), want *BudgetExceeded", err, err)
			}
			want := pipeline.BudgetExceeded{Name: "team-daily", Scope: "team", ID: "search", Period: "day",
				Limit: tc.limit, Spent: tc.spent, Reserved: tc.reserved, Amount: amount}
			got := *ex
			if next := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour); !got.ResetsAt.Equal(next) {
				t.Errorf("ResetsAt = %v, want the next UTC midnight %v", got.ResetsAt, next)
			}
			// The request sets no max_tokens, so its estimate assumes the default output.
			if got.MaxTokens <= 0 || got.MaxTokens >= tokens.DefaultMaxOutputTokens {
				t.Errorf("MaxTokens = %d, want a max_tokens below the default %d that fits", got.MaxTokens, tokens.DefaultMaxOutputTokens)
			}
			got.ResetsAt, got.MaxTokens = time.Time{}, 0
			if got != want {
				t.Errorf("refusal = %+v\n want %+v", got, want)
			}
			if ex.Remaining() != max(0, tc.limit-tc.spent-tc.reserved) {
				t.Errorf("Remaining = %d", ex.Remaining())
			}
			if d := x.Decision(); d == nil || len(d.Budgets) != 1 || d.Budgets[0].Name != "team-daily" {
				t.Errorf("decision = %+v, want the policy's budget", d)
			}
			r.p.Finish(x, 429, "insufficient_quota")

			if st := r.budget(t, teamBudget(tc.limit)); st.Spent != tc.spent || st.Reserved != tc.reserved {
				t.Errorf("budget after the refusal: spent %d, reserved %d; want %d, %d (nothing reserved for the refused request)",
					st.Spent, st.Reserved, tc.spent, tc.reserved)
			}
			if st := r.rate(t, keyLimit(100, 100_000)); st.Requests != rateBefore.Requests || st.Tokens != rateBefore.Tokens {
				t.Errorf("rate after the refusal: %d requests, %d tokens; want %d, %d as before it",
					st.Requests, st.Tokens, rateBefore.Requests, rateBefore.Tokens)
			}
		})
	}
}

// A rate limit that is full refuses the request with the limit that fired and when to
// retry; one that can never admit the request says so. Either way the budget reservation
// made just before is given back, and RateDecision reports the verdict.
func TestRateLimited(t *testing.T) {
	ctx := context.Background()
	req := chatRequest(goodID)
	estIn, _ := estimate(req, price)
	spent := cost(price, upstreamUsage(t, mock.Config{Name: "good", Reply: goodReply}, req))
	tests := []struct {
		name   string
		limits []map[string]any
		// served requests before the one that is refused
		served int
		want   pipeline.RateLimited
	}{
		{"requests per minute", []map[string]any{keyRate(1, 0)}, 1,
			pipeline.RateLimited{Scope: "key", ID: "k-ana", By: ledger.DimRequests}},
		{"the tighter of two limits", []map[string]any{keyRate(10, 0), {"scope": "team", "rpm": 2}}, 2,
			pipeline.RateLimited{Scope: "team", ID: "search", By: ledger.DimRequests}},
		{"more tokens than a minute allows", []map[string]any{keyRate(0, int64(estIn)-1)}, 0,
			pipeline.RateLimited{Scope: "key", ID: "k-ana", By: ledger.DimTokens, Unsatisfiable: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, setup{budgets: []map[string]any{teamDaily(bigLimit)}, rateLimits: tc.limits})
			for range tc.served {
				serve(t, r, goodID)
			}
			x := r.p.Start(pipeline.EndpointChat)
			err := r.p.AdmitChat(ctx, x, ana, req, "")
			var rl *pipeline.RateLimited
			if !errors.As(err, &rl) {
				t.Fatalf("AdmitChat error = %v (%T), want *RateLimited", err, err)
			}
			if rl.Scope != tc.want.Scope || rl.ID != tc.want.ID || rl.By != tc.want.By || rl.Unsatisfiable != tc.want.Unsatisfiable {
				t.Errorf("refusal = %+v, want %+v", *rl, tc.want)
			}
			if !rl.Unsatisfiable && rl.RetryAfter <= 0 {
				t.Errorf("RetryAfter = %v, want > 0", rl.RetryAfter)
			}
			rd := x.RateDecision()
			if rd == nil {
				t.Fatal("RateDecision is nil after a rate-limit refusal")
			}
			if rd.Allowed || rd.Denied.Scope != tc.want.Scope || rd.Unsatisfiable != tc.want.Unsatisfiable || len(rd.States) != len(tc.limits) {
				t.Errorf("RateDecision = %+v", *rd)
			}
			r.p.Finish(x, 429, "rate_limit_exceeded")

			if st := r.budget(t, teamBudget(bigLimit)); st.Reserved != 0 || st.Spent != int64(tc.served)*spent {
				t.Errorf("budget after the refusal: spent %d, reserved %d; want %d, 0", st.Spent, st.Reserved, int64(tc.served)*spent)
			}
			if st := r.rate(t, ledger.RateLimit{Scope: tc.want.Scope, ID: tc.want.ID}); st.Requests != int64(tc.served) {
				t.Errorf("%s rate after the refusal: %d requests, want the %d served (the refused one takes nothing)", tc.want.Scope, st.Requests, tc.served)
			}
		})
	}
}

// An admitted request's RateDecision carries the limits' standing for x-ratelimit headers.
func TestRateDecisionOfAnAdmittedRequest(t *testing.T) {
	r := newRig(t, setup{rateLimits: []map[string]any{keyRate(5, 0)}})
	x := r.p.Start(pipeline.EndpointChat)
	if err := r.p.AdmitChat(context.Background(), x, ana, chatRequest(goodID), ""); err != nil {
		t.Fatal(err)
	}
	rd := x.RateDecision()
	if rd == nil || !rd.Allowed || len(rd.States) != 1 || rd.States[0].RemainingRequests != 4 {
		t.Errorf("RateDecision = %+v, want allowed with 4 of 5 requests left", rd)
	}
	r.p.Finish(x, 499, "client_closed_request")

	// Without rate limits in the decision there is no verdict.
	r = newRig(t, setup{budgets: []map[string]any{teamDaily(bigLimit)}})
	x = r.p.Start(pipeline.EndpointChat)
	if err := r.p.AdmitChat(context.Background(), x, ana, chatRequest(goodID), ""); err != nil {
		t.Fatal(err)
	}
	if rd := x.RateDecision(); rd != nil {
		t.Errorf("RateDecision = %+v without rate limits", rd)
	}
	r.p.Finish(x, 499, "client_closed_request")
}
