package gemini

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/adaptertest"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
)

// FuzzStream feeds arbitrary bytes to the stream, in reads of arbitrary size. Recv must
// terminate with io.EOF or an *adapters.Error, never panic, and every chunk sequence it
// produces must be one an OpenAI client can consume: one id and model throughout, a role
// chunk first per choice, nothing after a choice's finish, tool call indexes counting up,
// arguments that are JSON objects, and the usage chunk (choices: []) last and only on
// request. (The event splitter itself is fuzzed against the SSE spec in
// adapters/internal/sse.)
func FuzzStream(f *testing.F) {
	adaptertest.SeedFiles(f, "streams/*.sse", func(_ string, b []byte) {
		f.Add(b, uint16(0), true)
		f.Add(b, uint16(1), false)
		f.Add(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), uint16(5), true)
		f.Add(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\r")), uint16(4096), true)
	})
	f.Add([]byte("\xEF\xBB\xBFdata: {\"candidates\":[{\"finishReason\":\"STOP\"}]}"), uint16(2), true)
	f.Add([]byte(": c\r\ndata\r\rdata: {\"error\":\"x\"}\n\n"), uint16(3), false)
	f.Add([]byte(`data: {"candidates":[{"index":3,"content":{"parts":[{"functionCall":{"name":"f","args":null}}]}},{"finishReason":"SAFETY"}]}`+"\n\n"), uint16(0), true)
	f.Fuzz(func(t *testing.T, body []byte, readSize uint16, includeUsage bool) {
		size := int(readSize)
		if size == 0 {
			size = len(body) + 1
		}
		s := memStream(t, adaptertest.ChunkedReader(bytes.NewReader(body), size), includeUsage)
		defer s.Close()
		var chunks []*adapters.ChatChunk
		var end error
		for i := 0; ; i++ {
			if i > 4*len(body)+4 {
				t.Fatal("Recv does not terminate")
			}
			c, err := s.Recv()
			if err != nil {
				end = err
				break
			}
			if c == nil {
				t.Fatal("nil chunk without error")
			}
			chunks = append(chunks, c)
		}
		if end != io.EOF && adapters.AsError(end) == nil {
			t.Fatalf("error %v (%T) is neither io.EOF nor *adapters.Error", end, end)
		}
		if e := adapters.AsError(end); e != nil && (e.Provider != "test" || !utf8.ValidString(e.Message) ||
			strings.ContainsFunc(e.Message, httpx.IsControl) || len(e.Code) > 3*httpx.MaxCode) {
			t.Fatalf("unsafe error %+v", e)
		}
		if _, again := s.Recv(); again != end {
			t.Fatalf("end not sticky: %v then %v", end, again)
		}
		checkChunks(t, chunks, end, includeUsage)
	})
}

