package test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/gavel-gw/gavel/engine/policy"
)

// The decision log of agent traffic replays like chat's: Messages (passed through and
// translated, streamed or not), count_tokens and Responses decisions, logged by the real
// gateway, are reproduced exactly by the policy that made them, and a candidate that
// moves an alias changes exactly the decisions of that alias, whatever the endpoint.
func TestReplayReproducesAgentEndpointDecisions(t *testing.T) {
	r := newMessagesRig(t, nil)
	ctx := context.Background()
	c := r.sdk(r.key)
	if _, err := c.Messages.New(ctx, anthropic.MessageNewParams{Model: "sonnet", MaxTokens: 10, Messages: userTurn("hi")}); err != nil {
		t.Fatal(err)
	}
	streamMessage(t, c, anthropic.MessageNewParams{Model: "gpt", MaxTokens: 10, Messages: userTurn("hi")})
	if _, err := c.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: "claude-opus-5-5", Messages: userTurn("count me")}); err != nil {
		t.Fatal(err)
	}
	oc := r.g.client(r.key)
	if _, err := oc.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt", Store: openai.Bool(false),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}}); err != nil {
		t.Fatal(err)
	}
	readResponsesStream(t, oc.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: "sonnet", Store: openai.Bool(false),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}}))

	lines := waitDecisionLines(t, r.logFile, 5)
	var endpoints []string
	gptIDs := map[string]bool{}
	for _, l := range lines {
		for _, e := range []string{"messages", "count_tokens", "responses"} {
			if strings.Contains(l, `"endpoint":"`+e+`"`) {
				endpoints = append(endpoints, e)
			}
		}
		if strings.Contains(l, `"model":"gpt"`) {
			id := l[strings.Index(l, `"decision_id":"`)+len(`"decision_id":"`):]
			gptIDs[id[:strings.IndexByte(id, '"')]] = true
		}
	}
	slices.Sort(endpoints)
	if strings.Join(endpoints, ",") != "count_tokens,messages,messages,responses,responses" || len(gptIDs) != 2 {
		t.Fatalf("logged endpoints %v, gpt decisions %v:\n%s", endpoints, gptIDs, strings.Join(lines, "\n"))
	}

	replay := func(dir string) (policy.ReplaySummary, []policy.Change) {
		t.Helper()
		b, err := policy.LoadPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		rev, err := policy.Prepare(ctx, b, "candidate")
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(r.logFile)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var changes []policy.Change
		sum, err := policy.Replay(ctx, rev, f, func(ch policy.Change) { changes = append(changes, ch) })
		if err != nil {
			t.Fatal(err)
		}
		return sum, changes
	}
	if sum, changes := replay(r.bundleDir); sum.Replayed != 5 || sum.Changed != 0 || sum.Skipped != 0 {
		t.Errorf("the same policy: %+v, changes %+v", sum, changes)
	}

	// The candidate sends "gpt" to Claude.
	r.data["aliases"].(map[string]any)["gpt"] = map[string]any{"strategy": "ordered", "candidates": []string{"claude/claude-sonnet-4-5"}}
	sum, changes := replay(bundle(t, "messages-2", r.data))
	if sum.Replayed != 5 || sum.Changed != 2 {
		t.Errorf("candidate: %+v", sum)
	}
	for _, ch := range changes {
		if !gptIDs[ch.DecisionID] || ch.Old.String() != "allow a/m1" || ch.New.String() != "allow claude/claude-sonnet-4-5" {
			t.Errorf("change %s: %s -> %s", ch.DecisionID, ch.Old, ch.New)
		}
	}
}
