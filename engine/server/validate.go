package server

import (
	"github.com/gavel-gw/gavel/adapters"
)

// validRoles are the chat roles OpenAI accepts.
var validRoles = map[string]bool{"system": true, "developer": true, "user": true, "assistant": true, "tool": true, "function": true}

// validate rejects what no upstream would accept, before spending a policy evaluation.
func validate(r *adapters.ChatRequest) *APIError {
	if r.Model == "" {
		return errBadRequest("missing_required_parameter", "model", "you must provide a model parameter")
	}
	if len(r.Messages) == 0 {
		return errBadRequest("missing_required_parameter", "messages", "messages must be a non-empty array")
	}
	for i, m := range r.Messages {
		if !validRoles[m.Role] {
			return errBadRequest("invalid_value", "messages["+itoa(i)+"].role",
				"Invalid value for 'messages["+itoa(i)+"].role': '"+m.Role+"'. Supported values are: 'system', 'developer', 'user', 'assistant', 'tool' and 'function'.")
		}
		if m.Role == "tool" && m.ToolCallID == "" {
			return errBadRequest("missing_required_parameter", "messages["+itoa(i)+"].tool_call_id", "tool messages need a tool_call_id")
		}
		if m.Content == nil && len(m.ToolCalls) == 0 && m.Role != "assistant" {
			return errBadRequest("missing_required_parameter", "messages["+itoa(i)+"].content", "messages["+itoa(i)+"] has no content")
		}
	}
	if r.MaxTokens != nil && *r.MaxTokens < 1 {
		return errBadRequest("invalid_value", "max_tokens", "max_tokens must be at least 1")
	}
	if r.MaxCompletionTokens != nil && *r.MaxCompletionTokens < 1 {
		return errBadRequest("invalid_value", "max_completion_tokens", "max_completion_tokens must be at least 1")
	}
	if r.Temperature != nil && (*r.Temperature < 0 || *r.Temperature > 2) {
		return errBadRequest("invalid_value", "temperature", "temperature must be between 0 and 2")
	}
	if r.TopP != nil && (*r.TopP < 0 || *r.TopP > 1) {
		return errBadRequest("invalid_value", "top_p", "top_p must be between 0 and 1")
	}
	if r.N != nil && (*r.N < 1 || *r.N > 128) {
		return errBadRequest("invalid_value", "n", "n must be between 1 and 128")
	}
	for i, t := range r.Tools {
		if t.Type != "function" || t.Function.Name == "" {
			return errBadRequest("invalid_value", "tools["+itoa(i)+"]", "tools must be functions with a name")
		}
	}
	return nil
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