func checkChunks(t *testing.T, chunks []*adapters.ChatChunk, end error, includeUsage bool) {
	t.Helper()
	type choiceState struct {
		started, finished bool
		calls             int
	}
	states := map[int]*choiceState{}
	for i, c := range chunks {
		if c.ID != chunks[0].ID || c.Model != chunks[0].Model || c.Object != adapters.ObjectChatCompletionChunk ||
			!strings.HasPrefix(c.ID, "chatcmpl-") || c.Created != fixedNow.Unix() {
			t.Fatalf("chunk %d envelope differs: %+v", i, c)
		}
		if _, err := json.Marshal(c); err != nil {
			t.Fatalf("chunk %d does not marshal: %v", i, err)
		}
		if c.Usage != nil {
			if len(c.Choices) != 0 || c.Choices == nil || i != len(chunks)-1 || end != io.EOF || !includeUsage {
				t.Fatalf("misplaced usage chunk %d of %d: %+v (end %v)", i, len(chunks), c, end)
			}
			continue
		}
		if len(c.Choices) != 1 {
			t.Fatalf("chunk %d has %d choices", i, len(c.Choices))
		}
		ch := c.Choices[0]
		st := states[ch.Index]
		if st == nil {
			st = &choiceState{}
			states[ch.Index] = st
		}
		if st.finished {
			t.Fatalf("chunk %d follows the finish of choice %d", i, ch.Index)
		}
		if !st.started {
			if ch.Delta.Role != "assistant" || ch.Delta.Content == nil || *ch.Delta.Content != "" {
				t.Fatalf("first chunk of choice %d is not the role chunk: %+v", ch.Index, ch.Delta)
			}
			st.started = true
			continue
		}
		switch {
		case ch.FinishReason != nil:
			st.finished = true
			switch *ch.FinishReason {
			case adapters.FinishStop, adapters.FinishLength, adapters.FinishToolCalls, adapters.FinishContentFilter:
			default:
				t.Fatalf("finish reason %q", *ch.FinishReason)
			}
		case len(ch.Delta.ToolCalls) == 1:
			tc := ch.Delta.ToolCalls[0]
			if tc.Index == nil || *tc.Index != st.calls || !strings.HasPrefix(tc.ID, "call_") || tc.Type != "function" {
				t.Fatalf("tool call delta %+v (want index %d)", tc, st.calls)
			}
			var args map[string]any
			if err := json.Unmarshal([]byte(tc.Function.Arguments), &args); err != nil {
				t.Fatalf("arguments %q are not a JSON object", tc.Function.Arguments)
			}
			st.calls++
		case ch.Delta.Content != nil && *ch.Delta.Content != "":
		default:
			t.Fatalf("chunk %d carries nothing: %+v", i, ch)
		}
	}
	if end == io.EOF {
		finished := false
		for _, st := range states {
			finished = finished || st.finished
		}
		if !finished {
			t.Fatal("clean end without any finish chunk")
		}
	}
}

