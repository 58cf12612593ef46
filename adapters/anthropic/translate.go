package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gavel-gw/gavel/adapters"
)

// translateError is a request the Messages API cannot express; the provider reports it
// as KindBadRequest without sending anything.
type translateError struct{ msg string }

func (e *translateError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &translateError{msg: fmt.Sprintf(format, args...)}
}

// emptySchema is the input_schema of a function declared without parameters: Anthropic
// requires one, and an object without properties is what "no parameters" means.
var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

var emptyObject = json.RawMessage(`{}`)

// translateRequest builds the Messages API request for a canonical request. It never
// mutates req; the result may share memory with it (tool schemas), so it is used before
// req can change.
func translateRequest(req *adapters.ChatRequest, defaultMaxTokens int, stream bool) (*messagesRequest, error) {
	if req.N != nil && *req.N > 1 {
		return nil, badRequest("n > 1 is not supported by the Anthropic Messages API")
	}
	out := &messagesRequest{Model: req.Model, Stream: stream}

	switch {
	case req.MaxCompletionTokens != nil:
		out.MaxTokens = *req.MaxCompletionTokens
	case req.MaxTokens != nil:
		out.MaxTokens = *req.MaxTokens
	default:
		out.MaxTokens = defaultMaxTokens
	}
	if req.Temperature != nil {
		t := min(max(*req.Temperature, 0), 1) // OpenAI allows 0–2, Anthropic 0–1
		out.Temperature = &t
	}
	if req.TopP != nil && req.Temperature == nil {
		// Current models reject temperature and top_p together ("cannot both be specified
		// for this model"), and Anthropic advises setting one; temperature is kept.
		v := *req.TopP
		out.TopP = &v
	}
	for _, s := range req.Stop {
		if s != "" {
			out.StopSequences = append(out.StopSequences, s)
		}
	}
	if req.User != "" {
		out.Metadata = &wireMetadata{UserID: req.User}
	}
	if err := translateExtra(req, out); err != nil {
		return nil, err
	}

	var (
		system   []wireBlock
		sysFirst []bool // the block opens a system message (texts of one message join with \n)
	)
	for i := range req.Messages {
		m := &req.Messages[i]
		var (
			role   string
			blocks []wireBlock
			err    error
		)
		switch m.Role {
		case "system", "developer":
			s, err := systemBlocks(m.Content)
			if err != nil {
				return nil, badRequest("messages[%d]: %v", i, err)
			}
			if err := cacheLast(s, m.Extra); err != nil {
				return nil, badRequest("messages[%d]: %v", i, err)
			}
			for k := range s {
				sysFirst = append(sysFirst, k == 0)
			}
			system = append(system, s...)
			continue
		case "user":
			role = "user"
			blocks, err = userBlocks(m.Content, true)
		case "assistant":
			role = "assistant"
			blocks, err = assistantBlocks(m)
		case "tool":
			role = "user"
			blocks, err = toolResultBlocks(m)
		default:
			err = fmt.Errorf("role %q is not supported", m.Role)
		}
		if err == nil {
			err = cacheLast(blocks, m.Extra)
		}
		if err != nil {
			return nil, badRequest("messages[%d]: %v", i, err)
		}
		if len(blocks) == 0 {
			// An empty message: the API rejects empty content, and dropping it loses nothing.
			continue
		}
		if n := len(out.Messages); n > 0 && out.Messages[n-1].Role == role {
			out.Messages[n-1].Content = append(out.Messages[n-1].Content, blocks...)
			continue
		}
		out.Messages = append(out.Messages, wireMessage{Role: role, Content: blocks})
	}
	if out.Messages == nil {
		out.Messages = []wireMessage{}
	}
	out.System = systemPrompt(system, sysFirst)

	if err := translateTools(req, out); err != nil {
		return nil, err
	}
	if err := thinkingConfig(req, out); err != nil {
		return nil, err
	}
	return out, nil
}

