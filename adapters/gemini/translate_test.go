package gemini

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/adaptertest"
)

// TestRequestGolden translates every testdata/requests/*.openai.json and compares the
// GenerateContentRequest with NAME.gemini.json (go test -update rewrites those).
func TestRequestGolden(t *testing.T) {
	names, _ := filepath.Glob(filepath.Join("testdata", "requests", "*.openai.json"))
	if len(names) == 0 {
		t.Fatal("no request fixtures")
	}
	p := mustProvider(t, Config{APIKey: "AIza-test-key"})
	for _, n := range names {
		name := strings.TrimSuffix(filepath.Base(n), ".openai.json")
		t.Run(name, func(t *testing.T) {
			raw := adaptertest.ReadTestdata(t, filepath.Join("requests", name+".openai.json"))
			var req adapters.ChatRequest
			if err := adapters.DecodeChatRequest(raw, &req); err != nil {
				t.Fatal(err)
			}
			before, _ := json.Marshal(&req)
			target, wire, err := p.chatRequest(&req, ":generateContent")
			if err != nil {
				t.Fatal(err)
			}
			body, err := json.Marshal(wire) // as the request path encodes it
			if err != nil {
				t.Fatal(err)
			}
			if after, _ := json.Marshal(&req); string(before) != string(after) {
				t.Error("the caller's request was mutated")
			}
			model := strings.TrimPrefix(req.Model, "models/")
			if want := DefaultBaseURL + "/v1beta/models/" + model + ":generateContent"; target != want {
				t.Errorf("url = %s, want %s", target, want)
			}
			if strings.Contains(target, "AIza") || strings.Contains(string(body), "AIza") {
				t.Error("the key leaked into the URL or body")
			}
			adaptertest.Golden(t, filepath.Join("requests", name+".gemini.json"), body)
		})
	}
}

