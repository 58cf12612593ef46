package anthropic

import (
	"encoding/json"
	"strings"

	"github.com/gavel-gw/gavel/adapters"
)

// StopReason maps a canonical finish_reason to Anthropic's stop_reason.
func StopReason(finish string) string {
	switch finish {
	case adapters.FinishLength:
		return "max_tokens"
	case adapters.FinishToolCalls:
		return "tool_use"
	case adapters.FinishContentFilter:
		return "refusal"
	}
	return "end_turn"
}

// UsageOf converts canonical usage: Anthropic's input_tokens excludes the cached input,
// which canonical prompt_tokens includes.
func UsageOf(u *adapters.Usage) Usage {
	if u == nil {
		return Usage{}
	}
	out := Usage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens}
	if d := u.PromptTokensDetails; d != nil {
		out.CacheReadInputTokens, out.CacheCreationInputTokens = d.CachedTokens, d.CacheWriteTokens
		out.InputTokens = max(0, u.PromptTokens-d.CachedTokens-d.CacheWriteTokens)
	}
	return out
}

// MessageID makes a canonical answer's id look like Anthropic's ("msg_…").
func MessageID(id string) string {
	if strings.HasPrefix(id, "msg_") {
		return id
	}
	return "msg_" + strings.TrimPrefix(id, "chatcmpl-")
}

// FromCanonical expresses a canonical answer as a Messages API answer: the first choice's
// text as a text block, its tool calls as tool_use blocks.
func FromCanonical(r *adapters.ChatResponse) *Response {
	out := &Response{ID: MessageID(r.ID), Type: "message", Role: "assistant", Model: r.Model, Content: []Block{}, Usage: UsageOf(r.Usage)}
	stop := "end_turn"
	if len(r.Choices) > 0 {
		ch := &r.Choices[0]
		if text := ch.Message.Content.String(); text != "" {
			out.Content = append(out.Content, Block{Type: "text", Text: text})
		} else if ch.Message.Refusal != "" {
			out.Content = append(out.Content, Block{Type: "text", Text: ch.Message.Refusal})
		}
		for _, tc := range ch.Message.ToolCalls {
			out.Content = append(out.Content, Block{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input(tc.Function.Arguments)})
		}
		stop = StopReason(ch.FinishReason)
	}
	out.StopReason = &stop
	return out
}

// input renders canonical arguments as a tool_use input, which must be an object.
func input(args string) json.RawMessage {
	b := []byte(strings.TrimSpace(args))
	if len(b) == 0 || !json.Valid(b) || b[0] != '{' {
		return json.RawMessage(`{}`)
	}
	return b
}
