package adapters

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestSetsAsksOnlyForNonDefaultValues(t *testing.T) {
	for _, tc := range []struct {
		body string
		want []string
	}{
		{`{"n":1,"logprobs":false,"presence_penalty":0,"response_format":{"type":"text"},"parallel_tool_calls":true,"service_tier":"auto","store":false}`, nil},
		{`{"n":2,"logprobs":true,"top_logprobs":3,"seed":0,"frequency_penalty":0.1,"logit_bias":{"1":-100},"response_format":{"type":"json_object"},` +
			`"reasoning_effort":"low","metadata":{"a":"b"},"user":"u","store":true,"service_tier":"flex"}`,
			[]string{"frequency_penalty", "logit_bias", "logprobs", "metadata", "n", "reasoning_effort", "response_format", "seed", "service_tier", "store", "top_logprobs", "user"}},
		{`{"parallel_tool_calls":false}`, nil}, // without tools it asks nothing
		{`{"parallel_tool_calls":false,"tools":[{"type":"function","function":{"name":"f"}}]}`, []string{"parallel_tool_calls"}},
		{`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"auto"}}]}]}`, nil},
		{`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"high"}}]}]}`, []string{ImageDetailField}},
	} {
		var r ChatRequest
		if err := DecodeChatRequest([]byte(tc.body), &r); err != nil {
			t.Fatal(err)
		}
		all := []string{"frequency_penalty", "logit_bias", "logprobs", "metadata", "n", "parallel_tool_calls", "presence_penalty",
			"reasoning_effort", "response_format", "seed", "service_tier", "store", "top_logprobs", "user", ImageDetailField}
		if got := r.SetFields(all...); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Sets %q, want %q", tc.body, got, tc.want)
		}
		// WithoutFields clears every one, and the request is left as it was.
		before, _ := json.Marshal(&r)
		w := r.WithoutFields(all)
		if left := w.SetFields(all...); left != nil {
			t.Errorf("%s: WithoutFields left %q", tc.body, left)
		}
		if after, _ := json.Marshal(&r); string(after) != string(before) {
			t.Errorf("%s: WithoutFields changed the request:\n%s\n%s", tc.body, before, after)
		}
	}
}

func TestResponseFormatType(t *testing.T) {
	for raw, want := range map[string]string{
		``: "", `null`: "", `{"type":"text"}`: "", `{"type":"json_object"}`: "json_object",
		`{"json_schema":{"type":"x"},"type":"json_schema"}`: "json_schema", `{}`: "invalid", `"json"`: "invalid",
	} {
		if got := ResponseFormatType([]byte(raw)); got != want {
			t.Errorf("%s: %q, want %q", raw, got, want)
		}
	}
}
