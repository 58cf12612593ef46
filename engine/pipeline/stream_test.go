package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/mock"
	"github.com/gavel-gw/gavel/engine/pipeline"
	"github.com/gavel-gw/gavel/engine/tokens"
)

func streamRequest(model string, wantUsage bool) *adapters.ChatRequest {
	req := chatRequest(model)
	req.Stream = true
	if wantUsage {
		req.StreamOptions = &adapters.StreamOptions{IncludeUsage: true}
	}
	return req
}

// text is the content a client received.
func text(chunks []*adapters.ChatChunk) string {
	var b strings.Builder
	for _, c := range chunks {
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				b.WriteString(*ch.Delta.Content)
			}
		}
	}
	return b.String()
}

// counted is the usage the pipeline counts with the real tokenizer for a stream whose
// upstream sent none: the prompt with OpenAI's message framing, and the completion.
func counted(t *testing.T, model string, req *adapters.ChatRequest, completion string) adapters.Usage {
	t.Helper()
	var c tokens.Counter
	count := func(s string) int {
		n, err := c.Count(model, s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	u := adapters.Usage{PromptTokens: 3, CompletionTokens: count(completion)}
	for _, m := range req.Messages {
		u.PromptTokens += 4 + count(m.Content.String())
	}
	return u
}

// A stream read to its end is charged from the usage chunk the upstream sent (gavel
// always asks for one), which reaches the client only when it asked for usage.
func TestStreamChargedFromItsUsage(t *testing.T) {
	for _, wantUsage := range []bool{false, true} {
		name := map[bool]string{false: "client did not ask for usage", true: "client asked for usage"}[wantUsage]
		t.Run(name, func(t *testing.T) {
			r := newRig(t, setup{budgets: []map[string]any{teamDaily(bigLimit)}, rateLimits: []map[string]any{keyRate(100, 100_000)}})
			req := streamRequest(goodID, wantUsage)
			x := r.p.Start(pipeline.EndpointChat)
			if err := r.p.AdmitChat(context.Background(), x, ana, req, ""); err != nil {
				t.Fatal(err)
			}
			if x.WantsUsage() != wantUsage {
				t.Errorf("WantsUsage = %v", x.WantsUsage())
			}
			s, err := r.p.OpenStream(context.Background(), x)
			if err != nil {
				t.Fatal(err)
			}
			chunks := drain(t, s)
			s.Close()
			if got := text(chunks); got != goodReply {
				t.Errorf("streamed %q, want %q", got, goodReply)
			}
			var sawUsage bool
			for _, c := range chunks {
				sawUsage = sawUsage || c.Usage != nil
			}
			if sawUsage != wantUsage {
				t.Errorf("client saw a usage chunk: %v, want %v", sawUsage, wantUsage)
			}
			r.p.Finish(x, 200, "")

			u := upstreamUsage(t, mock.Config{Name: "good", Reply: goodReply}, req)
			if st := r.budget(t, teamBudget(bigLimit)); st.Spent != cost(price, u) || st.Reserved != 0 {
				t.Errorf("budget after Finish: spent %d, reserved %d; want %d (%+v), 0", st.Spent, st.Reserved, cost(price, u), u)
			}
			if st := r.rate(t, keyLimit(100, 100_000)); st.Tokens != int64(u.PromptTokens+u.CompletionTokens) {
				t.Errorf("rate tokens after Finish = %d, want the usage's %d", st.Tokens, u.PromptTokens+u.CompletionTokens)
			}
			if x.Route() != goodID {
				t.Errorf("route = %q", x.Route())
			}
		})
	}
}

// A stream without usage is counted with the real tokenizer off the request's path:
// Finish returns at once, and the charge lands in the ledger shortly after. A stream the
// client leaves half-way is charged the same way for what it relayed.
func TestStreamWithoutUsageChargedFromTheTokenizer(t *testing.T) {
	tests := []struct {
		name string
		id   string
		// leaveAfter is the number of chunks the client reads before it goes; 0: to the end.
		leaveAfter int
	}{
		{"upstream sends no usage", noUsageID, 0},
		{"client leaves mid-stream", goodID, 3}, // the role chunk and two pieces of the reply
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, setup{budgets: []map[string]any{teamDaily(bigLimit)}, rateLimits: []map[string]any{keyRate(100, 100_000)}})
			req := streamRequest(tc.id, false)
			x := r.p.Start(pipeline.EndpointChat)
			if err := r.p.AdmitChat(context.Background(), x, ana, req, ""); err != nil {
				t.Fatal(err)
			}
			ctx, leave := context.WithCancel(context.Background())
			defer leave()
			s, err := r.p.OpenStream(ctx, x)
			if err != nil {
				t.Fatal(err)
			}
			var chunks []*adapters.ChatChunk
			status := 200
			if tc.leaveAfter == 0 {
				chunks = drain(t, s)
			} else {
				for len(chunks) < tc.leaveAfter {
					c, err := s.Recv()
					if err != nil {
						t.Fatalf("Recv: %v", err)
					}
					if c != nil {
						chunks = append(chunks, c)
					}
				}
				leave()
				_, err := s.Recv()
				if err == nil {
					t.Fatal("Recv succeeded after the client left")
				}
				se := s.Fail(ctx, err)
				var want *pipeline.StreamError
				if !errors.As(se, &want) || se.Timeout || !errors.Is(se, err) {
					t.Errorf("Fail = %#v, want a *StreamError wrapping %v, no timeout", se, err)
				}
				status = 499
			}
			s.Close()
			relayed := text(chunks)
			if tc.leaveAfter == 0 && relayed != goodReply || tc.leaveAfter > 0 && (relayed == "" || relayed == goodReply) {
				t.Fatalf("test setup: relayed %q", relayed)
			}
			r.p.Finish(x, status, "")

			_, model, _ := strings.Cut(tc.id, "/")
			u := counted(t, model, req, relayed)
			want := cost(price, u)
			r.waitSpent(t, teamBudget(bigLimit), want)
			eventually(t, "the counted rate tokens", func() bool {
				return r.rate(t, keyLimit(100, 100_000)).Tokens == int64(u.PromptTokens+u.CompletionTokens)
			})
		})
	}
}

// An answer without a usage block is not free: it is counted with the real tokenizer off
// the request's path, like a stream without a usage chunk.
func TestAnswerWithoutUsageChargedFromTheTokenizer(t *testing.T) {
	r := newRig(t, setup{budgets: []map[string]any{teamDaily(bigLimit)}, rateLimits: []map[string]any{keyRate(100, 100_000)}})
	req := chatRequest(noUsageID)
	x := r.p.Start(pipeline.EndpointChat)
	if err := r.p.AdmitChat(context.Background(), x, ana, req, ""); err != nil {
		t.Fatal(err)
	}
	res, err := r.p.Chat(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	if res.Usage != nil || len(res.Choices) == 0 || res.Choices[0].Message.Content.String() != goodReply {
		t.Fatalf("test setup: answer %+v", res)
	}
	r.p.Finish(x, 200, "")
	u := counted(t, "m", req, goodReply)
	r.waitSpent(t, teamBudget(bigLimit), cost(price, u))
	eventually(t, "the counted rate tokens", func() bool {
		return r.rate(t, keyLimit(100, 100_000)).Tokens == int64(u.PromptTokens+u.CompletionTokens)
	})
}