func TestRequestTranslationErrors(t *testing.T) {
	user := adapters.Message{Role: "user", Content: adapters.TextContent("hi")}
	call := func(args string) adapters.Message {
		return adapters.Message{Role: "assistant", ToolCalls: []adapters.ToolCall{{ID: "c1", Type: "function",
			Function: adapters.FunctionCall{Name: "f", Arguments: args}}}}
	}
	tools := []adapters.Tool{{Type: "function", Function: adapters.FunctionDef{Name: "f"}}}
	tests := []struct {
		name string
		req  adapters.ChatRequest
		msg  string
	}{
		{name: "invalid arguments", req: adapters.ChatRequest{Messages: []adapters.Message{user, call(`{"a":`)}}, msg: "invalid JSON"},
		{name: "arguments not an object", req: adapters.ChatRequest{Messages: []adapters.Message{user, call(`[1,2]`)}}, msg: "not an object"},
		{name: "unknown role", req: adapters.ChatRequest{Messages: []adapters.Message{{Role: "critic", Content: adapters.TextContent("x")}}}, msg: `role "critic"`},
		{name: "tool result without call", req: adapters.ChatRequest{Messages: []adapters.Message{user,
			{Role: "tool", ToolCallID: "nope", Content: adapters.TextContent("1")}}}, msg: `tool_call_id "nope"`},
		{name: "only a system message", req: adapters.ChatRequest{Messages: []adapters.Message{{Role: "system", Content: adapters.TextContent("x")}}}, msg: "at least one"},
		{name: "no messages", req: adapters.ChatRequest{}, msg: "at least one"},
		{name: "bad tool_choice string", req: adapters.ChatRequest{Messages: []adapters.Message{user}, Tools: tools, ToolChoice: json.RawMessage(`"sometimes"`)}, msg: "tool_choice"},
		{name: "malformed tool_choice", req: adapters.ChatRequest{Messages: []adapters.Message{user}, Tools: tools, ToolChoice: json.RawMessage(`{"type":`)}, msg: "tool_choice"},
		{name: "tool_choice without tools", req: adapters.ChatRequest{Messages: []adapters.Message{user}, ToolChoice: json.RawMessage(`"required"`)}, msg: "no tools"},
		{name: "non-function tool", req: adapters.ChatRequest{Messages: []adapters.Message{user}, Tools: []adapters.Tool{{Type: "custom"}}}, msg: `type "custom"`},
		{name: "invalid parameters", req: adapters.ChatRequest{Messages: []adapters.Message{user}, Tools: []adapters.Tool{{Type: "function",
			Function: adapters.FunctionDef{Name: "f", Parameters: json.RawMessage(`"object"`)}}}}, msg: "must be a JSON object"},
		{name: "seed too large", req: adapters.ChatRequest{Messages: []adapters.Message{user}, Seed: adaptertest.Ptr(int64(1) << 40)}, msg: "32-bit"},
		{name: "unknown response_format", req: adapters.ChatRequest{Messages: []adapters.Message{user}, ResponseFormat: json.RawMessage(`{"type":"grammar"}`)}, msg: "grammar"},
		{name: "image url scheme", req: adapters.ChatRequest{Messages: []adapters.Message{{Role: "user", Content: &adapters.Content{Parts: []adapters.ContentPart{
			{Type: "image_url", ImageURL: &adapters.ImageURL{URL: "ftp://example.com/a.png"}}}}}}}, msg: "http(s)"},
		{name: "image data url not base64", req: adapters.ChatRequest{Messages: []adapters.Message{{Role: "user", Content: &adapters.Content{Parts: []adapters.ContentPart{
			{Type: "image_url", ImageURL: &adapters.ImageURL{URL: "data:image/svg+xml,%3Csvg%3E"}}}}}}}, msg: "base64"},
		{name: "openai file id", req: adapters.ChatRequest{Messages: []adapters.Message{{Role: "user", Content: &adapters.Content{Parts: []adapters.ContentPart{
			{Type: "file", File: json.RawMessage(`{"file_id":"file-abc"}`)}}}}}}, msg: "file ids"},
		{name: "unknown part type", req: adapters.ChatRequest{Messages: []adapters.Message{{Role: "user", Content: &adapters.Content{Parts: []adapters.ContentPart{
			{Type: "video_url"}}}}}}, msg: `"video_url"`},
		{name: "image in system", req: adapters.ChatRequest{Messages: []adapters.Message{{Role: "system", Content: &adapters.Content{Parts: []adapters.ContentPart{
			{Type: "image_url", ImageURL: &adapters.ImageURL{URL: "https://x/a.png"}}}}}, user}}, msg: "messages[0]: system content part"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := translateRequest(&tt.req)
			e := adaptertest.AsError(t, err, adapters.KindBadRequest)
			if !strings.Contains(e.Message, tt.msg) {
				t.Errorf("message = %q, want containing %q", e.Message, tt.msg)
			}
		})
	}

	t.Run("provider name and model are checked before sending", func(t *testing.T) {
		p := mustProvider(t, Config{BaseURL: "http://127.0.0.1:1"})
		for _, model := range []string{"", "../files/x", "gemini?key=1", "models/", "tunedModels/a/b", "a:b"} {
			_, err := p.Chat(context.Background(), &adapters.ChatRequest{Model: model, Messages: []adapters.Message{user}})
			if e := adaptertest.AsError(t, err, adapters.KindBadRequest); e.Provider != "test" {
				t.Errorf("model %q: provider = %q", model, e.Provider)
			}
		}
		_, err := p.Chat(context.Background(), &adapters.ChatRequest{Model: "gemini-2.5-flash", Messages: []adapters.Message{user, call("{")}})
		if e := adaptertest.AsError(t, err, adapters.KindBadRequest); e.Provider != "test" || !strings.Contains(e.Message, "messages[1]") {
			t.Errorf("error = %+v", e)
		}
	})
}