// systemBlocks converts a system or developer message: the system prompt is text only.
func systemBlocks(c *adapters.Content) ([]wireBlock, error) {
	if c == nil {
		return nil, nil
	}
	if c.Parts == nil {
		if c.Text == "" {
			return nil, nil
		}
		return []wireBlock{{Type: "text", Text: c.Text}}, nil
	}
	var blocks []wireBlock
	for j, p := range c.Parts {
		if p.Type != "text" {
			return nil, fmt.Errorf("%q parts are not supported in a system message", p.Type)
		}
		if p.Text != "" {
			b := wireBlock{Type: "text", Text: p.Text}
			if err := setCache(&b, p.Extra); err != nil {
				return nil, fmt.Errorf("content[%d]: %v", j, err)
			}
			blocks = append(blocks, b)
		}
	}
	return blocks, nil
}

// systemPrompt is the system prompt of blocks: their texts joined (a message's parts by a
// newline, messages by a blank line), unless a block carries cache_control, which only
// the block form can say. first[i] is set when blocks[i] opens a message.
func systemPrompt(blocks []wireBlock, first []bool) any {
	if len(blocks) == 0 {
		return nil
	}
	var b strings.Builder
	for i := range blocks {
		if blocks[i].CacheControl != nil {
			return blocks
		}
		switch {
		case i == 0:
		case first[i]:
			b.WriteString("\n\n")
		default:
			b.WriteByte('\n')
		}
		b.WriteString(blocks[i].Text)
	}
	return b.String()
}

// userBlocks converts user (or tool result) content: text and images.
func userBlocks(c *adapters.Content, images bool) ([]wireBlock, error) {
	if c == nil {
		return nil, nil
	}
	if c.Parts == nil {
		if c.Text == "" {
			return nil, nil
		}
		return []wireBlock{{Type: "text", Text: c.Text}}, nil
	}
	blocks := make([]wireBlock, 0, len(c.Parts))
	for j, p := range c.Parts {
		switch p.Type {
		case "text":
			if p.Text != "" {
				b := wireBlock{Type: "text", Text: p.Text}
				if err := setCache(&b, p.Extra); err != nil {
					return nil, fmt.Errorf("content[%d]: %v", j, err)
				}
				blocks = append(blocks, b)
			}
		case "image_url":
			if !images {
				return nil, fmt.Errorf("content[%d]: image parts are not supported here", j)
			}
			b, err := imageBlock(p.ImageURL)
			if err == nil {
				err = setCache(&b, p.Extra)
			}
			if err != nil {
				return nil, fmt.Errorf("content[%d]: %v", j, err)
			}
			blocks = append(blocks, b)
		default:
			return nil, fmt.Errorf("content[%d]: %q parts are not supported by the Anthropic Messages API", j, p.Type)
		}
	}
	return blocks, nil
}

