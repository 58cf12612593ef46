package anthropic

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/adaptertest"
)

// readRequest decodes a canonical request fixture.
func readRequest(t testing.TB, name string) *adapters.ChatRequest {
	t.Helper()
	req := new(adapters.ChatRequest)
	if err := adapters.DecodeChatRequest(adaptertest.ReadTestdata(t, name), req); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return req
}

// TestRequestGolden sends every canonical request in testdata/requests through the
// provider and compares the body Anthropic receives with the golden translation.
func TestRequestGolden(t *testing.T) {
	names, _ := filepath.Glob("testdata/requests/*.openai.json")
	if len(names) < 5 {
		t.Fatalf("only %d request fixtures", len(names))
	}
	for _, in := range names {
		base := strings.TrimSuffix(filepath.Base(in), ".openai.json")
		t.Run(base, func(t *testing.T) {
			req := readRequest(t, "requests/"+base+".openai.json")
			reply, hdr := adaptertest.ReadTestdata(t, "responses/text.anthropic.json"), map[string]string(nil)
			if req.Stream {
				reply, hdr = adaptertest.ReadTestdata(t, "streams/text.sse"), map[string]string{"Content-Type": "text/event-stream"}
			}
			rec, srv := newRecorder(t, 200, reply, hdr)
			p := mustProvider(t, Config{BaseURL: srv.URL, APIKey: "sk-ant-test"})
			before, _ := json.Marshal(req)
			if req.Stream {
				s, err := p.ChatStream(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := adaptertest.DrainStream(s); err.Error() != "EOF" {
					t.Fatal(err)
				}
				s.Close()
			} else if _, err := p.Chat(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			if after, _ := json.Marshal(req); string(before) != string(after) {
				t.Errorf("the caller's request was mutated")
			}
			adaptertest.Golden(t, "requests/"+base+".anthropic.json", rec.Last().Body)
		})
	}
}

func TestToolChoice(t *testing.T) {
	tools := []adapters.Tool{{Type: "function", Function: adapters.FunctionDef{Name: "f"}}}
	tests := []struct {
		name     string
		choice   string
		parallel *bool
		noTools  bool
		want     string // JSON of tool_choice, "" when absent
	}{
		{name: "absent", want: ""},
		{name: "null", choice: `null`, want: ""},
		{name: "auto", choice: `"auto"`, want: `{"type":"auto"}`},
		{name: "required", choice: `"required"`, want: `{"type":"any"}`},
		{name: "none", choice: `"none"`, want: `{"type":"none"}`},
		{name: "function", choice: `{"type":"function","function":{"name":"f"}}`, want: `{"type":"tool","name":"f"}`},
		{name: "parallel false alone", parallel: adaptertest.Ptr(false), want: `{"type":"auto","disable_parallel_tool_use":true}`},
		{name: "parallel true", choice: `"auto"`, parallel: adaptertest.Ptr(true), want: `{"type":"auto"}`},
		{name: "required, no parallel", choice: `"required"`, parallel: adaptertest.Ptr(false), want: `{"type":"any","disable_parallel_tool_use":true}`},
		{name: "function, no parallel", choice: `{"type":"function","function":{"name":"f"}}`, parallel: adaptertest.Ptr(false),
			want: `{"type":"tool","name":"f","disable_parallel_tool_use":true}`},
		{name: "none takes no parallel flag", choice: `"none"`, parallel: adaptertest.Ptr(false), want: `{"type":"none"}`},
		{name: "dropped without tools", choice: `"required"`, parallel: adaptertest.Ptr(false), noTools: true, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &adapters.ChatRequest{Model: "m", Messages: []adapters.Message{{Role: "user", Content: adapters.TextContent("hi")}},
				ToolChoice: json.RawMessage(tt.choice), ParallelToolCalls: tt.parallel}
			if !tt.noTools {
				req.Tools = tools
			}
			out, err := translateRequest(req, DefaultMaxTokens, false)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if out.ToolChoice != nil {
				b, _ := json.Marshal(out.ToolChoice)
				got = string(b)
			}
			if got != tt.want {
				t.Errorf("tool_choice = %s, want %s", got, tt.want)
			}
			if tt.noTools && out.Tools != nil {
				t.Errorf("tools = %v", out.Tools)
			}
		})
	}
}

func TestSamplingParameters(t *testing.T) {
	user := []adapters.Message{{Role: "user", Content: adapters.TextContent("hi")}}
	for _, tt := range []struct {
		in, want float64
	}{{0, 0}, {0.3, 0.3}, {1, 1}, {1.5, 1}, {2, 1}, {-1, 0}} {
		out, err := translateRequest(&adapters.ChatRequest{Messages: user, Temperature: adaptertest.Ptr(tt.in)}, 1, false)
		if err != nil {
			t.Fatal(err)
		}
		if out.Temperature == nil || *out.Temperature != tt.want {
			t.Errorf("temperature %v → %v, want %v", tt.in, out.Temperature, tt.want)
		}
	}
	// top_p travels alone, or not at all next to a temperature.
	for _, tt := range []struct {
		temp, topP *float64
		want       *float64
	}{{nil, adaptertest.Ptr(0.9), adaptertest.Ptr(0.9)}, {adaptertest.Ptr(0.5), adaptertest.Ptr(0.9), nil}, {adaptertest.Ptr(0.5), nil, nil}} {
		out, err := translateRequest(&adapters.ChatRequest{Messages: user, Temperature: tt.temp, TopP: tt.topP}, 1, false)
		if err != nil {
			t.Fatal(err)
		}
		if (out.TopP == nil) != (tt.want == nil) || (out.TopP != nil && *out.TopP != *tt.want) {
			t.Errorf("temperature %v top_p %v → top_p %v, want %v", tt.temp, tt.topP, out.TopP, tt.want)
		}
	}
	for _, tt := range []struct {
		name              string
		maxTokens, maxCmp *int
		def, want         int
	}{
		{name: "default", def: 4096, want: 4096},
		{name: "configured default", def: 777, want: 777},
		{name: "max_tokens", maxTokens: adaptertest.Ptr(100), def: 4096, want: 100},
		{name: "max_completion_tokens wins", maxTokens: adaptertest.Ptr(100), maxCmp: adaptertest.Ptr(200), def: 4096, want: 200},
	} {
		out, err := translateRequest(&adapters.ChatRequest{Messages: user, MaxTokens: tt.maxTokens, MaxCompletionTokens: tt.maxCmp}, tt.def, false)
		if err != nil {
			t.Fatal(err)
		}
		if out.MaxTokens != tt.want {
			t.Errorf("%s: max_tokens = %d, want %d", tt.name, out.MaxTokens, tt.want)
		}
	}
	// Config.DefaultMaxTokens reaches the wire; zero means the package default.
	for _, tt := range []struct{ cfg, want int }{{0, DefaultMaxTokens}, {1234, 1234}} {
		rec, srv := newRecorder(t, 200, adaptertest.ReadTestdata(t, "responses/text.anthropic.json"), nil)
		p := mustProvider(t, Config{BaseURL: srv.URL, DefaultMaxTokens: tt.cfg})
		if _, err := p.Chat(context.Background(), &adapters.ChatRequest{Model: "m", Messages: user}); err != nil {
			t.Fatal(err)
		}
		var body struct {
			MaxTokens int `json:"max_tokens"`
		}
		json.Unmarshal(rec.Last().Body, &body)
		if body.MaxTokens != tt.want {
			t.Errorf("config %d: max_tokens = %d, want %d", tt.cfg, body.MaxTokens, tt.want)
		}
	}
}

// TestUntranslatableRequests checks that requests the Messages API cannot express fail
// with KindBadRequest before anything is sent.
func TestUntranslatableRequests(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	p := mustProvider(t, Config{BaseURL: srv.URL, APIKey: "sk-ant-secret"})
	user := func(parts ...adapters.ContentPart) adapters.Message {
		return adapters.Message{Role: "user", Content: &adapters.Content{Parts: parts}}
	}
	call := func(args string) adapters.Message {
		return adapters.Message{Role: "assistant", ToolCalls: []adapters.ToolCall{{ID: "call_1", Type: "function",
			Function: adapters.FunctionCall{Name: "f", Arguments: args}}}}
	}
	tools := []adapters.Tool{{Type: "function", Function: adapters.FunctionDef{Name: "f"}}}
	tests := []struct {
		name string
		req  adapters.ChatRequest
		msg  string
	}{
		{name: "n > 1", req: adapters.ChatRequest{N: adaptertest.Ptr(2)}, msg: "n > 1"},
		{name: "audio part", req: adapters.ChatRequest{Messages: []adapters.Message{user(adapters.ContentPart{Type: "input_audio", InputAudio: json.RawMessage(`{}`)})}}, msg: `"input_audio"`},
		{name: "file part", req: adapters.ChatRequest{Messages: []adapters.Message{user(adapters.ContentPart{Type: "file", File: json.RawMessage(`{}`)})}}, msg: `"file"`},
		{name: "image without url", req: adapters.ChatRequest{Messages: []adapters.Message{user(adapters.ContentPart{Type: "image_url"})}}, msg: "without a url"},
		{name: "ftp image", req: adapters.ChatRequest{Messages: []adapters.Message{user(adapters.ContentPart{Type: "image_url", ImageURL: &adapters.ImageURL{URL: "ftp://x/y.png"}})}}, msg: "http(s)"},
		{name: "data url not base64", req: adapters.ChatRequest{Messages: []adapters.Message{user(adapters.ContentPart{Type: "image_url", ImageURL: &adapters.ImageURL{URL: "data:image/png,abc"}})}}, msg: "base64"},
		{name: "data url without data", req: adapters.ChatRequest{Messages: []adapters.Message{user(adapters.ContentPart{Type: "image_url", ImageURL: &adapters.ImageURL{URL: "data:image/png;base64"}})}}, msg: "no data"},
		{name: "invalid arguments", req: adapters.ChatRequest{Messages: []adapters.Message{call(`{"a":`)}}, msg: "not valid JSON"},
		{name: "array arguments", req: adapters.ChatRequest{Messages: []adapters.Message{call(`[1,2]`)}}, msg: "JSON object"},
		{name: "tool call without id", req: adapters.ChatRequest{Messages: []adapters.Message{{Role: "assistant", ToolCalls: []adapters.ToolCall{{Function: adapters.FunctionCall{Name: "f", Arguments: "{}"}}}}}}, msg: "id is required"},
		{name: "tool result without id", req: adapters.ChatRequest{Messages: []adapters.Message{{Role: "tool", Content: adapters.TextContent("x")}}}, msg: "tool_call_id"},
		{name: "function role", req: adapters.ChatRequest{Messages: []adapters.Message{{Role: "function", Name: "f", Content: adapters.TextContent("x")}}}, msg: `role "function"`},
		{name: "image in system", req: adapters.ChatRequest{Messages: []adapters.Message{{Role: "system", Content: &adapters.Content{Parts: []adapters.ContentPart{{Type: "image_url", ImageURL: &adapters.ImageURL{URL: "https://x/y.png"}}}}}}}, msg: "system message"},
		{name: "image in assistant", req: adapters.ChatRequest{Messages: []adapters.Message{{Role: "assistant", Content: &adapters.Content{Parts: []adapters.ContentPart{{Type: "image_url", ImageURL: &adapters.ImageURL{URL: "https://x/y.png"}}}}}}}, msg: "assistant message"},
		{name: "custom tool", req: adapters.ChatRequest{Tools: []adapters.Tool{{Type: "custom", Function: adapters.FunctionDef{Name: "f"}}}}, msg: `"custom"`},
		{name: "tool without name", req: adapters.ChatRequest{Tools: []adapters.Tool{{Type: "function"}}}, msg: "name is required"},
		{name: "non-object parameters", req: adapters.ChatRequest{Tools: []adapters.Tool{{Type: "function", Function: adapters.FunctionDef{Name: "f", Parameters: json.RawMessage(`"x"`)}}}}, msg: "JSON object"},
		{name: "unknown tool_choice", req: adapters.ChatRequest{Tools: tools, ToolChoice: json.RawMessage(`"sometimes"`)}, msg: `"sometimes"`},
		{name: "allowed_tools tool_choice", req: adapters.ChatRequest{Tools: tools, ToolChoice: json.RawMessage(`{"type":"allowed_tools","allowed_tools":{}}`)}, msg: "name a function"},
		{name: "tool_choice number", req: adapters.ChatRequest{Tools: tools, ToolChoice: json.RawMessage(`7`)}, msg: "string or an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			req.Model = "claude-sonnet-4-5"
			for _, stream := range []bool{false, true} {
				var err error
				if stream {
					_, err = p.ChatStream(context.Background(), &req)
				} else {
					_, err = p.Chat(context.Background(), &req)
				}
				e := adaptertest.AsError(t, err, adapters.KindBadRequest)
				if !strings.Contains(e.Message, tt.msg) {
					t.Errorf("message = %q, want containing %q", e.Message, tt.msg)
				}
				if e.Provider != "test" || e.Status != 0 {
					t.Errorf("error = %+v", e)
				}
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("upstream was called %d times", n)
	}
}

// TestTranslateRequestInvariants checks properties the Messages API insists on, for
// every request fixture: alternating roles, no empty content, no empty text block, and
// each tool_result answering a tool_use of the turn before.
func TestTranslateRequestInvariants(t *testing.T) {
	names, _ := filepath.Glob("testdata/requests/*.openai.json")
	for _, in := range names {
		req := readRequest(t, "requests/"+filepath.Base(in))
		out, err := translateRequest(req, DefaultMaxTokens, false)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if err := checkWireInvariants(out, true); err != nil {
			t.Errorf("%s: %v", in, err)
		}
	}
}

// checkWireInvariants is shared with the fuzz target and the fake upstream. pairing
// also checks that each tool_result answers a tool_use of the assistant turn before, which
// only a well-formed conversation satisfies.
func checkWireInvariants(out *messagesRequest, pairing bool) error {
	if out.Messages == nil {
		return fmt.Errorf("messages is null")
	}
	var lastUses map[string]bool
	for i, m := range out.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return fmt.Errorf("messages[%d]: role %q", i, m.Role)
		}
		if i > 0 && out.Messages[i-1].Role == m.Role {
			return fmt.Errorf("messages[%d]: two %s messages in a row", i, m.Role)
		}
		if len(m.Content) == 0 {
			return fmt.Errorf("messages[%d]: empty content", i)
		}
		uses := map[string]bool{}
		for j, b := range m.Content {
			switch b.Type {
			case "text":
				if b.Text == "" {
					return fmt.Errorf("messages[%d].content[%d]: empty text block", i, j)
				}
			case "tool_use":
				if m.Role != "assistant" || b.ID == "" || b.Name == "" || !json.Valid(b.Input) || b.Input[0] != '{' {
					return fmt.Errorf("messages[%d].content[%d]: bad tool_use %+v", i, j, b)
				}
				uses[b.ID] = true
			case "tool_result":
				if m.Role != "user" || b.ToolUseID == "" {
					return fmt.Errorf("messages[%d].content[%d]: bad tool_result %+v", i, j, b)
				}
				if pairing && !lastUses[b.ToolUseID] {
					return fmt.Errorf("messages[%d].content[%d]: tool_result %q answers no tool_use of the previous turn", i, j, b.ToolUseID)
				}
			case "image":
				if b.Source == nil || (b.Source.Type != "base64" && b.Source.Type != "url") {
					return fmt.Errorf("messages[%d].content[%d]: bad image %+v", i, j, b)
				}
			default:
				return fmt.Errorf("messages[%d].content[%d]: block type %q", i, j, b.Type)
			}
		}
		if m.Role == "assistant" {
			lastUses = uses
		} else {
			lastUses = nil
		}
	}
	return nil
}

// TestResponseGolden converts every Anthropic answer in testdata/responses and compares
// the result with the golden OpenAI answer.
func TestResponseGolden(t *testing.T) {
	names, _ := filepath.Glob("testdata/responses/*.anthropic.json")
	if len(names) < 4 {
		t.Fatalf("only %d response fixtures", len(names))
	}
	p := mustProvider(t, Config{})
	for _, in := range names {
		base := strings.TrimSuffix(filepath.Base(in), ".anthropic.json")
		t.Run(base, func(t *testing.T) {
			var w messageResponse
			if err := json.Unmarshal(adaptertest.ReadTestdata(t, "responses/"+base+".anthropic.json"), &w); err != nil {
				t.Fatal(err)
			}
			resp, err := p.response(&w, 200, "requested-model", testCreated)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(resp)
			adaptertest.Golden(t, "responses/"+base+".openai.json", got)
		})
	}
}

func TestFinishReason(t *testing.T) {
	for in, want := range map[string]string{
		"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
		"tool_use": "tool_calls", "refusal": "content_filter", "model_context_window_exceeded": "length",
		"": "stop", "something_new": "stop",
	} {
		if got := finishReason(in); got != want {
			t.Errorf("finishReason(%q) = %q, want %q", in, got, want)
		}
	}
}

// Extra fields the Messages API has a place for are mapped; any other is named, both by
// UnsupportedFields (for the gateway's drop_params) and by the translation itself.
func TestExtraFields(t *testing.T) {
	p := mustProvider(t, Config{BaseURL: "http://127.0.0.1:1", APIKey: "k"})
	tests := []struct {
		name        string
		body        string
		unsupported string // UnsupportedFields, joined
		err         string // translation error, "" for none
	}{
		{name: "none", body: `{"model":"c","messages":[{"role":"user","content":"hi"}]}`},
		{name: "mapped", body: `{"model":"c","top_k":3,"safety_identifier":"u","messages":[{"role":"user","cache_control":{"type":"ephemeral"},"content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}]}`},
		{name: "unexpressible", body: `{"model":"c","top_k":3,"chat_template_kwargs":{},"verbosity":"low","messages":[{"role":"user","content":"hi"}]}`,
			unsupported: "chat_template_kwargs verbosity", err: "cannot express 'chat_template_kwargs' and 'verbosity'"},
		{name: "nested only", body: `{"model":"c","messages":[{"role":"user","content":[{"type":"text","text":"hi","citations":true}]}]}`,
			unsupported: "messages[].content[].citations", err: "cannot express 'messages[].content[].citations'"},
		{name: "bad top_k", body: `{"model":"c","top_k":"many","messages":[{"role":"user","content":"hi"}]}`, err: "top_k must be a non-negative integer"},
		{name: "bad cache_control", body: `{"model":"c","messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":"yes"}]}]}`, err: "cache_control must be an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := new(adapters.ChatRequest)
			if err := adapters.DecodeChatRequest([]byte(tt.body), req); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(p.UnsupportedFields(req), " "); got != tt.unsupported {
				t.Errorf("UnsupportedFields = %q, want %q", got, tt.unsupported)
			}
			_, err := translateRequest(req, 1024, false)
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("translation failed: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("translation error = %v, want %q", err, tt.err)
			}
		})
	}
}
