package adapters

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// marshalWireReference is how MarshalWire was written before the append encoders: json.Marshal
// of the typed fields, then the extra fields inserted before their objects' closing
// braces. The encoders are held to it.
func marshalWireReference(r *ChatRequest) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil || !r.HasExtra() {
		return b, err
	}
	var ins []insertion
	s := scanner{b: b}
	s.object(func(name, value []byte, at int) error {
		if string(name) != "messages" || value[0] != '[' {
			return nil
		}
		i := 0
		(&scanner{b: value}).array(func(elem []byte, mat int) {
			mat += at
			if i < len(r.Messages) && elem[0] == '{' {
				m := &r.Messages[i]
				if m.Content != nil && m.Content.Parts != nil {
					(&scanner{b: elem}).object(func(name, value []byte, cat int) error {
						if string(name) != "content" || value[0] != '[' {
							return nil
						}
						cat += mat
						j := 0
						(&scanner{b: value}).array(func(part []byte, pat int) {
							if j < len(m.Content.Parts) && len(m.Content.Parts[j].Extra) > 0 && part[0] == '{' {
								ins = append(ins, insertion{at: cat + pat + len(part) - 1, empty: isEmptyObject(part),
									fields: m.Content.Parts[j].Extra})
							}
							j++
						})
						return nil
					})
				}
				if len(m.Extra) > 0 {
					ins = append(ins, insertion{at: mat + len(elem) - 1, empty: isEmptyObject(elem), fields: m.Extra})
				}
			}
			i++
		})
		return nil
	})
	if len(r.Extra) > 0 {
		ins = append(ins, insertion{at: len(b) - 1, empty: isEmptyObject(b), fields: r.Extra})
	}
	sort.SliceStable(ins, func(a, b int) bool { return ins[a].at < ins[b].at })
	out := make([]byte, 0, len(b)+extraSize(ins))
	last := 0
	for _, in := range ins {
		out = append(out, b[last:in.at]...)
		for k, f := range in.fields {
			if k > 0 || !in.empty {
				out = append(out, ',')
			}
			name, _ := json.Marshal(f.Name)
			out = append(out, name...)
			out = append(out, ':')
			out = append(out, f.Value...)
		}
		last = in.at
	}
	return append(out, b[last:]...), nil
}

// insertion is where extra fields go in an encoded object: before its closing brace.
type insertion struct {
	at     int
	empty  bool
	fields Fields
}

func extraSize(ins []insertion) int {
	n := 0
	for _, in := range ins {
		for _, f := range in.fields {
			n += len(f.Name) + len(f.Value) + 8
		}
	}
	return n
}

func isEmptyObject(obj []byte) bool {
	return len(bytes.TrimSpace(obj[1:len(obj)-1])) == 0
}

// FuzzAppendJSON holds the append encoders to encoding/json: whatever decodes as a chat
// request, answer or chunk encodes byte for byte as json.Marshal (and, for a request with
// extra fields, as MarshalWire was written before) encodes it, and fails where it fails.
func FuzzAppendJSON(f *testing.F) {
	for _, pattern := range []string{"testdata/wire/*.json", "../engine/internal/reqtest/testdata/requests/*.json"} {
		files, _ := filepath.Glob(pattern)
		for _, name := range files {
			if b, err := os.ReadFile(name); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(`{"id":"x","choices":[{"delta":{"content":"<a&b>\u2028"},"finish_reason":null,"logprobs":{"content":[ 1, "<" ]}}],"usage":{"prompt_tokens_details":{"audio_tokens":1}}}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","cache_control":{ "type" : "<x>" }}],"q":1}],"top_k":1,"logit_bias":{"b":1,"a":-2},"metadata":{"z":"1","y":"2"},"temperature":1e-7,"top_p":1e21,"seed":-3}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req ChatRequest
		if DecodeChatRequest(body, &req) == nil {
			check(t, "ChatRequest", body, req.AppendJSON, func() ([]byte, error) { return json.Marshal(&req) })
			check(t, "ChatRequest wire", body, req.AppendWire, func() ([]byte, error) {
				b, err := marshalWireReference(&req)
				if err != nil {
					return nil, err
				}
				return json.Marshal(json.RawMessage(b))
			})
			want, werr := marshalWireReference(&req)
			got, gerr := req.MarshalWire()
			if (werr == nil) != (gerr == nil) || (werr == nil && !bytes.Equal(got, want)) {
				t.Fatalf("MarshalWire of %s:\n got %s (%v)\nwant %s (%v)", body, got, gerr, want, werr)
			}
		}
		var res ChatResponse
		if json.Unmarshal(body, &res) == nil {
			check(t, "ChatResponse", body, res.AppendJSON, func() ([]byte, error) { return json.Marshal(&res) })
		}
		var chunk ChatChunk
		if json.Unmarshal(body, &chunk) == nil {
			check(t, "ChatChunk", body, chunk.AppendJSON, func() ([]byte, error) { return json.Marshal(&chunk) })
		}
	})
}

func check(t *testing.T, what string, body []byte, appendJSON func([]byte) ([]byte, error), marshal func() ([]byte, error)) {
	t.Helper()
	want, werr := marshal()
	prefix := []byte("data: ")
	got, gerr := appendJSON(bytes.Clone(prefix))
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%s of %s: AppendJSON error %v, json.Marshal error %v", what, body, gerr, werr)
	}
	if werr != nil {
		return
	}
	if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], want) {
		t.Fatalf("%s of %s:\nAppendJSON   %s\njson.Marshal %s", what, body, got, want)
	}
}

// An encoding that json.Marshal refuses is refused too.
func TestAppendJSONFailsWhereMarshalFails(t *testing.T) {
	nan := 0.0
	nan = nan / nan
	for name, r := range map[string]*ChatRequest{
		"NaN temperature":   {Model: "m", Temperature: &nan},
		"invalid raw":       {Model: "m", ToolChoice: json.RawMessage(`{`)},
		"invalid parameter": {Model: "m", Tools: []Tool{{Type: "function", Function: FunctionDef{Name: "f", Parameters: json.RawMessage(`nope`)}}}},
	} {
		if _, err := json.Marshal(r); err == nil {
			t.Fatalf("%s: json.Marshal accepts it; the case is wrong", name)
		}
		if _, err := r.AppendJSON(nil); err == nil {
			t.Errorf("%s: AppendJSON accepted it", name)
		}
	}
	res := &ChatResponse{Choices: []Choice{{Logprobs: json.RawMessage(`[1,`)}}}
	if _, err := res.AppendJSON(nil); err == nil {
		t.Error("ChatResponse with invalid logprobs: AppendJSON accepted it")
	}
}

// Encoding an answer allocates nothing once the buffer is large enough.
func TestAppendJSONAllocations(t *testing.T) {
	content := "Policy-as-code keeps routing rules reviewable."
	res := &ChatResponse{ID: "chatcmpl-1", Object: ObjectChatCompletion, Created: 1, Model: "m",
		Choices: []Choice{{Message: Message{Role: "assistant", Content: TextContent(content)}, FinishReason: FinishStop}},
		Usage:   &Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}}
	chunk := &ChatChunk{ID: "chatcmpl-1", Object: ObjectChatCompletionChunk, Created: 1, Model: "m",
		Choices: []ChunkChoice{{Delta: Delta{Content: &content}}}}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() {
		res.AppendJSON(buf[:0])
		chunk.AppendJSON(buf[:0])
	}); n != 0 {
		t.Errorf("AppendJSON allocated %v times", n)
	}
}