// imageBlock converts an image reference: a base64 data: URL or an http(s) URL.
func imageBlock(img *adapters.ImageURL) (wireBlock, error) {
	if img == nil || img.URL == "" {
		return wireBlock{}, errors.New("image_url part without a url")
	}
	u := img.URL
	switch {
	case hasPrefixFold(u, "data:"):
		meta, data, ok := strings.Cut(u[len("data:"):], ",")
		if !ok {
			return wireBlock{}, errors.New("image data URL has no data")
		}
		mediaType, params, _ := strings.Cut(meta, ";")
		base64 := false
		for _, p := range strings.Split(params, ";") {
			if strings.EqualFold(strings.TrimSpace(p), "base64") {
				base64 = true
			}
		}
		mediaType = strings.ToLower(strings.TrimSpace(mediaType))
		if !base64 || mediaType == "" || data == "" {
			return wireBlock{}, errors.New("image data URL must be data:<media type>;base64,<data>")
		}
		return wireBlock{Type: "image", Source: &wireImageSource{Type: "base64", MediaType: mediaType, Data: data}}, nil
	case hasPrefixFold(u, "https://"), hasPrefixFold(u, "http://"):
		return wireBlock{Type: "image", Source: &wireImageSource{Type: "url", URL: u}}, nil
	}
	return wireBlock{}, errors.New("image url must be an http(s) URL or a base64 data: URL")
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// assistantBlocks converts an assistant turn: its text, then its tool calls.
func assistantBlocks(m *adapters.Message) ([]wireBlock, error) {
	var blocks []wireBlock
	if c := m.Content; c != nil {
		if c.Parts == nil {
			if c.Text != "" {
				blocks = append(blocks, wireBlock{Type: "text", Text: c.Text})
			}
		} else {
			for j, p := range c.Parts {
				switch p.Type {
				case "text", "refusal":
					if p.Text != "" {
						b := wireBlock{Type: "text", Text: p.Text}
						if err := setCache(&b, p.Extra); err != nil {
							return nil, fmt.Errorf("content[%d]: %v", j, err)
						}
						blocks = append(blocks, b)
					}
				default:
					return nil, fmt.Errorf("content[%d]: %q parts are not supported in an assistant message", j, p.Type)
				}
			}
		}
	}
	if len(blocks) == 0 && m.Refusal != "" {
		// What the model said when it refused is part of the conversation.
		blocks = append(blocks, wireBlock{Type: "text", Text: m.Refusal})
	}
	for j := range m.ToolCalls {
		tc := &m.ToolCalls[j]
		if tc.ID == "" {
			return nil, fmt.Errorf("tool_calls[%d]: id is required", j)
		}
		if tc.Function.Name == "" {
			return nil, fmt.Errorf("tool_calls[%d]: function name is required", j)
		}
		input, err := toolInput(tc.Function.Arguments)
		if err != nil {
			return nil, fmt.Errorf("tool_calls[%d] (%s): %v", j, tc.Function.Name, err)
		}
		blocks = append(blocks, wireBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
	}
	return blocks, nil
}

// toolInput parses a tool call's arguments into the object tool_use.input must be. Empty
// arguments, which some clients send for a function without parameters, mean {}.
func toolInput(args string) (json.RawMessage, error) {
	b := bytes.TrimSpace([]byte(args))
	if len(b) == 0 {
		return emptyObject, nil
	}
	if !json.Valid(b) {
		return nil, errors.New("arguments are not valid JSON")
	}
	if b[0] != '{' {
		return nil, errors.New("arguments must be a JSON object")
	}
	var buf bytes.Buffer
	buf.Grow(len(b))
	if err := json.Compact(&buf, b); err != nil {
		return nil, errors.New("arguments are not valid JSON")
	}
	return buf.Bytes(), nil
}

// toolResultBlocks converts a "tool" message into a tool_result block.
func toolResultBlocks(m *adapters.Message) ([]wireBlock, error) {
	if m.ToolCallID == "" {
		return nil, errors.New("tool message without tool_call_id")
	}
	b := wireBlock{Type: "tool_result", ToolUseID: m.ToolCallID}
	if c := m.Content; c != nil {
		if c.Parts == nil {
			if c.Text != "" {
				b.Content = c.Text
			}
		} else {
			inner, err := userBlocks(c, true)
			if err != nil {
				return nil, err
			}
			if len(inner) > 0 {
				b.Content = inner
			}
		}
	}
	return []wireBlock{b}, nil
}

// translateTools converts tools, tool_choice and parallel_tool_calls. Without tools,
// tool_choice and parallel_tool_calls mean nothing and are not sent: Anthropic rejects a
// tool_choice that has no tools.
func translateTools(req *adapters.ChatRequest, out *messagesRequest) error {
	if len(req.Tools) == 0 {
		return nil
	}
	out.Tools = make([]wireTool, 0, len(req.Tools))
	for i, t := range req.Tools {
		if t.Type != "" && t.Type != "function" {
			return badRequest("tools[%d]: tool type %q is not supported", i, t.Type)
		}
		if t.Function.Name == "" {
			return badRequest("tools[%d]: function name is required", i)
		}
		schema := emptySchema
		if p := bytes.TrimSpace(t.Function.Parameters); len(p) > 0 && !bytes.Equal(p, []byte("null")) {
			if !json.Valid(p) || p[0] != '{' {
				return badRequest("tools[%d]: parameters must be a JSON object", i)
			}
			schema = p
		}
		out.Tools = append(out.Tools, wireTool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: schema})
	}

	var tc *wireToolChoice
	if raw := bytes.TrimSpace(req.ToolChoice); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		var err error
		if tc, err = toolChoice(raw); err != nil {
			return err
		}
	}
	if req.ParallelToolCalls != nil && !*req.ParallelToolCalls {
		if tc == nil {
			tc = &wireToolChoice{Type: "auto"}
		}
		if tc.Type != "none" { // {"type":"none"} takes no other field
			tc.DisableParallelToolUse = true
		}
	}
	out.ToolChoice = tc
	return nil
}

