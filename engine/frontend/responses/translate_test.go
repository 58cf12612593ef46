package responses

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or writes it there under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (-update rewrites it):\n got: %s\nwant: %s", name, got, want)
	}
}

func readRequest(t *testing.T, name string) *Request {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	r := &Request{}
	if err := json.Unmarshal(b, r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestToChatGolden translates whole requests into the chat request every adapter serves.
func TestToChatGolden(t *testing.T) {
	for _, name := range []string{"request_agent", "request_string"} {
		t.Run(name, func(t *testing.T) {
			r := readRequest(t, name+".json")
			if e := Validate(r); e != nil {
				t.Fatal(e)
			}
			c, e := ToChat(r, nil)
			if e != nil {
				t.Fatal(e)
			}
			b, _ := json.MarshalIndent(c, "", "  ")
			golden(t, name+".chat.json", append(b, '\n'))
		})
	}
}

func TestToChatMergesCallsAndDropsReasoning(t *testing.T) {
	r := readRequest(t, "request_agent.json")
	c, _ := ToChat(r, nil)
	roles := make([]string, len(c.Messages))
	for i, m := range c.Messages {
		roles[i] = m.Role
	}
	// system (instructions), developer, user, assistant text + its two calls, two tool results, user.
	if got := strings.Join(roles, ","); got != "system,developer,user,assistant,tool,tool,user" {
		t.Fatalf("roles %s", got)
	}
	if a := c.Messages[3]; a.Content.String() != "Running ls." || len(a.ToolCalls) != 2 || a.ToolCalls[1].ID != "call_2" {
		t.Errorf("assistant %+v", a)
	}
	if !c.Messages[2].Content.HasImages() || c.StreamOptions == nil || !c.StreamOptions.IncludeUsage {
		t.Errorf("image or usage lost: %+v", c)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		body, param, code string
	}{
		{`{"input":"x"}`, "model", "missing_required_parameter"},
		{`{"model":"m"}`, "input", "missing_required_parameter"},
		{`{"model":"m","input":"x","max_output_tokens":3}`, "max_output_tokens", "invalid_value"},
		{`{"model":"m","input":"x","temperature":3}`, "temperature", "invalid_value"},
		{`{"model":"m","input":[{"role":"tool","content":"x"}]}`, "input[0].role", "invalid_value"},
		{`{"model":"m","input":[{"role":"user"}]}`, "input[0].content", "missing_required_parameter"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"input_audio"}]}]}`, "input[0].content[0].type", "invalid_value"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"f"}]}]}`, "input[0].content[0]", "unsupported_parameter"},
		{`{"model":"m","input":[{"type":"function_call","name":"f"}]}`, "input[0].call_id", "missing_required_parameter"},
		{`{"model":"m","input":[{"type":"function_call_output","call_id":"c"}]}`, "input[0].output", "missing_required_parameter"},
		{`{"model":"m","input":[{"type":"item_reference","id":"x"}]}`, "input[0]", "unsupported_parameter"},
		{`{"model":"m","input":"x","background":true}`, "background", "unsupported_parameter"},
		{`{"model":"m","input":"x","conversation":"conv_1"}`, "conversation", "unsupported_parameter"},
		{`{"model":"m","input":"x","prompt":{"id":"p"}}`, "prompt", "unsupported_parameter"},
		{`{"model":"m","input":"x","tools":[{"name":"f"}]}`, "tools[0]", "invalid_value"},
		{`{"model":"m","input":"x","tools":[{"type":"function"}]}`, "tools[0].name", "missing_required_parameter"},
		{`{"model":"m","previous_response_id":"resp_1"}`, "", ""},
		{`{"model":"m","input":[{"role":"developer","content":"x"},{"type":"reasoning","summary":[]}]}`, "", ""},
	} {
		r := &Request{}
		if err := json.Unmarshal([]byte(tc.body), r); err != nil {
			t.Fatal(tc.body, err)
		}
		e := Validate(r)
		switch {
		case tc.code == "" && e != nil:
			t.Errorf("%s: %v", tc.body, e)
		case tc.code != "" && (e == nil || e.Param != tc.param || e.Code != tc.code || e.Status != 400):
			t.Errorf("%s: got %v, want %s %s", tc.body, e, tc.code, tc.param)
		}
	}
}

