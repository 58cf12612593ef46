package fakeanthropic

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// validate checks a decoded messages request the way the Messages API does for the basics
// and returns the invalid_request_error message, or "" when the body is acceptable. The
// messages follow Anthropic's wording where it is known.
func validate(body map[string]any) string {
	model, ok := body["model"]
	switch m, isString := model.(string); {
	case !ok:
		return "model: Field required"
	case !isString:
		return "model: Input should be a valid string"
	case m == "":
		return "model: String should have at least 1 character"
	}

	mt, ok := body["max_tokens"]
	switch n, isNumber := mt.(float64); {
	case !ok:
		return "max_tokens: Field required"
	case !isNumber || n != math.Trunc(n):
		return "max_tokens: Input should be a valid integer"
	case n < 1:
		return "max_tokens: Input should be greater than or equal to 1"
	}

	if v, ok := body["stream"]; ok {
		if _, isBool := v.(bool); !isBool {
			return "stream: Input should be a valid boolean"
		}
	}
	if v, ok := body["temperature"]; ok {
		switch t, isNumber := v.(float64); {
		case !isNumber:
			return "temperature: Input should be a valid number"
		case t < 0:
			return "temperature: Input should be greater than or equal to 0"
		case t > 1:
			return "temperature: Input should be less than or equal to 1"
		}
	}
	if msg := validateSystem(body["system"]); msg != "" {
		return msg
	}
	if msg := validateTools(body["tools"]); msg != "" {
		return msg
	}

	raw, ok := body["messages"]
	if !ok {
		return "messages: Field required"
	}
	msgs, ok := raw.([]any)
	if !ok {
		return "messages: Input should be a valid list"
	}
	if len(msgs) == 0 {
		return "messages: at least one message is required"
	}
	var prevRole string
	var pendingToolUse []string // tool_use ids of the previous assistant message
	for i, raw := range msgs {
		m, ok := raw.(map[string]any)
		if !ok {
			return fmt.Sprintf("messages.%d: Input should be a valid dictionary", i)
		}
		role, _ := m["role"].(string)
		switch {
		case m["role"] == nil:
			return fmt.Sprintf("messages.%d.role: Field required", i)
		case role == "system":
			return `messages: Unexpected role "system". The Messages API accepts a top-level ` +
				"`system`" + ` parameter, not "system" as an input message role.`
		case role != "user" && role != "assistant":
			return fmt.Sprintf("messages.%d.role: Input should be 'user' or 'assistant'", i)
		case i == 0 && role != "user":
			return `messages: first message must use the "user" role`
		case role == prevRole:
			return fmt.Sprintf(`messages: roles must alternate between "user" and "assistant", but found multiple %q roles in a row`, role)
		}
		last := i == len(msgs)-1
		blocks, msg := contentBlocks(m, i, role, last)
		if msg != "" {
			return msg
		}

		// tool_use / tool_result pairing across consecutive messages.
		var toolUse []string
		results := map[string]bool{}
		seenOther := false
		for j, b := range blocks {
			typ, _ := b["type"].(string)
			switch typ {
			case "tool_use":
				id, _ := b["id"].(string)
				toolUse = append(toolUse, id)
			case "tool_result":
				id, _ := b["tool_use_id"].(string)
				if seenOther {
					return fmt.Sprintf("messages.%d: `tool_result` blocks must come first in the content array, before any other content", i)
				}
				if !slices.Contains(pendingToolUse, id) {
					return fmt.Sprintf("messages.%d.content.%d: unexpected `tool_use_id` found in `tool_result` blocks: %s. "+
						"Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", i, j, id)
				}
				results[id] = true
			default:
				seenOther = true
			}
		}
		var missing []string
		for _, id := range pendingToolUse {
			if !results[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return fmt.Sprintf("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. "+
				"Each `tool_use` block must have a corresponding `tool_result` block in the next message.", i, strings.Join(missing, ", "))
		}
		pendingToolUse = toolUse
		prevRole = role
	}
	return ""
}

// contentBlocks checks a message's content and returns it as blocks (a string content is
// one text block).
func contentBlocks(m map[string]any, i int, role string, last bool) ([]map[string]any, string) {
	empty := fmt.Sprintf("messages.%d: all messages must have non-empty content except for the optional final assistant message", i)
	finalAssistant := last && role == "assistant"
	switch c := m["content"].(type) {
	case nil:
		if _, ok := m["content"]; !ok {
			return nil, fmt.Sprintf("messages.%d.content: Field required", i)
		}
		return nil, fmt.Sprintf("messages.%d.content: Input should be a valid string or list", i)
	case string:
		if msg := checkText(c, i, finalAssistant); msg != "" {
			return nil, msg
		}
		if c == "" {
			return nil, ""
		}
		return []map[string]any{{"type": "text", "text": c}}, ""
	case []any:
		if len(c) == 0 && !finalAssistant {
			return nil, empty
		}
		blocks := make([]map[string]any, 0, len(c))
		for j, raw := range c {
			b, ok := raw.(map[string]any)
			if !ok {
				return nil, fmt.Sprintf("messages.%d.content.%d: Input should be a valid dictionary", i, j)
			}
			typ, ok := b["type"].(string)
			if !ok {
				return nil, fmt.Sprintf("messages.%d.content.%d.type: Field required", i, j)
			}
			switch typ {
			case "text":
				text, ok := b["text"].(string)
				if !ok {
					return nil, fmt.Sprintf("messages.%d.content.%d.text: Field required", i, j)
				}
				if text == "" {
					return nil, "messages: text content blocks must be non-empty"
				}
				if msg := checkText(text, i, finalAssistant && j == len(c)-1); msg != "" {
					return nil, msg
				}
			case "tool_use":
				if role != "assistant" {
					return nil, fmt.Sprintf("messages.%d.content.%d: `tool_use` blocks are only allowed in assistant messages", i, j)
				}
				for _, f := range []string{"id", "name"} {
					if s, _ := b[f].(string); s == "" {
						return nil, fmt.Sprintf("messages.%d.content.%d.tool_use.%s: Field required", i, j, f)
					}
				}
				if _, ok := b["input"].(map[string]any); !ok {
					return nil, fmt.Sprintf("messages.%d.content.%d.tool_use.input: Input should be a valid dictionary", i, j)
				}
			case "tool_result":
				if role != "user" {
					return nil, fmt.Sprintf("messages.%d.content.%d: `tool_result` blocks are only allowed in user messages", i, j)
				}
				if s, _ := b["tool_use_id"].(string); s == "" {
					return nil, fmt.Sprintf("messages.%d.content.%d.tool_result.tool_use_id: Field required", i, j)
				}
			}
			blocks = append(blocks, b)
		}
		return blocks, ""
	default:
		return nil, fmt.Sprintf("messages.%d.content: Input should be a valid string or list", i)
	}
}

// checkText applies Anthropic's rules for a text: non-empty (except as the whole content of
// a final assistant message, a prefill), not only whitespace, and no trailing whitespace
// at the end of a final assistant prefill.
func checkText(text string, i int, finalAssistant bool) string {
	switch {
	case text == "" && finalAssistant:
		return ""
	case text == "":
		return fmt.Sprintf("messages.%d: all messages must have non-empty content except for the optional final assistant message", i)
	case strings.TrimSpace(text) == "":
		return "messages: text content blocks must contain non-whitespace text"
	case finalAssistant && strings.TrimRight(text, " \t\r\n") != text:
		return "messages: final assistant content cannot end with trailing whitespace"
	}
	return ""
}

// validateSystem accepts a string or a list of text blocks.
func validateSystem(v any) string {
	switch s := v.(type) {
	case nil, string:
		return ""
	case []any:
		for j, raw := range s {
			b, ok := raw.(map[string]any)
			if !ok || b["type"] != "text" {
				return fmt.Sprintf("system.%d: Input should be a valid text block", j)
			}
			if text, _ := b["text"].(string); text == "" {
				return "system: text content blocks must be non-empty"
			}
		}
		return ""
	}
	return "system: Input should be a valid string or list"
}

// validateTools checks that custom tools have a name and an input_schema object.
func validateTools(v any) string {
	if v == nil {
		return ""
	}
	tools, ok := v.([]any)
	if !ok {
		return "tools: Input should be a valid list"
	}
	for i, raw := range tools {
		t, ok := raw.(map[string]any)
		if !ok {
			return fmt.Sprintf("tools.%d: Input should be a valid dictionary", i)
		}
		if typ, _ := t["type"].(string); typ != "" && typ != "custom" {
			continue // a server tool (web_search_20250305, ...): not checked
		}
		if name, _ := t["name"].(string); name == "" {
			return fmt.Sprintf("tools.%d.custom.name: Field required", i)
		}
		if _, ok := t["input_schema"].(map[string]any); !ok {
			return fmt.Sprintf("tools.%d.custom.input_schema: Field required", i)
		}
	}
	return ""
}