// toolChoice converts OpenAI's tool_choice: "auto", "required", "none", or
// {"type":"function","function":{"name":X}}.
func toolChoice(raw []byte) (*wireToolChoice, error) {
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, badRequest("tool_choice is not valid JSON")
		}
		switch s {
		case "auto":
			return &wireToolChoice{Type: "auto"}, nil
		case "required":
			return &wireToolChoice{Type: "any"}, nil
		case "none":
			return &wireToolChoice{Type: "none"}, nil
		}
		return nil, badRequest("tool_choice %q is not supported", s)
	}
	var obj struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, badRequest("tool_choice must be a string or an object")
	}
	if obj.Type != "function" || obj.Function.Name == "" {
		return nil, badRequest("tool_choice must name a function: {\"type\":\"function\",\"function\":{\"name\":…}}")
	}
	return &wireToolChoice{Type: "tool", Name: obj.Function.Name}, nil
}

// finishReason maps Anthropic's stop_reason to OpenAI's finish_reason.
func finishReason(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return adapters.FinishLength
	case "tool_use":
		return adapters.FinishToolCalls
	case "refusal":
		return adapters.FinishContentFilter
	}
	// end_turn, stop_sequence, pause_turn, and any reason added later.
	return adapters.FinishStop
}

// usage converts Anthropic's counts. Anthropic's input_tokens excludes cached input, while
// OpenAI's prompt_tokens includes it, so cache writes and reads are added back in.
func usage(u *wireUsage) *adapters.Usage {
	in, out, write, read := val(u.InputTokens), val(u.OutputTokens), val(u.CacheCreationInputTokens), val(u.CacheReadInputTokens)
	prompt := in + write + read
	return &adapters.Usage{
		PromptTokens:        prompt,
		CompletionTokens:    out,
		TotalTokens:         prompt + out,
		PromptTokensDetails: &adapters.PromptTokensDetails{CachedTokens: read, CacheWriteTokens: write},
	}
}

func val(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// translateResponse converts a non-streamed answer. created is the Unix time to stamp,
// since Anthropic's answer carries none.
func translateResponse(w *messageResponse, model string, created int64) *adapters.ChatResponse {
	var text strings.Builder
	var calls []adapters.ToolCall
	for i := range w.Content {
		b := &w.Content[i]
		switch b.Type {
		case "text":
			// Adjacent text blocks (split around citations) are one text.
			text.WriteString(b.Text)
		case "tool_use":
			calls = append(calls, adapters.ToolCall{
				ID: b.ID, Type: "function",
				Function: adapters.FunctionCall{Name: b.Name, Arguments: compactArguments(b.Input)},
			})
		}
	}
	msg := adapters.Message{Role: "assistant", ToolCalls: calls}
	if text.Len() > 0 || len(calls) == 0 {
		msg.Content = adapters.TextContent(text.String())
	}
	if w.Model != "" {
		model = w.Model
	}
	return &adapters.ChatResponse{
		ID:      w.ID,
		Object:  adapters.ObjectChatCompletion,
		Created: created,
		Model:   model,
		Choices: []adapters.Choice{{Index: 0, Message: msg, FinishReason: finishReason(w.StopReason)}},
		Usage:   usage(&w.Usage),
	}
}

// compactArguments renders a tool_use input as OpenAI's arguments string.
func compactArguments(input json.RawMessage) string {
	b := bytes.TrimSpace(input)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return "{}"
	}
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(b) // unreachable for a decoded RawMessage, which is valid JSON
	}
	return buf.String()
}
