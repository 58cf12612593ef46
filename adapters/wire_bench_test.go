package adapters

import (
	"encoding/json"
	"testing"
)

// BenchmarkDecodeChatRequest is a typical two-message body through the one-pass decoder
// (fast) and through encoding/json and the extra-field pass it replaces (reflect).
func BenchmarkDecodeChatRequest(b *testing.B) {
	body := []byte(`{"model":"fast","messages":[{"role":"system","content":"You are brief."},{"role":"user","content":"Summarise policy-as-code."}],"temperature":0.2,"max_tokens":128}`)
	for name, decode := range map[string]func([]byte, *ChatRequest) error{"fast": DecodeChatRequest, "reflect": decodeReflect} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				var r ChatRequest
				if err := decode(body, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeChatResponse is a one-choice answer through AppendJSON (into a reused
// buffer, as the server does) and through json.Marshal.
func BenchmarkEncodeChatResponse(b *testing.B) {
	res := &ChatResponse{ID: "chatcmpl-1", Object: ObjectChatCompletion, Created: 1, Model: "gpt-4o-mini",
		Choices: []Choice{{Message: Message{Role: "assistant", Content: TextContent("Policy-as-code keeps routing rules reviewable and testable.")}, FinishReason: FinishStop}},
		Usage:   &Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for i := 0; i < b.N; i++ {
			buf, _ = res.AppendJSON(buf[:0])
		}
	})
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := json.Marshal(res); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecodeChatRequestText is the fast decoder on a body with message texts of the
// usual length (the load benchmark's: a system prompt and a question, ~300 bytes), where
// scanning strings a word at a time pays.
func BenchmarkDecodeChatRequestText(b *testing.B) {
	body := []byte(`{"model":"openai/gpt-4o-mini","messages":[` +
		`{"role":"system","content":"You are a concise assistant for an online bookshop. Answer in two sentences at most."},` +
		`{"role":"user","content":"Can you recommend a practical introduction to distributed systems, and is there an ebook edition?"}],` +
		`"temperature":0.2,"max_tokens":128}`)
	b.ReportAllocs()
	for b.Loop() {
		var r ChatRequest
		if err := DecodeChatRequest(body, &r); err != nil {
			b.Fatal(err)
		}
	}
}
