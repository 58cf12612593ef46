package anthropic

import (
	"slices"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
)

func decodeReq(t *testing.T, body string) *adapters.ChatRequest {
	t.Helper()
	var r adapters.ChatRequest
	if err := adapters.DecodeChatRequest([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func TestUnsupportedTypedFields(t *testing.T) {
	const user = `"messages":[{"role":"user","content":"hi"}]`
	for _, tc := range []struct {
		body string
		want []string
	}{
		{`{` + user + `,"user":"u","reasoning_effort":"low","parallel_tool_calls":false,"n":1,"response_format":{"type":"text"}}`, nil},
		{`{` + user + `,"seed":1,"logprobs":true,"store":true,"response_format":{"type":"json_object"},"n":2,"verbosity":"low"}`,
			[]string{"logprobs", "n", "response_format", "seed", "store", "verbosity"}},
		// A tool-use cycle of the current turn cannot carry extended thinking.
		{`{"messages":[{"role":"user","content":"t?"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},` +
			`{"role":"tool","tool_call_id":"c1","content":"9"}],"reasoning_effort":"low"}`, []string{"reasoning_effort"}},
		{`{"messages":[{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},` +
			`{"role":"tool","tool_call_id":"c1","content":"9"},{"role":"user","content":"next"}],"reasoning_effort":"low"}`, nil},
	} {
		if got := unsupported(decodeReq(t, tc.body)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.body, got, tc.want)
		}
	}
}

func TestThinkingConfig(t *testing.T) {
	const user = `"messages":[{"role":"user","content":"hi"}]`
	for _, tc := range []struct {
		body              string
		budget, maxTokens int
		err               string
	}{
		{body: `{` + user + `,"reasoning_effort":"minimal","max_tokens":4000}`, budget: 1024, maxTokens: 4000},
		{body: `{` + user + `,"reasoning_effort":"medium","max_completion_tokens":100}`, budget: 8192, maxTokens: 8292},
		{body: `{` + user + `,"reasoning_effort":"none"}`, maxTokens: 4096},
		{body: `{` + user + `,"reasoning_effort":"high","temperature":1}`, budget: 16384, maxTokens: 16384 + 4096},
		{body: `{` + user + `,"reasoning_effort":"high","temperature":0.2}`, err: "temperature"},
		{body: `{` + user + `,"reasoning_effort":"high","top_k":5}`, err: "top_k"},
		{body: `{` + user + `,"reasoning_effort":"high","top_p":0.5}`, err: "top_p"},
		{body: `{` + user + `,"reasoning_effort":"extreme"}`, err: "not one of"},
		{body: `{` + user + `,"reasoning_effort":"low","tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required"}`, err: "forced tool_choice"},
	} {
		out, err := translateRequest(decodeReq(t, tc.body), 4096, false)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want one saying %q", tc.body, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		budget := 0
		if out.Thinking != nil {
			budget = out.Thinking.BudgetTokens
		}
		if budget != tc.budget || out.MaxTokens != tc.maxTokens || (budget > 0 && out.Temperature != nil) {
			t.Errorf("%s: budget %d, max_tokens %d, temperature %v; want %d, %d", tc.body, budget, out.MaxTokens, out.Temperature, tc.budget, tc.maxTokens)
		}
	}
}