// FuzzTranslateRequest translates arbitrary chat requests. The translation must never
// panic nor change the caller's request, fail only with KindBadRequest, and otherwise
// produce a request Gemini's parser accepts in shape: alternating user/model contents,
// parts with exactly one field set, args and responses that are JSON objects, and
// schemas made only of the keys of Gemini's Schema.
func FuzzTranslateRequest(f *testing.F) {
	adaptertest.SeedFiles(f, "requests/*.openai.json", func(_ string, b []byte) { f.Add(b) })
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"$ref":"#/$defs/a","$defs":{"a":{"type":"object","properties":{"n":{"$ref":"#/$defs/a"},"o":{"oneOf":[{"type":"string"},{"type":["integer","null"]}]}}}}}}}],"response_format":{"type":"json_schema","json_schema":{"schema":{"allOf":[{"const":1}]}}}}`))
	f.Add([]byte(`{"messages":[{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"a","content":[{"type":"text","text":"{\"x\":1}"}]},{"role":"function","name":"g","content":"1"}]}`))
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:;base64,AA"}},{"type":"input_audio","input_audio":{"data":"AA","format":"MP3"}},{"type":"file","file":{"file_data":"JVBE","filename":"x.PDF"}}]}],"stop":["a",""],"n":1,"seed":-2147483648}`))
	f.Add([]byte(`{"messages":[{"role":"developer","content":""},{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"tool_calls":[{"id":"x","type":"function","function":{"name":"f","arguments":" {
"k" : [1, {}] } "}}]},{"role":"tool","tool_call_id":"x","content":" {"r": null} "}],"tool_choice":"auto","tools":[{"function":{"name":"f","parameters":{"type":"object","properties":{"k":{"type":"array","items":[{"type":"integer"}]}},"required":["k"]}}}]}`))
	f.Add([]byte(`{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"object","properties":{"a":{"enum":["x",1,null,true,{}]},"b":{"type":["string","number"]},"c":{"anyOf":[{"type":"null"}]},"d":{"$ref":"#"}},"propertyOrdering":["b","a"]}}},"presence_penalty":0.5,"temperature":2,"top_p":0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req adapters.ChatRequest
		if json.Unmarshal(data, &req) != nil {
			return
		}
		before, err := json.Marshal(&req)
		if err != nil {
			return // a RawMessage field that does not re-encode: not a request gavel would pass on
		}
		g, err := translateRequest(&req)
		if after, _ := json.Marshal(&req); !bytes.Equal(before, after) {
			t.Fatal("the caller's request was mutated")
		}
		if err != nil {
			e := adapters.AsError(err)
			if e == nil || e.Kind != adapters.KindBadRequest || e.Message == "" {
				t.Fatalf("error %v (%T)", err, err)
			}
			return
		}
		body, err := json.Marshal(g)
		if err != nil {
			t.Fatalf("translated request does not marshal: %v", err)
		}
		var wire struct {
			Contents          []map[string]json.RawMessage `json:"contents"`
			SystemInstruction *struct {
				Parts []map[string]json.RawMessage `json:"parts"`
			} `json:"systemInstruction"`
			Tools []struct {
				FunctionDeclarations []struct {
					Name       string          `json:"name"`
					Parameters json.RawMessage `json:"parameters"`
				} `json:"functionDeclarations"`
			} `json:"tools"`
			GenerationConfig *struct {
				ResponseSchema json.RawMessage `json:"responseSchema"`
			} `json:"generationConfig"`
		}
		if err := json.Unmarshal(body, &wire); err != nil {
			t.Fatalf("translated request is not the expected JSON: %v\n%s", err, body)
		}
		if len(wire.Contents) == 0 {
			t.Fatal("no contents")
		}
		prev := ""
		for i, c := range wire.Contents {
			var role string
			var parts []map[string]json.RawMessage
			json.Unmarshal(c["role"], &role)
			json.Unmarshal(c["parts"], &parts)
			if (role != "user" && role != "model") || role == prev {
				t.Fatalf("contents[%d] role %q after %q", i, role, prev)
			}
			prev = role
			if len(parts) == 0 {
				t.Fatalf("contents[%d] has no parts", i)
			}
			for j, p := range parts {
				checkPart(t, i, j, p)
			}
		}
		if wire.SystemInstruction != nil {
			if len(wire.SystemInstruction.Parts) == 0 {
				t.Fatal("empty systemInstruction")
			}
			for j, p := range wire.SystemInstruction.Parts {
				checkPart(t, -1, j, p)
			}
		}
		for _, tl := range wire.Tools {
			for _, d := range tl.FunctionDeclarations {
				if d.Name == "" {
					t.Fatal("function declaration without a name")
				}
				if d.Parameters != nil {
					checkSchema(t, d.Parameters, 0)
				}
			}
		}
		if wire.GenerationConfig != nil && wire.GenerationConfig.ResponseSchema != nil {
			checkSchema(t, wire.GenerationConfig.ResponseSchema, 0)
		}
	})
}

func checkPart(t *testing.T, i, j int, p map[string]json.RawMessage) {
	t.Helper()
	data := 0
	for k, v := range p {
		switch k {
		case "text":
			var s string
			if json.Unmarshal(v, &s) != nil || s == "" {
				t.Fatalf("contents[%d].parts[%d]: empty text", i, j)
			}
			data++
		case "inlineData", "fileData", "functionResponse":
			data++
			if k == "functionResponse" {
				var fr struct {
					Name     string         `json:"name"`
					Response map[string]any `json:"response"`
				}
				if json.Unmarshal(v, &fr) != nil || fr.Name == "" || fr.Response == nil {
					t.Fatalf("contents[%d].parts[%d]: functionResponse %s", i, j, v)
				}
			}
		case "functionCall":
			data++
			var fc struct {
				Name string         `json:"name"`
				Args map[string]any `json:"args"`
			}
			if json.Unmarshal(v, &fc) != nil || fc.Name == "" || fc.Args == nil {
				t.Fatalf("contents[%d].parts[%d]: functionCall %s", i, j, v)
			}
		case "thoughtSignature":
			if _, ok := p["functionCall"]; !ok {
				t.Fatalf("contents[%d].parts[%d]: signature without a call", i, j)
			}
		default:
			t.Fatalf("contents[%d].parts[%d]: unexpected key %q", i, j, k)
		}
	}
	if data != 1 {
		t.Fatalf("contents[%d].parts[%d] sets %d data fields: %v", i, j, data, p)
	}
}

// checkSchema walks a translated schema: only Schema keys at schema positions.
func checkSchema(t *testing.T, raw json.RawMessage, depth int) {
	t.Helper()
	if depth > maxSchemaDepth+2 {
		t.Fatal("schema deeper than the limit")
	}
	var node map[string]json.RawMessage
	if err := json.Unmarshal(raw, &node); err != nil {
		t.Fatalf("schema node is not an object: %s", raw)
	}
	for k, v := range node {
		if !schemaKeys[k] {
			t.Fatalf("schema key %q survived: %s", k, raw)
		}
		switch k {
		case "properties":
			var props map[string]json.RawMessage
			if json.Unmarshal(v, &props) != nil {
				t.Fatalf("properties is not an object: %s", v)
			}
			for _, p := range props {
				checkSchema(t, p, depth+1)
			}
		case "items":
			checkSchema(t, v, depth+1)
		case "anyOf":
			var alts []json.RawMessage
			if json.Unmarshal(v, &alts) != nil || len(alts) == 0 {
				t.Fatalf("anyOf %s", v)
			}
			for _, a := range alts {
				checkSchema(t, a, depth+1)
			}
		case "enum", "required", "propertyOrdering":
			var strs []string
			if json.Unmarshal(v, &strs) != nil {
				t.Fatalf("%s is not a list of strings: %s", k, v)
			}
		case "type":
			var s string
			if json.Unmarshal(v, &s) != nil || strings.ToUpper(s) != s {
				t.Fatalf("type %s", v)
			}
		}
	}
}

// FuzzErrorBody classifies arbitrary error bodies: never a panic, always a usable error
// whose text is bounded, printable, valid UTF-8 and free of the API key.
func FuzzErrorBody(f *testing.F) {
	adaptertest.SeedFiles(f, "errors/*", func(name string, b []byte) {
		status := 400
		if n := len(name); n >= 3 {
			if v, err := json.Number(name[:3]).Int64(); err == nil {
				status = int(v)
			}
		}
		f.Add(status, b, "1")
		f.Add(200, b, "")
	})
	f.Add(429, []byte(`{"error":{"code":429,"message":"`+testKey+`","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1e9s"}]}}`), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(400, []byte(`{"error":{"code":{"nested":1},"message":["x"],"status":7,"details":[1,{"@type":9}]}}`), "")
	f.Add(0, []byte{}, "")
	p, err := New(Config{Name: "fuzz", APIKey: testKey})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		e := p.ErrorFromBody(status, h, body, now)
		if e == nil || e.Provider != "fuzz" || e.Status != status {
			t.Fatalf("error = %+v", e)
		}
		if e.Kind.String() == "" || strings.HasPrefix(e.Kind.String(), "kind(") {
			t.Fatalf("invalid kind %d", e.Kind)
		}
		if status >= 400 && status < 600 && e.Kind == adapters.KindProtocol {
			t.Fatalf("status %d classified as protocol", status)
		}
		if e.RetryAfter < 0 {
			t.Fatalf("negative retry after %v", e.RetryAfter)
		}
		checkErrorText(t, e)
		if e.Message == "" {
			t.Fatal("empty message")
		}
		_ = e.Error()
		// The same body inside a stream must classify without a panic too.
		if w, ok := parseErrorBody(body); ok {
			se := p.streamError(w)
			checkErrorText(t, se)
			if se.Message == "" || se.RetryAfter < 0 || se.RetryAfter > maxRetryDelay {
				t.Fatalf("stream error %+v", se)
			}
		}
	})
}

func checkErrorText(t *testing.T, e *adapters.Error) {
	t.Helper()
	for _, s := range []string{e.Message, e.Code} {
		if !utf8.ValidString(s) || strings.ContainsFunc(s, httpx.IsControl) || len(s) > 3*httpx.MaxMessage {
			t.Fatalf("unsafe text %q", s)
		}
		if strings.Contains(s, testKey) {
			t.Fatalf("text leaks the key: %q", s)
		}
	}
	if len(e.Code) > 3*httpx.MaxCode {
		t.Fatalf("code %q", e.Code)
	}
}
