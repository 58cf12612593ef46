package policy

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The hand-written encoder must say exactly what OPA's own conversion of the input says.
func TestRequestAppendJSONMatchesTheInput(t *testing.T) {
	for _, r := range []Request{
		{ID: "x", Endpoint: "chat", Model: "smart", Messages: []Message{{Role: "user", Text: "hi \"there\"\n\t<b>&\x01 é 日本 \u2028"}},
			HasTools: true, MaxTokens: 5, EstInputTokens: 9, Metadata: map[string]string{"a": "1", "b\"": "2"}, Bucket: 42, Sample: 7,
			Temperature: ptr(0.25), Seed: ptr(int64(1234567890123)), N: 3, Turns: 1,
			Fields: []string{"messages", "messages[].content[].cache_control", "model", "top_k", "we\"ird"}},
		{ID: "y", Endpoint: "embeddings", Model: "m", Messages: []Message{{Role: "user", Text: string([]byte{0xff, 'a'})}}},
		{Temperature: ptr(0.0), Seed: ptr(int64(-4))},
		{Temperature: ptr(1.0), Seed: ptr(int64(7)), Turns: 600, N: 513},
		{},
	} {
		got := map[string]any{}
		if err := json.Unmarshal(r.AppendJSON(nil, false), &got); err != nil {
			t.Fatalf("%+v: invalid JSON: %v", r, err)
		}
		in := Input{Request: r}
		want, _ := ast.JSON(in.Value().(ast.Object).Get(ast.StringTerm("request")).Value)
		wb, _ := json.Marshal(want)
		var w map[string]any
		json.Unmarshal(wb, &w)
		if r.ID == "y" {
			w["messages"].([]any)[0].(map[string]any)["text"] = "\ufffda" // OPA keeps the invalid byte; JSON cannot
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("AppendJSON = %v\nOPA says    %v", got, w)
		}
	}
}

func FuzzRequestAppendJSON(f *testing.F) {
	f.Add("hello", "k", "v")
	f.Add("\x00\xff\u2028\"\\", "<", ">")
	f.Fuzz(func(t *testing.T, text, k, v string) {
		r := Request{Messages: []Message{{Role: "user", Text: text}}, Metadata: map[string]string{k: v}}
		for _, mask := range []bool{false, true} {
			if !json.Valid(r.AppendJSON(nil, mask)) {
				t.Fatalf("invalid JSON for %q", text)
			}
		}
	})
}

func ptr[T any](v T) *T { return &v }
