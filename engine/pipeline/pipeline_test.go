package pipeline_test

import (
	"context"
	"errors"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/mock"
	"github.com/gavel-gw/gavel/engine/executor"
	"github.com/gavel-gw/gavel/engine/pipeline"
	"github.com/gavel-gw/gavel/engine/tokens"
)

const bigLimit = 1_000_000 // µUSD: a budget no test request comes near

// A request that succeeds reserves its estimate while it runs and, once finished, has
// spent exactly its usage at the catalog price, with nothing left reserved and the rate
// limit's tokens corrected from the estimate to the usage.
func TestFinishCommitsTheCostOfTheUsage(t *testing.T) {
	ctx := context.Background()
	goodMock := mock.Config{Name: "good", Reply: goodReply}
	tests := []struct {
		name string
		// run admits and executes; it returns the usage the upstream reported and the
		// token estimate and reservation the admission was expected to make.
		run func(t *testing.T, r *rig, x *pipeline.Exchange) (u adapters.Usage, estIn int, amount int64)
	}{
		{"chat", func(t *testing.T, r *rig, x *pipeline.Exchange) (adapters.Usage, int, int64) {
			req := chatRequest(goodID)
			if err := r.p.AdmitChat(ctx, x, ana, req, ""); err != nil {
				t.Fatal(err)
			}
			estIn, amount := estimate(req, price)
			checkHeld(t, r, amount, estIn)
			resp, err := r.p.Chat(ctx, x)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Choices[0].Message.Content.String(); got != goodReply {
				t.Errorf("reply = %q", got)
			}
			return upstreamUsage(t, goodMock, req), estIn, amount
		}},
		{"chat with max_tokens", func(t *testing.T, r *rig, x *pipeline.Exchange) (adapters.Usage, int, int64) {
			req := chatRequest(goodID)
			req.MaxTokens = new(int)
			*req.MaxTokens = 5 // the mock cuts its reply to 20 bytes
			if err := r.p.AdmitChat(ctx, x, ana, req, ""); err != nil {
				t.Fatal(err)
			}
			estIn, amount := estimate(req, price)
			if want := tokens.Cost(price, estIn, 0, 5); amount != want {
				t.Fatalf("test setup: estimate %d, want %d", amount, want)
			}
			checkHeld(t, r, amount, estIn)
			if _, err := r.p.Chat(ctx, x); err != nil {
				t.Fatal(err)
			}
			return upstreamUsage(t, goodMock, req), estIn, amount
		}},
		{"streaming client served buffered", func(t *testing.T, r *rig, x *pipeline.Exchange) (adapters.Usage, int, int64) {
			req := chatRequest(goodID)
			req.Stream = true
			if err := r.p.AdmitChat(ctx, x, ana, req, ""); err != nil {
				t.Fatal(err)
			}
			estIn, amount := estimate(req, price)
			checkHeld(t, r, amount, estIn)
			if _, err := r.p.Chat(ctx, x); err != nil {
				t.Fatal(err)
			}
			return upstreamUsage(t, goodMock, req), estIn, amount
		}},
		{"embeddings", func(t *testing.T, r *rig, x *pipeline.Exchange) (adapters.Usage, int, int64) {
			req := &adapters.EmbeddingRequest{Model: embedID, Input: adapters.TextInput("forty-two", "the answer to everything")}
			if err := r.p.AdmitEmbedding(ctx, x, ana, req, ""); err != nil {
				t.Fatal(err)
			}
			f := pipeline.EmbeddingFeatures("id", req, "", ana)
			amount := tokens.EstimateCost(price, f.EstInputTokens, 0)
			checkHeld(t, r, amount, f.EstInputTokens)
			resp, err := r.p.Embed(ctx, x)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Data) != 2 {
				t.Errorf("%d vectors for 2 inputs", len(resp.Data))
			}
			want, err := newMock(t, goodMock).Embed(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			return adapters.Usage{PromptTokens: want.Usage.PromptTokens, TotalTokens: want.Usage.TotalTokens}, f.EstInputTokens, amount
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, setup{budgets: []map[string]any{teamDaily(bigLimit)}, rateLimits: []map[string]any{keyRate(100, 100_000)}})
			x := r.p.Start(pipeline.EndpointChat)
			u, _, _ := tc.run(t, r, x)
			r.p.Finish(x, 200, "")

			want := cost(price, u)
			if want <= 0 {
				t.Fatalf("test setup: usage %+v costs nothing", u)
			}
			if st := r.budget(t, teamBudget(bigLimit)); st.Spent != want || st.Reserved != 0 {
				t.Errorf("budget after Finish: spent %d, reserved %d; want spent %d (%+v at %+v), reserved 0", st.Spent, st.Reserved, want, u, price)
			}
			if st := r.rate(t, keyLimit(100, 100_000)); st.Requests != 1 || st.Tokens != int64(u.PromptTokens+u.CompletionTokens) {
				t.Errorf("rate after Finish: %d requests, %d tokens; want 1 and the usage's %d", st.Requests, st.Tokens, u.PromptTokens+u.CompletionTokens)
			}
			if x.Route() != "good/m" && x.Route() != "good/e" {
				t.Errorf("route = %q", x.Route())
			}
		})
	}
}

