package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/gavel-gw/gavel/adapters"
)

// RequestError is a request the Messages API would reject, or one gavel cannot express;
// Param names the offending field. The server answers it with a 400
// invalid_request_error.
type RequestError struct {
	Param string
	Msg   string
}

func (e *RequestError) Error() string {
	if e.Param == "" {
		return e.Msg
	}
	return e.Param + ": " + e.Msg
}

func reqErr(param, format string, args ...any) *RequestError {
	return &RequestError{Param: param, Msg: fmt.Sprintf(format, args...)}
}

// Decode parses and checks a Messages request body. count is true for count_tokens,
// which takes no max_tokens.
func Decode(body []byte, count bool) (*Request, error) {
	var r Request
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, &RequestError{Msg: "the request body is not valid JSON for the Messages API: " + jsonReason(err)}
	}
	if err := r.validate(count); err != nil {
		return nil, err
	}
	return &r, nil
}

func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "syntax error at byte " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		return "field '" + te.Field + "' has the wrong type (got " + te.Value + ")"
	}
	return err.Error()
}

var validRoles = map[string]bool{"user": true, "assistant": true}

func (r *Request) validate(count bool) error {
	if r.Model == "" {
		return reqErr("model", "Field required")
	}
	if !count {
		if r.MaxTokens == nil {
			return reqErr("max_tokens", "Field required")
		}
		if *r.MaxTokens < 1 {
			return reqErr("max_tokens", "must be at least 1")
		}
	}
	if len(r.Messages) == 0 {
		return reqErr("messages", "at least one message is required")
	}
	for i, m := range r.Messages {
		if !validRoles[m.Role] {
			return reqErr("messages."+strconv.Itoa(i)+".role", "Input should be 'user' or 'assistant'")
		}
		if m.Content.Blocks == nil && m.Content.String == "" && !(m.Role == "assistant" && i == len(r.Messages)-1) {
			return reqErr("messages."+strconv.Itoa(i)+".content", "messages must have non-empty content")
		}
		for j, b := range m.Content.Blocks {
			if b.Type == "" {
				return reqErr("messages."+strconv.Itoa(i)+".content."+strconv.Itoa(j)+".type", "Field required")
			}
		}
	}
	if r.Temperature != nil && (*r.Temperature < 0 || *r.Temperature > 1) {
		return reqErr("temperature", "must be between 0 and 1")
	}
	if r.TopP != nil && (*r.TopP < 0 || *r.TopP > 1) {
		return reqErr("top_p", "must be between 0 and 1")
	}
	for i, t := range r.Tools {
		if t.Name == "" {
			return reqErr("tools."+strconv.Itoa(i)+".name", "Field required")
		}
	}
	if tc := r.ToolChoice; tc != nil {
		switch tc.Type {
		case "auto", "any", "none":
		case "tool":
			if tc.Name == "" {
				return reqErr("tool_choice.name", "Field required")
			}
		default:
			return reqErr("tool_choice.type", "must be one of 'auto', 'any', 'tool', 'none'")
		}
	}
	if th := r.Thinking; th != nil && th.Type == "enabled" {
		if th.BudgetTokens < 1024 {
			return reqErr("thinking.budget_tokens", "must be at least 1024")
		}
	}
	return nil
}

// IsClientTool reports whether a tool is the client's own (a function with a schema), not
// one of Anthropic's server or versioned tools.
func (t *Tool) IsClientTool() bool { return t.Type == "" || t.Type == "custom" }