func TestRequestTranslationDetails(t *testing.T) {
	user := adapters.Message{Role: "user", Content: adapters.TextContent("hi")}
	tools := []adapters.Tool{{Type: "function", Function: adapters.FunctionDef{Name: "f",
		Parameters: json.RawMessage(`{"type":"object","properties":{"a":{"type":"string"}}}`)}}}
	tests := []struct {
		name string
		req  adapters.ChatRequest
		want string // a JSON fragment the translated request must contain
		not  string // one it must not
	}{
		{name: "tool_choice auto", req: adapters.ChatRequest{Messages: []adapters.Message{user}, Tools: tools, ToolChoice: json.RawMessage(`"auto"`)},
			want: `"toolConfig":{"functionCallingConfig":{"mode":"AUTO"}}`},
		{name: "tool_choice none", req: adapters.ChatRequest{Messages: []adapters.Message{user}, Tools: tools, ToolChoice: json.RawMessage(`"none"`)},
			want: `"mode":"NONE"`},
		{name: "tool_choice required", req: adapters.ChatRequest{Messages: []adapters.Message{user}, Tools: tools, ToolChoice: json.RawMessage(`"required"`)},
			want: `"mode":"ANY"`, not: "allowedFunctionNames"},
		{name: "tool_choice none without tools", req: adapters.ChatRequest{Messages: []adapters.Message{user}, ToolChoice: json.RawMessage(`"none"`)},
			not: "toolConfig"},
		{name: "no options, no generationConfig", req: adapters.ChatRequest{Messages: []adapters.Message{user}}, not: "generationConfig"},
		{name: "text response_format adds nothing", req: adapters.ChatRequest{Messages: []adapters.Message{user}, ResponseFormat: json.RawMessage(`{"type":"text"}`)},
			not: "generationConfig"},
		{name: "json_schema without schema", req: adapters.ChatRequest{Messages: []adapters.Message{user},
			ResponseFormat: json.RawMessage(`{"type":"json_schema","json_schema":{"name":"x"}}`)},
			want: `"generationConfig":{"responseMimeType":"application/json"}`},
		{name: "max_tokens when max_completion_tokens is absent", req: adapters.ChatRequest{Messages: []adapters.Message{user}, MaxTokens: adaptertest.Ptr(9)},
			want: `"maxOutputTokens":9`},
		{name: "function role names itself", req: adapters.ChatRequest{Messages: []adapters.Message{user,
			{Role: "function", Name: "lookup", Content: adapters.TextContent(`{"ok":true}`)}}},
			want: `{"role":"user","parts":[{"text":"hi"},{"functionResponse":{"name":"lookup","response":{"ok":true}}}]}`},
		{name: "tool result of a reused id names the latest call", req: adapters.ChatRequest{Messages: []adapters.Message{user,
			{Role: "assistant", ToolCalls: []adapters.ToolCall{{ID: "call_0", Function: adapters.FunctionCall{Name: "first", Arguments: "{}"}}}},
			{Role: "tool", ToolCallID: "call_0", Content: adapters.TextContent("1")},
			{Role: "assistant", ToolCalls: []adapters.ToolCall{{ID: "call_0", Function: adapters.FunctionCall{Name: "second", Arguments: "{}"}}}},
			{Role: "tool", ToolCallID: "call_0", Content: adapters.TextContent("2")}}},
			want: `{"functionResponse":{"name":"second","response":{"content":"2"}}}`},
		{name: "tool result with empty content", req: adapters.ChatRequest{Messages: []adapters.Message{user,
			{Role: "assistant", ToolCalls: []adapters.ToolCall{{ID: "c", Function: adapters.FunctionCall{Name: "f"}}}},
			{Role: "tool", ToolCallID: "c"}}},
			want: `{"functionResponse":{"name":"f","response":{"content":""}}}`},
		{name: "audio input", req: adapters.ChatRequest{Messages: []adapters.Message{{Role: "user", Content: &adapters.Content{Parts: []adapters.ContentPart{
			{Type: "input_audio", InputAudio: json.RawMessage(`{"data":"UklGRg==","format":"wav"}`)}}}}}},
			want: `{"inlineData":{"mimeType":"audio/wav","data":"UklGRg=="}}`},
		{name: "pdf file", req: adapters.ChatRequest{Messages: []adapters.Message{{Role: "user", Content: &adapters.Content{Parts: []adapters.ContentPart{
			{Type: "file", File: json.RawMessage(`{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0="}`)}}}}}},
			want: `{"inlineData":{"mimeType":"application/pdf","data":"JVBERi0="}}`},
		{name: "empty stop strings are dropped", req: adapters.ChatRequest{Messages: []adapters.Message{user}, Stop: adapters.Stop{"", "END"}},
			want: `"stopSequences":["END"]`},
		{name: "signature only on the first call of a turn", req: adapters.ChatRequest{Messages: []adapters.Message{user,
			{Role: "assistant", ToolCalls: []adapters.ToolCall{{ID: "a", Function: adapters.FunctionCall{Name: "f", Arguments: "{}"}},
				{ID: "b", Function: adapters.FunctionCall{Name: "g", Arguments: "{}"}}}}}},
			want: `"parts":[{"functionCall":{"name":"f","args":{}},"thoughtSignature":"skip_thought_signature_validator"},{"functionCall":{"name":"g","args":{}}}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := translateRequest(&tt.req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(g)
			if tt.want != "" && !strings.Contains(string(b), tt.want) {
				t.Errorf("request lacks %s\n%s", tt.want, b)
			}
			if tt.not != "" && strings.Contains(string(b), tt.not) {
				t.Errorf("request has %s\n%s", tt.not, b)
			}
		})
	}
}

func TestSanitizeSchema(t *testing.T) {
	tests := []struct {
		name, in, want string
		ordering       bool
	}{
		{name: "strips json schema keys, keeps property names",
			in:   `{"$schema":"x","type":"object","additionalProperties":false,"properties":{"$schema":{"type":"string"},"additionalProperties":{"type":"boolean"}}}`,
			want: `{"type":"OBJECT","properties":{"$schema":{"type":"STRING"},"additionalProperties":{"type":"BOOLEAN"}}}`},
		{name: "nullable type array", in: `{"type":["null","integer"]}`, want: `{"type":"INTEGER","nullable":true}`},
		{name: "several types become anyOf", in: `{"type":["string","number","null"]}`,
			want: `{"anyOf":[{"type":"STRING"},{"type":"NUMBER"}],"nullable":true}`},
		{name: "oneOf becomes anyOf", in: `{"oneOf":[{"type":"string"},{"type":"integer","multipleOf":2}]}`,
			want: `{"anyOf":[{"type":"STRING"},{"type":"INTEGER"}]}`},
		{name: "allOf of one is merged", in: `{"description":"outer","allOf":[{"type":"string","description":"inner"}]}`,
			want: `{"type":"STRING","description":"outer"}`},
		{name: "longer allOf is dropped", in: `{"allOf":[{"type":"string"},{"minLength":1}]}`, want: ``},
		{name: "const becomes enum", in: `{"const":3}`, want: `{"enum":["3"]}`},
		{name: "string const is a STRING", in: `{"const":"x"}`, want: `{"enum":["x"],"type":"STRING"}`},
		{name: "optional (pydantic)", in: `{"anyOf":[{"type":"string","maxLength":5},{"type":"null"}],"default":null,"title":"Alias"}`,
			want: `{"default":null,"title":"Alias","type":"STRING","maxLength":5,"nullable":true}`},
		{name: "optional union keeps anyOf", in: `{"anyOf":[{"type":"string"},{"type":"integer"},{"type":"null"}]}`,
			want: `{"anyOf":[{"type":"STRING"},{"type":"INTEGER"}],"nullable":true}`},
		{name: "enum values become strings", in: `{"type":"integer","enum":[1,2.5,true,null,"x"]}`,
			want: `{"type":"INTEGER","enum":["1","2.5","true","x"],"nullable":true}`},
		{name: "formats", in: `{"type":"object","properties":{"a":{"type":"string","format":"email"},"b":{"type":"string","format":"date-time"},"c":{"type":"integer","format":"int64"}}}`,
			want: `{"type":"OBJECT","properties":{"a":{"type":"STRING"},"b":{"type":"STRING","format":"date-time"},"c":{"type":"INTEGER","format":"int64"}}}`},
		{name: "required keeps declared properties", in: `{"type":"object","properties":{"a":{}},"required":["b","a",7]}`,
			want: `{"type":"OBJECT","properties":{"a":{}},"required":["a"]}`},
		{name: "required without properties is dropped", in: `{"type":"object","required":["a"]}`, want: `{"type":"OBJECT"}`},
		{name: "definitions and escaped ref", in: `{"type":"object","properties":{"x":{"$ref":"#/definitions/a~1b","description":"mine"}},"definitions":{"a/b":{"type":"string","description":"theirs"}}}`,
			want: `{"type":"OBJECT","properties":{"x":{"type":"STRING","description":"mine"}}}`},
		{name: "recursive ref is cut", in: `{"$ref":"#/$defs/Node","$defs":{"Node":{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#/$defs/Node"}}}}}}`,
			want: `{"type":"OBJECT","properties":{"children":{"type":"ARRAY","items":{}}}}`},
		{name: "unresolvable ref is dropped", in: `{"$ref":"https://example.com/schema.json","description":"d"}`, want: `{"description":"d"}`},
		{name: "true property schema", in: `{"type":"object","properties":{"any":true,"never":false}}`, want: `{"type":"OBJECT","properties":{"any":{}}}`},
		{name: "tuple items take the first", in: `{"type":"array","items":[{"type":"string"},{"type":"integer"}]}`, want: `{"type":"ARRAY","items":{"type":"STRING"}}`},
		{name: "bounds", in: `{"type":"array","minItems":1,"maxItems":-1,"items":{"type":"number","minimum":0.5,"maximum":"9"}}`,
			want: `{"type":"ARRAY","minItems":1,"items":{"type":"NUMBER","minimum":0.5}}`},
		{name: "ordering added for response schemas", ordering: true, in: `{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"string"}}}`,
			want: `{"type":"OBJECT","properties":{"z":{"type":"STRING"},"a":{"type":"STRING"}},"propertyOrdering":["z","a"]}`},
		{name: "explicit ordering kept", ordering: true, in: `{"type":"object","propertyOrdering":["a","z"],"properties":{"z":{},"a":{}}}`,
			want: `{"type":"OBJECT","propertyOrdering":["a","z"],"properties":{"z":{},"a":{}}}`},
		{name: "true schema", in: `true`, want: ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sanitizeSchema(json.RawMessage(tt.in), tt.ordering)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}

	t.Run("deep nesting is refused", func(t *testing.T) {
		in := strings.Repeat(`{"type":"array","items":`, 200) + `{}` + strings.Repeat(`}`, 200)
		if _, err := sanitizeSchema(json.RawMessage(in), false); err == nil {
			t.Error("no error")
		}
	})
	t.Run("exponential ref expansion is bounded", func(t *testing.T) {
		// Each level refers to the next one twice: 2^30 nodes if expanded naively.
		var defs []string
		for i := 0; i < 30; i++ {
			defs = append(defs, `"d`+itoa(i)+`":{"type":"object","properties":{"a":{"$ref":"#/$defs/d`+itoa(i+1)+`"},"b":{"$ref":"#/$defs/d`+itoa(i+1)+`"}}}`)
		}
		in := `{"$ref":"#/$defs/d0","$defs":{` + strings.Join(defs, ",") + `}}`
		if _, err := sanitizeSchema(json.RawMessage(in), false); err == nil || !strings.Contains(err.Error(), "too large") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("invalid JSON", func(t *testing.T) {
		for _, in := range []string{`{"a":`, `{} {}`, `[1,2]`, `nul`} {
			if _, err := sanitizeSchema(json.RawMessage(in), false); err == nil {
				t.Errorf("%s: no error", in)
			}
		}
	})
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestResponseGolden serves every testdata/responses/*.gemini.json as a 200 answer and
// compares what Chat returns (a response or an error) with NAME.openai.json.
func TestResponseGolden(t *testing.T) {
	names, _ := filepath.Glob(filepath.Join("testdata", "responses", "*.gemini.json"))
	if len(names) == 0 {
		t.Fatal("no response fixtures")
	}
	for _, n := range names {
		name := strings.TrimSuffix(filepath.Base(n), ".gemini.json")
		t.Run(name, func(t *testing.T) {
			_, srv := newRecorder(t, 200, adaptertest.ReadTestdata(t, filepath.Join("responses", name+".gemini.json")), nil)
			p := mustProvider(t, Config{BaseURL: srv.URL})
			resp, err := p.Chat(context.Background(), &adapters.ChatRequest{Model: "gemini-requested",
				Messages: []adapters.Message{{Role: "user", Content: adapters.TextContent("hi")}}})
			var got []byte
			if err != nil {
				got = errorJSON(err)
			} else {
				got, _ = json.Marshal(resp)
			}
			adaptertest.Golden(t, filepath.Join("responses", name+".openai.json"), normalizeIDs(got))
		})
	}
}

func TestFinishReasons(t *testing.T) {
	tests := []struct {
		in    string
		calls bool
		want  string
	}{
		{"STOP", false, "stop"}, {"STOP", true, "tool_calls"}, {"", true, "tool_calls"},
		{"MAX_TOKENS", false, "length"}, {"MAX_TOKENS", true, "length"},
		{"SAFETY", false, "content_filter"}, {"RECITATION", false, "content_filter"},
		{"BLOCKLIST", false, "content_filter"}, {"PROHIBITED_CONTENT", false, "content_filter"},
		{"SPII", true, "content_filter"}, {"IMAGE_SAFETY", false, "content_filter"},
		{"MALFORMED_FUNCTION_CALL", false, "stop"}, {"OTHER", false, "stop"}, {"LANGUAGE", true, "stop"},
		{"FINISH_REASON_UNSPECIFIED", false, "stop"}, {"SOMETHING_NEW", false, "stop"},
	}
	for _, tt := range tests {
		if got := finishReason(tt.in, tt.calls); got != tt.want {
			t.Errorf("finishReason(%q, %v) = %q, want %q", tt.in, tt.calls, got, tt.want)
		}
	}
}

func TestUsageMapping(t *testing.T) {
	u := toUsage(&usageMetadata{PromptTokenCount: 100, CandidatesTokenCount: 20, ThoughtsTokenCount: 30,
		ToolUsePromptTokenCount: 5, CachedContentTokenCount: 64})
	if u.PromptTokens != 105 || u.CompletionTokens != 50 || u.TotalTokens != 155 ||
		u.PromptTokensDetails.CachedTokens != 64 || u.CompletionTokensDetails.ReasoningTokens != 30 {
		t.Errorf("usage = %+v %+v %+v", u, u.PromptTokensDetails, u.CompletionTokensDetails)
	}
	if toUsage(&usageMetadata{}) != nil {
		t.Error("empty usageMetadata should give no usage")
	}
}

// top_k is mapped to generationConfig.topK; any other extra field is named, both by
// UnsupportedFields (for the gateway's drop_params) and by the translation itself.
func TestExtraFields(t *testing.T) {
	p := mustProvider(t, Config{APIKey: "AIza-test-key"})
	tests := []struct {
		name, body, unsupported, err string
	}{
		{name: "none", body: `{"model":"g","messages":[{"role":"user","content":"hi"}]}`},
		{name: "top_k", body: `{"model":"g","top_k":5,"messages":[{"role":"user","content":"hi"}]}`},
		{name: "unexpressible", body: `{"model":"g","top_k":5,"safety_identifier":"u","messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}]}`,
			unsupported: "messages[].content[].cache_control safety_identifier", err: "cannot express 'messages[].content[].cache_control' and 'safety_identifier'"},
		{name: "bad top_k", body: `{"model":"g","top_k":0,"messages":[{"role":"user","content":"hi"}]}`, err: "top_k must be a positive integer"},
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
			out, err := translateRequest(req)
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("translation failed: %v", err)
			case tt.name == "top_k" && (out.GenerationConfig == nil || out.GenerationConfig.TopK == nil || *out.GenerationConfig.TopK != 5):
				// top_k alone still makes a generationConfig.
				t.Errorf("generationConfig = %+v", out.GenerationConfig)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("translation error = %v, want %q", err, tt.err)
			}
		})
	}
}