// checkHeld asserts what an admitted request holds in the ledger before it runs: its
// estimated cost reserved, one request and its estimated tokens taken.
func checkHeld(t *testing.T, r *rig, amount int64, estIn int) {
	t.Helper()
	if st := r.budget(t, teamBudget(bigLimit)); st.Reserved != amount || st.Spent != 0 {
		t.Errorf("budget after admission: reserved %d, spent %d; want reserved %d, spent 0", st.Reserved, st.Spent, amount)
	}
	if st := r.rate(t, keyLimit(100, 100_000)); st.Requests != 1 || st.Tokens != int64(estIn) {
		t.Errorf("rate after admission: %d requests, %d tokens; want 1 and %d", st.Requests, st.Tokens, estIn)
	}
}

// A request no target answers, or that the client gives up on, spends nothing: its
// reservation is released and the estimated tokens are given back to the rate limit (the
// request itself still counts).
func TestFinishWithoutAnAnswerSpendsNothing(t *testing.T) {
	tests := []struct {
		name string
		id   string
		// exec runs the admitted request and checks how it failed.
		exec func(t *testing.T, r *rig, x *pipeline.Exchange)
		// status and code are what the client would have been told.
		status int
		code   string
	}{
		{"every target fails", badID, func(t *testing.T, r *rig, x *pipeline.Exchange) {
			_, err := r.p.Chat(context.Background(), x)
			var failed *executor.FailedError
			if !errors.As(err, &failed) {
				t.Fatalf("Chat error = %v (%T), want *executor.FailedError", err, err)
			}
			if len(failed.Tried) != 2 || failed.Tried[0].Target.String() != badID || failed.Tried[1].Target.String() != bad2ID {
				t.Errorf("tried %v, want %s then %s", failed, badID, bad2ID)
			}
		}, 502, "upstream_error"},
		{"every target fails to open a stream", badID, func(t *testing.T, r *rig, x *pipeline.Exchange) {
			_, err := r.p.OpenStream(context.Background(), x)
			var failed *executor.FailedError
			if !errors.As(err, &failed) || len(failed.Tried) != 2 {
				t.Fatalf("OpenStream error = %v, want *executor.FailedError over both targets", err)
			}
		}, 502, "upstream_error"},
		{"client cancels during Chat", slowID, func(t *testing.T, r *rig, x *pipeline.Exchange) {
			ctx, cancel := r.p.Context(context.Background(), x)
			defer cancel()
			client, leave := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				_, err := r.p.Chat(client, x)
				done <- err
			}()
			<-r.slow.started // the upstream call is in flight
			leave()
			if err := <-done; err == nil {
				t.Fatal("Chat succeeded after the client left")
			}
		}, 499, "client_closed_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, setup{budgets: []map[string]any{teamDaily(bigLimit)}, rateLimits: []map[string]any{keyRate(100, 100_000)}})
			req := chatRequest(tc.id)
			x := r.p.Start(pipeline.EndpointChat)
			if err := r.p.AdmitChat(context.Background(), x, ana, req, ""); err != nil {
				t.Fatal(err)
			}
			estIn, amount := estimate(req, price)
			checkHeld(t, r, amount, estIn)
			tc.exec(t, r, x)
			// The reservation is held until Finish, whatever happened upstream.
			if st := r.budget(t, teamBudget(bigLimit)); st.Reserved != amount {
				t.Errorf("reserved %d before Finish, want %d", st.Reserved, amount)
			}
			r.p.Finish(x, tc.status, tc.code)

			if st := r.budget(t, teamBudget(bigLimit)); st.Spent != 0 || st.Reserved != 0 {
				t.Errorf("budget after Finish: spent %d, reserved %d; want 0, 0", st.Spent, st.Reserved)
			}
			if st := r.rate(t, keyLimit(100, 100_000)); st.Requests != 1 || st.Tokens != 0 {
				t.Errorf("rate after Finish: %d requests, %d tokens; want 1 request and the tokens given back", st.Requests, st.Tokens)
			}
			if x.Route() != "none" {
				t.Errorf("route = %q, want none", x.Route())
			}
		})
	}
}

