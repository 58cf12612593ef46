package anthropic

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
)

// sseOf collects emitted events as Anthropic writes them.
func sseOf(buf *bytes.Buffer) Emit {
	return func(name string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		buf.WriteString("event: " + name + "\ndata: ")
		buf.Write(b)
		buf.WriteString("\n\n")
		return nil
	}
}

func ptr[T any](v T) *T { return &v }

// A canonical stream (OpenAI's chunk sequence for a text then two tool calls, then the
// usage chunk) becomes Anthropic's event sequence.
func TestEncoderGolden(t *testing.T) {
	idx := func(i int) *int { return &i }
	chunks := []adapters.ChatChunk{
		{ID: "chatcmpl-7", Model: "gpt-x", Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{Role: "assistant", Content: ptr("")}}}},
		{ID: "chatcmpl-7", Model: "gpt-x", Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{Content: ptr("Let me ")}}}},
		{ID: "chatcmpl-7", Model: "gpt-x", Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{Content: ptr("look.")}}}},
		{ID: "chatcmpl-7", Model: "gpt-x", Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{ToolCalls: []adapters.ToolCall{{Index: idx(0), ID: "call_a", Type: "function", Function: adapters.FunctionCall{Name: "Read"}}}}}}},
		{ID: "chatcmpl-7", Model: "gpt-x", Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{ToolCalls: []adapters.ToolCall{{Index: idx(0), Function: adapters.FunctionCall{Arguments: `{"file_`}}}}}}},
		{ID: "chatcmpl-7", Model: "gpt-x", Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{ToolCalls: []adapters.ToolCall{{Index: idx(0), Function: adapters.FunctionCall{Arguments: `path":"a"}`}}}}}}},
		{ID: "chatcmpl-7", Model: "gpt-x", Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{ToolCalls: []adapters.ToolCall{{Index: idx(1), ID: "call_b", Type: "function", Function: adapters.FunctionCall{Name: "Glob", Arguments: `{}`}}}}}}},
		{ID: "chatcmpl-7", Model: "gpt-x", Choices: []adapters.ChunkChoice{{FinishReason: ptr("tool_calls")}}},
		{ID: "chatcmpl-7", Model: "gpt-x", Choices: []adapters.ChunkChoice{}, Usage: &adapters.Usage{PromptTokens: 50, CompletionTokens: 12, PromptTokensDetails: &adapters.PromptTokensDetails{CachedTokens: 30}}},
	}
	var buf bytes.Buffer
	e := NewEncoder(sseOf(&buf), "asked-model")
	for i := range chunks {
		if err := e.Chunk(&chunks[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.End(); err != nil {
		t.Fatal(err)
	}
	golden(t, "streams/text_tools.sse", buf.Bytes())
}

// An empty canonical stream still makes a well-formed Messages stream.
func TestEncoderEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := NewEncoder(sseOf(&buf), "m").End(); err != nil {
		t.Fatal(err)
	}
	golden(t, "streams/empty.sse", buf.Bytes())
}

// A whole answer re-expressed as a stream keeps its thinking block and signature.
func TestResponseEventsGolden(t *testing.T) {
	var r Response
	body := `{"id":"msg_9","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[` +
		`{"type":"thinking","thinking":"Think.","signature":"EqQB=="},{"type":"redacted_thinking","data":"EmwK"},` +
		`{"type":"text","text":"Answer."},{"type":"tool_use","id":"toolu_1","name":"Read","input":{"file_path":"a"}}],` +
		`"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":5,"cache_creation_input_tokens":1,"cache_read_input_tokens":2,"output_tokens":9}}`
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ResponseEvents(&r, sseOf(&buf)); err != nil {
		t.Fatal(err)
	}
	golden(t, "streams/degraded_thinking.sse", buf.Bytes())
}

// message_start reports the input count as Anthropic's does: the upstream's when its first
// chunk carries usage, gavel's estimate otherwise; message_delta carries the upstream's
// final usage exactly, or repeats message_start's input when the upstream reported none.
func TestEncoderInputTokens(t *testing.T) {
	final := &adapters.Usage{PromptTokens: 50, CompletionTokens: 12, PromptTokensDetails: &adapters.PromptTokensDetails{CachedTokens: 30}}
	early := &adapters.Usage{PromptTokens: 40, PromptTokensDetails: &adapters.PromptTokensDetails{CachedTokens: 8, CacheWriteTokens: 2}}
	for _, tc := range []struct {
		name         string
		estimate     int
		first, last  *adapters.Usage
		start, delta Usage
	}{
		{"estimate until the usage chunk", 37, nil, final, Usage{InputTokens: 37}, Usage{InputTokens: 20, CacheReadInputTokens: 30, OutputTokens: 12}},
		{"the upstream counted first", 37, early, final, Usage{InputTokens: 30, CacheReadInputTokens: 8, CacheCreationInputTokens: 2}, Usage{InputTokens: 20, CacheReadInputTokens: 30, OutputTokens: 12}},
		{"no usage at all", 37, nil, nil, Usage{InputTokens: 37}, Usage{InputTokens: 37}},
		{"no estimate", 0, nil, final, Usage{}, Usage{InputTokens: 20, CacheReadInputTokens: 30, OutputTokens: 12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type event struct {
				name string
				data []byte
			}
			var events []event
			e := NewEncoder(func(name string, v any) error {
				b, err := json.Marshal(v)
				events = append(events, event{name, b})
				return err
			}, "m")
			e.SetInputTokens(tc.estimate)
			chunks := []adapters.ChatChunk{
				{ID: "c1", Model: "m", Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{Content: ptr("hi")}}}, Usage: tc.first},
				{ID: "c1", Model: "m", Choices: []adapters.ChunkChoice{{FinishReason: ptr("stop")}}},
			}
			if tc.last != nil {
				chunks = append(chunks, adapters.ChatChunk{ID: "c1", Model: "m", Choices: []adapters.ChunkChoice{}, Usage: tc.last})
			}
			for i := range chunks {
				if err := e.Chunk(&chunks[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.End(); err != nil {
				t.Fatal(err)
			}
			var start struct {
				Message struct{ Usage Usage } `json:"message"`
			}
			var delta struct{ Usage Usage }
			json.Unmarshal(events[0].data, &start)
			json.Unmarshal(events[len(events)-2].data, &delta)
			if events[0].name != EventMessageStart || start.Message.Usage != tc.start {
				t.Errorf("%s usage %+v, want %+v", events[0].name, start.Message.Usage, tc.start)
			}
			if events[len(events)-2].name != EventMessageDelta || delta.Usage != tc.delta {
				t.Errorf("%s usage %+v, want %+v", events[len(events)-2].name, delta.Usage, tc.delta)
			}
		})
	}
}