func TestToChatErrors(t *testing.T) {
	for _, tc := range []struct{ body, param string }{
		{`{"model":"m","input":"x","tool_choice":"sometimes"}`, "tool_choice"},
		{`{"model":"m","input":"x","tool_choice":{"type":"function"}}`, "tool_choice.name"},
		{`{"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"n"}}}`, "text.format.schema"},
		{`{"model":"m","input":"x","text":{"format":{"type":"xml"}}}`, "text.format.type"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]}`, "input[0].content[0]"},
	} {
		r := &Request{}
		if err := json.Unmarshal([]byte(tc.body), r); err != nil {
			t.Fatal(err)
		}
		if _, e := ToChat(r, nil); e == nil || e.Param != tc.param {
			t.Errorf("%s: %v", tc.body, e)
		}
	}
}

func TestHosted(t *testing.T) {
	r := &Request{}
	json.Unmarshal([]byte(`{"tools":[{"type":"function","name":"f"},{"type":"web_search"},{"type":"code_interpreter"}],"tool_choice":{"type":"file_search"}}`), r)
	if got := Hosted(r); strings.Join(got, ",") != "web_search,code_interpreter,file_search" {
		t.Fatalf("hosted %v", got)
	}
	r = &Request{}
	json.Unmarshal([]byte(`{"tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"allowed_tools","mode":"required","tools":[]}}`), r)
	if got := Hosted(r); got != nil {
		t.Fatalf("hosted %v", got)
	}
	c, e := ToChat(&Request{Model: "m", Input: Input{Text: "x"}, ToolChoice: json.RawMessage(`{"type":"allowed_tools","mode":"required"}`)}, nil)
	if e != nil || string(c.ToolChoice) != `"required"` {
		t.Fatalf("allowed_tools: %v %s", e, c.ToolChoice)
	}
}

// A stored response continues as its input followed by its output; instructions stay
// with the response that had them.
func TestStoredHistory(t *testing.T) {
	r := readRequest(t, "request_string.json")
	r.Instructions = "be terse"
	res := NewResponse("resp_1", 1, r)
	n := 0
	ids := func(p string) string { n++; return p + string(rune('0'+n)) }
	FromChat(res, &adapters.ChatResponse{Choices: []adapters.Choice{{Message: adapters.Message{Role: "assistant", Content: adapters.TextContent("Hi."),
		ToolCalls: []adapters.ToolCall{{ID: "call_9", Type: "function", Function: adapters.FunctionCall{Name: "lookup", Arguments: `{"q":1}`}}}},
		FinishReason: "tool_calls"}}, Usage: &adapters.Usage{PromptTokens: 5, CompletionTokens: 7}}, ids)
	if res.Status != StatusCompleted || res.Usage.TotalTokens != 12 || len(res.Output) != 2 {
		t.Fatalf("response %+v", res)
	}
	stored, err := NewStored(res, nil, InputRaw(r))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(stored)
	var st Stored
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	history, e := Items(st.History())
	if e != nil {
		t.Fatal(e)
	}
	next := &Request{Model: "m", Input: Input{Items: []Item{{Type: ItemFunctionCallOutput, CallID: "call_9", Output: &Content{Text: "42"}}}}}
	c, e := ToChat(next, history)
	if e != nil {
		t.Fatal(e)
	}
	got, _ := json.Marshal(c.Messages)
	want := `[{"role":"user","content":"Hello there"},{"role":"assistant","content":"Hi.","tool_calls":[{"id":"call_9","type":"function","function":{"name":"lookup","arguments":"{\"q\":1}"}}]},{"role":"tool","content":"42","tool_call_id":"call_9"}]`
	if string(got) != want {
		t.Fatalf("messages\n got %s\nwant %s", got, want)
	}
}

func TestFromChatIncomplete(t *testing.T) {
	for reason, want := range map[string]string{"length": "max_output_tokens", "content_filter": "content_filter"} {
		res := NewResponse("resp_1", 1, &Request{Model: "m"})
		FromChat(res, &adapters.ChatResponse{Choices: []adapters.Choice{{Message: adapters.Message{Content: adapters.TextContent("cut")}, FinishReason: reason}}}, func(p string) string { return p })
		if res.Status != StatusIncomplete || res.IncompleteDetails == nil || res.IncompleteDetails.Reason != want || res.Usage != nil {
			t.Errorf("%s: %+v", reason, res)
		}
	}
}

// A pass-through continuation carries the stored conversation inline, items as they were
// (an unknown reasoning field included), without previous_response_id.
func TestInline(t *testing.T) {
	history := []json.RawMessage{json.RawMessage(`{"type":"reasoning","id":"rs_1","encrypted_content":"gAAA","x_future":[1]}`)}
	body := []byte(`{"model":"m","previous_response_id":"resp_1","input":[{"role":"user","content":"next"}],"tools":[{"type":"web_search"}]}`)
	r := &Request{}
	if err := json.Unmarshal(body, r); err != nil {
		t.Fatal(err)
	}
	out, err := Inline(body, history, InputRaw(r))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"input":[{"type":"reasoning","id":"rs_1","encrypted_content":"gAAA","x_future":[1]},{"role":"user","content":"next"}],"model":"m","tools":[{"type":"web_search"}]}`
	if string(out) != want {
		t.Fatalf("inlined\n got %s\nwant %s", out, want)
	}
	if _, e := Items([]json.RawMessage{json.RawMessage(`{"type":"web_search_call","id":"ws_1"}`)}); e == nil || e.Code != "hosted_tool_unsupported" {
		t.Fatalf("hosted item continued by translation: %v", e)
	}
}