// Refusals before anything is sent: no bundle, a ledger the decision needs but gavel lacks,
// the policy's own denial. None of them touches a budget or the rate quota.
func TestAdmissionRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("no bundle", func(t *testing.T) {
		r := newRig(t, setup{noBundle: true, budgets: []map[string]any{teamDaily(bigLimit)}})
		x := r.p.Start(pipeline.EndpointChat)
		err := r.p.AdmitChat(ctx, x, ana, chatRequest(goodID), "")
		if !errors.Is(err, pipeline.ErrNoBundle) {
			t.Fatalf("AdmitChat error = %v, want ErrNoBundle", err)
		}
		if x.Revision() != nil || x.Decision() != nil {
			t.Errorf("revision %v, decision %v without a bundle", x.Revision(), x.Decision())
		}
		r.p.Finish(x, 503, "no_policy")
		if st := r.budget(t, teamBudget(bigLimit)); st.Spent != 0 || st.Reserved != 0 {
			t.Errorf("budget: %+v", st)
		}
	})
	t.Run("no bundle, embeddings", func(t *testing.T) {
		r := newRig(t, setup{noBundle: true})
		x := r.p.Start(pipeline.EndpointEmbeddings)
		err := r.p.AdmitEmbedding(ctx, x, ana, &adapters.EmbeddingRequest{Model: embedID, Input: adapters.TextInput("x")}, "")
		if !errors.Is(err, pipeline.ErrNoBundle) {
			t.Fatalf("AdmitEmbedding error = %v, want ErrNoBundle", err)
		}
		r.p.Finish(x, 503, "no_policy")
	})
	for _, tc := range []struct {
		name  string
		setup setup
	}{
		{"budgets without a ledger", setup{noLedger: true, budgets: []map[string]any{teamDaily(bigLimit)}}},
		{"rate limits without a ledger", setup{noLedger: true, rateLimits: []map[string]any{keyRate(10, 0)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.setup)
			x := r.p.Start(pipeline.EndpointChat)
			err := r.p.AdmitChat(ctx, x, ana, chatRequest(goodID), "")
			var pe *pipeline.PolicyError
			if !errors.As(err, &pe) || !errors.Is(err, pipeline.ErrNoLedger) {
				t.Fatalf("AdmitChat error = %v (%T), want *PolicyError wrapping ErrNoLedger", err, err)
			}
			if d := x.Decision(); d == nil || !d.Allow {
				t.Errorf("decision = %+v, want the policy's allow", d)
			}
			r.p.Finish(x, 500, "policy_error")
		})
	}
	t.Run("no ledger and nothing to enforce", func(t *testing.T) {
		r := newRig(t, setup{noLedger: true})
		x := r.p.Start(pipeline.EndpointChat)
		if err := r.p.AdmitChat(ctx, x, ana, chatRequest(goodID), ""); err != nil {
			t.Fatalf("AdmitChat: %v", err)
		}
		if _, err := r.p.Chat(ctx, x); err != nil {
			t.Fatal(err)
		}
		r.p.Finish(x, 200, "")
	})
	t.Run("denied by the policy", func(t *testing.T) {
		r := newRig(t, setup{budgets: []map[string]any{teamDaily(bigLimit)}, rateLimits: []map[string]any{keyRate(100, 0)}})
		x := r.p.Start(pipeline.EndpointChat)
		err := r.p.AdmitChat(ctx, x, ana, chatRequest(goodID), "team=search, deny=yes")
		var denied *pipeline.Denied
		if !errors.As(err, &denied) {
			t.Fatalf("AdmitChat error = %v (%T), want *Denied", err, err)
		}
		if d := denied.Deny; d.Status != 451 || d.Code != "test_denied" || d.Message != "The test policy denies this request." {
			t.Errorf("deny = %+v, want the policy's 451 test_denied", d)
		}
		if d := x.Decision(); d == nil || d.Allow || len(d.Reasons) != 1 || d.Reasons[0] != "test.deny" {
			t.Errorf("decision = %+v", d)
		}
		r.p.Finish(x, 451, "test_denied")
		if st := r.budget(t, teamBudget(bigLimit)); st.Reserved != 0 || st.Spent != 0 {
			t.Errorf("a denied request touched the budget: %+v", st)
		}
		if st := r.rate(t, keyLimit(100, 0)); st.Requests != 0 {
			t.Errorf("a denied request took rate quota: %+v", st)
		}
	})
	t.Run("unknown model: the policy's default denial", func(t *testing.T) {
		r := newRig(t, setup{})
		x := r.p.Start(pipeline.EndpointChat)
		err := r.p.AdmitChat(ctx, x, ana, chatRequest("nope/m"), "")
		var denied *pipeline.Denied
		if !errors.As(err, &denied) || denied.Deny.Status != 404 || denied.Deny.Code != "model_not_found" {
			t.Fatalf("AdmitChat error = %v, want *Denied 404 model_not_found", err)
		}
		r.p.Finish(x, 404, "model_not_found")
	})
}