// ToCanonical expresses the request as a canonical chat request: what the policy judges
// and what a target that does not speak the Messages API receives. Thinking blocks, cache
// control, top_k and server tools have no canonical form and are left out (see the
// package comment); everything else is kept.
func ToCanonical(r *Request) (*adapters.ChatRequest, error) {
	out := &adapters.ChatRequest{Model: r.Model, Stream: r.Stream, MaxTokens: r.MaxTokens,
		Temperature: r.Temperature, TopP: r.TopP}
	if r.Stream {
		// The usage ends the stream's message_delta, so it is always asked for.
		out.StreamOptions = &adapters.StreamOptions{IncludeUsage: true}
	}
	if len(r.StopSequences) > 0 {
		out.Stop = append(adapters.Stop(nil), r.StopSequences...)
	}
	if r.Metadata != nil && r.Metadata.UserID != "" {
		out.User = r.Metadata.UserID
	}
	if th := r.Thinking; th != nil && th.Type == "enabled" {
		out.ReasoningEffort = effort(th.BudgetTokens)
	}
	if s := r.System; s != nil {
		text, err := plainText(s, "system")
		if err != nil {
			return nil, err
		}
		if text != "" {
			out.Messages = append(out.Messages, adapters.Message{Role: "system", Content: adapters.TextContent(text)})
		}
	}
	for i := range r.Messages {
		msgs, err := canonicalMessages(&r.Messages[i], "messages."+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		out.Messages = append(out.Messages, msgs...)
	}
	for _, t := range r.Tools {
		if !t.IsClientTool() {
			continue // server tools run at Anthropic only
		}
		schema := t.InputSchema
		if len(bytes.TrimSpace(schema)) == 0 {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out.Tools = append(out.Tools, adapters.Tool{Type: "function", Function: adapters.FunctionDef{Name: t.Name, Description: t.Description, Parameters: schema}})
	}
	if tc := r.ToolChoice; tc != nil && len(out.Tools) > 0 {
		switch tc.Type {
		case "auto":
			out.ToolChoice = json.RawMessage(`"auto"`)
		case "any":
			out.ToolChoice = json.RawMessage(`"required"`)
		case "none":
			out.ToolChoice = json.RawMessage(`"none"`)
		case "tool":
			b, _ := json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": tc.Name}})
			out.ToolChoice = b
		}
		if tc.DisableParallelToolUse {
			f := false
			out.ParallelToolCalls = &f
		}
	}
	return out, nil
}

// effort maps a thinking budget to a reasoning effort for targets that take one.
func effort(budget int) string {
	switch {
	case budget < 4096:
		return "low"
	case budget < 16384:
		return "medium"
	}
	return "high"
}

// plainText flattens a system prompt or tool result to text; only text blocks may be in it.
func plainText(t *Text, param string) (string, error) {
	if t.Blocks == nil {
		return t.String, nil
	}
	var parts []string
	for j, b := range t.Blocks {
		if b.Type != "text" {
			return "", reqErr(param+"."+strconv.Itoa(j)+".type", "only text blocks are allowed here, got %q", b.Type)
		}
		parts = append(parts, b.Text)
	}
	return strings.Join(parts, "\n"), nil
}

// canonicalMessages converts one turn. A user turn's tool results become "tool" messages
// (before the rest of the turn, as the conversation had them answered); an assistant
// turn's tool_use blocks become tool calls.
func canonicalMessages(m *Message, param string) ([]adapters.Message, error) {
	if m.Content.Blocks == nil {
		return []adapters.Message{{Role: m.Role, Content: adapters.TextContent(m.Content.String)}}, nil
	}
	var out []adapters.Message
	var parts []adapters.ContentPart
	var calls []adapters.ToolCall
	for j := range m.Content.Blocks {
		b := &m.Content.Blocks[j]
		p := param + ".content." + strconv.Itoa(j)
		switch b.Type {
		case "text":
			parts = append(parts, adapters.ContentPart{Type: "text", Text: b.Text})
		case "image":
			if m.Role != "user" {
				return nil, reqErr(p, "image blocks are only allowed in user messages")
			}
			url, err := imageURL(b.Source, p)
			if err != nil {
				return nil, err
			}
			if url != "" {
				parts = append(parts, adapters.ContentPart{Type: "image_url", ImageURL: &adapters.ImageURL{URL: url}})
			}
		case "document":
			part, err := documentPart(b, p)
			if err != nil {
				return nil, err
			}
			if part.Type != "" {
				parts = append(parts, part)
			}
		case "tool_use":
			if m.Role != "assistant" {
				return nil, reqErr(p, "tool_use blocks are only allowed in assistant messages")
			}
			if b.ID == "" || b.Name == "" {
				return nil, reqErr(p, "tool_use blocks need an id and a name")
			}
			calls = append(calls, adapters.ToolCall{ID: b.ID, Type: "function", Function: adapters.FunctionCall{Name: b.Name, Arguments: arguments(b.Input)}})
		case "tool_result":
			if m.Role != "user" {
				return nil, reqErr(p, "tool_result blocks are only allowed in user messages")
			}
			if b.ToolUseID == "" {
				return nil, reqErr(p+".tool_use_id", "Field required")
			}
			msg, err := toolMessage(b, p)
			if err != nil {
				return nil, err
			}
			out = append(out, msg)
		case "thinking", "redacted_thinking":
			// No canonical form: the model's earlier reasoning reaches only Anthropic
			// targets, by passthrough.
		default:
			// server_tool_use, web_search_tool_result, search_result, container_upload…:
			// Anthropic's own, passed through to it and left out of a translation.
		}
	}
	if len(parts) > 0 || len(calls) > 0 {
		msg := adapters.Message{Role: m.Role, ToolCalls: calls}
		if len(parts) > 0 {
			msg.Content = &adapters.Content{Parts: parts}
			if len(parts) == 1 && parts[0].Type == "text" {
				msg.Content = adapters.TextContent(parts[0].Text)
			}
		}
		out = append(out, msg)
	}
	return out, nil
}

// imageURL renders an image source as the URL a canonical image part carries; "" for a
// source only Anthropic reads.
func imageURL(s *Source, param string) (string, error) {
	if s == nil {
		return "", reqErr(param+".source", "Field required")
	}
	switch s.Type {
	case "base64":
		if s.MediaType == "" || s.Data == "" {
			return "", reqErr(param+".source", "base64 sources need media_type and data")
		}
		return "data:" + s.MediaType + ";base64," + s.Data, nil
	case "url":
		if s.URL == "" {
			return "", reqErr(param+".source.url", "Field required")
		}
		return s.URL, nil
	}
	// Other sources (a Files API file_id…) are Anthropic's: passed through to it, left out
	// of a translation.
	return "", nil
}

// documentPart converts a document: plain text becomes text, a base64 PDF a file part; the
// zero part for a source only Anthropic reads.
func documentPart(b *Block, param string) (adapters.ContentPart, error) {
	s := b.Source
	if s == nil {
		return adapters.ContentPart{}, reqErr(param+".source", "Field required")
	}
	switch {
	case s.Type == "text":
		return adapters.ContentPart{Type: "text", Text: s.Data}, nil
	case s.Type == "base64" && s.MediaType == "application/pdf":
		file, _ := json.Marshal(map[string]string{"filename": orDefault(b.Title, "document.pdf"), "file_data": "data:application/pdf;base64," + s.Data})
		return adapters.ContentPart{Type: "file", File: file}, nil
	}
	// Other sources (URLs, files, content blocks) are Anthropic's: passed through to it,
	// left out of a translation.
	return adapters.ContentPart{}, nil
}

// toolMessage converts a tool_result block into a "tool" message.
func toolMessage(b *Block, param string) (adapters.Message, error) {
	msg := adapters.Message{Role: "tool", ToolCallID: b.ToolUseID, Content: adapters.TextContent("")}
	if c := b.Content; c != nil {
		if c.Blocks == nil {
			msg.Content = adapters.TextContent(c.String)
		} else {
			var parts []adapters.ContentPart
			for j := range c.Blocks {
				inner := &c.Blocks[j]
				switch inner.Type {
				case "text":
					parts = append(parts, adapters.ContentPart{Type: "text", Text: inner.Text})
				case "image":
					url, err := imageURL(inner.Source, param+".content."+strconv.Itoa(j))
					if err != nil {
						return msg, err
					}
					parts = append(parts, adapters.ContentPart{Type: "image_url", ImageURL: &adapters.ImageURL{URL: url}})
				}
			}
			msg.Content = &adapters.Content{Parts: parts}
			if parts == nil {
				msg.Content = adapters.TextContent("")
			}
		}
	}
	if b.IsError {
		// OpenAI's tool messages have no error flag; the text says it.
		msg.Content = adapters.TextContent("Error: " + msg.Content.String())
	}
	return msg, nil
}

// arguments renders a tool_use input as a canonical arguments string.
func arguments(input json.RawMessage) string {
	b := bytes.TrimSpace(input)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return "{}"
	}
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(b)
	}
	return buf.String()
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// FieldNames names, sorted, the members a Messages body held, for input.request.fields:
// its top-level members, and where it set them the paths of cache_control
// (system[].cache_control, messages[].content[].cache_control), so a policy can refuse or
// route by parameter as it does for chat.
func FieldNames(body []byte, r *Request) []string {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return []string{}
	}
	names := make([]string, 0, len(top)+2)
	for k := range top {
		names = append(names, k)
	}
	if s := r.System; s != nil {
		for _, b := range s.Blocks {
			if len(b.CacheControl) > 0 {
				names = append(names, "system[].cache_control")
				break
			}
		}
	}
cached:
	for _, m := range r.Messages {
		for _, b := range m.Content.Blocks {
			if len(b.CacheControl) > 0 {
				names = append(names, "messages[].content[].cache_control")
				break cached
			}
		}
	}
	sort.Strings(names)
	return names
}
