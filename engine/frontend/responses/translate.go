package responses

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/gavel-gw/gavel/adapters"
)

// validRoles are the roles an input message may have.
var validRoles = map[string]bool{"user": true, "assistant": true, "system": true, "developer": true}

// Validate rejects what OpenAI would reject, and what gavel cannot serve on any path
// (background responses, conversations, stored prompts), before a policy evaluation is
// spent on it.
func Validate(r *Request) *Error {
	if r.Model == "" {
		return missing("model", "Missing required parameter: 'model'.")
	}
	if r.Input.Items == nil && r.Input.Text == "" && r.PreviousResponseID == "" {
		return missing("input", "Missing required parameter: 'input'.")
	}
	if r.MaxOutputTokens != nil && *r.MaxOutputTokens < 16 {
		return invalid("max_output_tokens", "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got %d instead.", *r.MaxOutputTokens)
	}
	if r.Temperature != nil && (*r.Temperature < 0 || *r.Temperature > 2) {
		return invalid("temperature", "Invalid 'temperature': expected a value between 0 and 2.")
	}
	if r.TopP != nil && (*r.TopP < 0 || *r.TopP > 1) {
		return invalid("top_p", "Invalid 'top_p': expected a value between 0 and 1.")
	}
	if r.Background != nil && *r.Background {
		return unsupported("background", "Background responses are not supported by this gateway; send the request without 'background'.")
	}
	if len(r.Conversation) > 0 && string(r.Conversation) != "null" {
		return unsupported("conversation", "Conversations are not supported by this gateway; chain responses with 'previous_response_id'.")
	}
	if len(r.Prompt) > 0 && string(r.Prompt) != "null" {
		return unsupported("prompt", "Stored prompt templates are not supported by this gateway; send 'instructions' and 'input'.")
	}
	for i, it := range r.Input.Items {
		if err := validateItem(&it, "input["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
	}
	for i, raw := range r.Tools {
		var t FunctionTool
		if err := json.Unmarshal(raw, &t); err != nil || t.Type == "" {
			return invalid("tools["+strconv.Itoa(i)+"]", "Invalid 'tools[%d]': each tool needs a type.", i)
		}
		if t.Type == "function" && t.Name == "" {
			return missing("tools["+strconv.Itoa(i)+"].name", "Missing required parameter: 'tools["+strconv.Itoa(i)+"].name'.")
		}
	}
	return nil
}

func validateItem(it *Item, at string) *Error {
	switch it.Type {
	case "", ItemMessage:
		if !validRoles[it.Role] {
			return invalid(at+".role", "Invalid value: '%s'. Supported values are: 'assistant', 'system', 'developer', and 'user'.", it.Role)
		}
		if it.Content == nil {
			return missing(at+".content", "Missing required parameter: '"+at+".content'.")
		}
		for j, p := range it.Content.Parts {
			switch p.Type {
			case PartInputText, PartOutputText, PartRefusal, PartInputImage, PartInputFile:
			default:
				return invalid(at+".content["+strconv.Itoa(j)+"].type", "Invalid value: '%s'. Supported values are: 'input_text', 'input_image', 'input_file', 'output_text' and 'refusal'.", p.Type)
			}
			if p.Type == PartInputImage && p.ImageURL == "" {
				return unsupported(at+".content["+strconv.Itoa(j)+"]", "Images by file_id are not supported by this gateway; send image_url (an https or data: URL).")
			}
		}
	case ItemFunctionCall:
		if it.CallID == "" || it.Name == "" {
			return missing(at+".call_id", "A function_call item needs a call_id and a name.")
		}
	case ItemFunctionCallOutput:
		if it.CallID == "" {
			return missing(at+".call_id", "Missing required parameter: '"+at+".call_id'.")
		}
		if it.Output == nil {
			return missing(at+".output", "Missing required parameter: '"+at+".output'.")
		}
	case ItemReasoning:
	case ItemReference:
		return unsupported(at, "item_reference items are not supported by this gateway; chain responses with 'previous_response_id' or send the items themselves.")
	default:
		return invalid(at+".type", "Input items of type '%s' are not supported by this gateway (it serves message, function_call, function_call_output and reasoning items).", it.Type)
	}
	return nil
}

// InputItems is the request's input as a list of items (a string input is one user
// message).
func InputItems(r *Request) []Item {
	if r.Input.Items != nil {
		return r.Input.Items
	}
	if r.Input.Text == "" {
		return nil
	}
	return []Item{{Type: ItemMessage, Role: "user", Content: &Content{Text: r.Input.Text}}}
}

// Hosted lists the request's hosted (OpenAI-run) tool types, from tools and tool_choice;
// nil when it names none.
func Hosted(r *Request) []string {
	var out []string
	for _, raw := range r.Tools {
		var t struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(raw, &t) == nil && t.Type != "function" {
			out = append(out, t.Type)
		}
	}
	if tc := bytes.TrimSpace(r.ToolChoice); len(tc) > 0 && tc[0] == '{' {
		var c struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(tc, &c) == nil && c.Type != "function" && c.Type != "allowed_tools" && c.Type != "" {
			out = append(out, c.Type)
		}
	}
	return out
}

// ToChat translates a request into the canonical chat request: instructions first (a
// system message), then history (the items of previous_response_id's conversation),
// then the request's input. Function tools, tool_choice, reasoning.effort, text.format,
// max_output_tokens and the sampling fields carry over; hosted tools are left out (check
// Hosted first). A streamed request asks its upstream for usage: the answer's usage is
// part of response.completed and what the budgets are charged.
func ToChat(r *Request, history []Item) (*adapters.ChatRequest, *Error) {
	c := &adapters.ChatRequest{Model: r.Model, Stream: r.Stream, MaxCompletionTokens: r.MaxOutputTokens,
		Temperature: r.Temperature, TopP: r.TopP, ParallelToolCalls: r.ParallelToolCalls, User: r.User,
		Metadata: r.Metadata, ServiceTier: r.ServiceTier}
	c.SetFieldNames(r.fields)
	if r.Stream {
		c.StreamOptions = &adapters.StreamOptions{IncludeUsage: true}
	}
	if r.TopLogprobs != nil && *r.TopLogprobs > 0 {
		yes := true
		c.Logprobs, c.TopLogprobs = &yes, r.TopLogprobs
	}
	if r.Reasoning != nil {
		c.ReasoningEffort = r.Reasoning.Effort
	}
	if r.Instructions != "" {
		c.Messages = append(c.Messages, adapters.Message{Role: "system", Content: adapters.TextContent(r.Instructions)})
	}
	var err *Error
	if c.Messages, err = appendItems(c.Messages, history, "previous_response_id"); err != nil {
		return nil, err
	}
	if c.Messages, err = appendItems(c.Messages, InputItems(r), "input"); err != nil {
		return nil, err
	}
	if len(c.Messages) == 0 {
		return nil, missing("input", "The request has no input messages.")
	}
	for _, raw := range r.Tools {
		var t FunctionTool
		if json.Unmarshal(raw, &t) != nil || t.Type != "function" {
			continue
		}
		c.Tools = append(c.Tools, adapters.Tool{Type: "function", Function: adapters.FunctionDef{Name: t.Name,
			Description: t.Description, Parameters: t.Parameters, Strict: t.Strict}})
	}
	if c.ToolChoice, err = toolChoice(r.ToolChoice); err != nil {
		return nil, err
	}
	if r.Text != nil {
		if c.ResponseFormat, err = responseFormat(r.Text.Format); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// appendItems appends items as chat messages: consecutive function calls become one
// assistant message's tool calls (joined to the assistant text before them), each
// function output a tool message. Reasoning items have no chat form and are dropped.
func appendItems(msgs []adapters.Message, items []Item, param string) ([]adapters.Message, *Error) {
	for i := range items {
		it := &items[i]
		switch it.Type {
		case "", ItemMessage:
			content, err := chatContent(it.Content, param+"["+strconv.Itoa(i)+"].content")
			if err != nil {
				return nil, err
			}
			msgs = append(msgs, adapters.Message{Role: it.Role, Content: content})
		case ItemFunctionCall:
			args := "{}"
			if it.Arguments != nil {
				args = *it.Arguments
			}
			tc := adapters.ToolCall{ID: it.CallID, Type: "function", Function: adapters.FunctionCall{Name: it.Name, Arguments: args}}
			if n := len(msgs); n > 0 && msgs[n-1].Role == "assistant" {
				msgs[n-1].ToolCalls = append(msgs[n-1].ToolCalls, tc)
				continue
			}
			msgs = append(msgs, adapters.Message{Role: "assistant", ToolCalls: []adapters.ToolCall{tc}})
		case ItemFunctionCallOutput:
			content, err := chatContent(it.Output, param+"["+strconv.Itoa(i)+"].output")
			if err != nil {
				return nil, err
			}
			msgs = append(msgs, adapters.Message{Role: "tool", ToolCallID: it.CallID, Content: content})
		case ItemReasoning:
			// Lost in translation: no canonical form (docs/agents.md).
		default:
			return nil, invalid(param+"["+strconv.Itoa(i)+"].type", "Input items of type '%s' are not supported by this gateway.", it.Type)
		}
	}
	return msgs, nil
}

// chatContent is a message's content in the chat form: one string when it is all text,
// else typed parts (text, image_url, file).
func chatContent(c *Content, param string) (*adapters.Content, *Error) {
	if c == nil {
		return adapters.TextContent(""), nil
	}
	if c.Parts == nil {
		return adapters.TextContent(c.Text), nil
	}
	allText := true
	for _, p := range c.Parts {
		if p.Type != PartInputText && p.Type != PartOutputText && p.Type != PartRefusal {
			allText = false
			break
		}
	}
	if allText {
		var b strings.Builder
		for i, p := range c.Parts {
			if i > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(p.Text + p.Refusal)
		}
		return adapters.TextContent(b.String()), nil
	}
	parts := make([]adapters.ContentPart, 0, len(c.Parts))
	for j, p := range c.Parts {
		switch p.Type {
		case PartInputText, PartOutputText:
			parts = append(parts, adapters.ContentPart{Type: "text", Text: p.Text})
		case PartRefusal:
			parts = append(parts, adapters.ContentPart{Type: "text", Text: p.Refusal})
		case PartInputImage:
			if p.ImageURL == "" {
				return nil, unsupported(param+"["+strconv.Itoa(j)+"]", "Images by file_id are not supported by this gateway; send image_url.")
			}
			parts = append(parts, adapters.ContentPart{Type: "image_url", ImageURL: &adapters.ImageURL{URL: p.ImageURL, Detail: p.Detail}})
		case PartInputFile:
			if p.FileData == "" {
				return nil, unsupported(param+"["+strconv.Itoa(j)+"]", "Files by file_id or file_url are not supported by this gateway; send file_data.")
			}
			f, _ := json.Marshal(map[string]string{"file_data": p.FileData, "filename": p.Filename})
			parts = append(parts, adapters.ContentPart{Type: "file", File: f})
		default:
			return nil, invalid(param+"["+strconv.Itoa(j)+"].type", "Unsupported content part type '%s'.", p.Type)
		}
	}
	return &adapters.Content{Parts: parts}, nil
}

// toolChoice maps Responses' tool_choice ("auto", "none", "required", {"type":"function",
// "name"}) to Chat Completions'. allowed_tools has no chat form and becomes its mode.
func toolChoice(raw json.RawMessage) (json.RawMessage, *Error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil || (s != "auto" && s != "none" && s != "required") {
			return nil, invalid("tool_choice", "Invalid 'tool_choice': expected 'auto', 'none', 'required' or an object.")
		}
		return raw, nil
	}
	var c struct {
		Type string `json:"type"`
		Name string `json:"name"`
		Mode string `json:"mode"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return nil, invalid("tool_choice", "Invalid 'tool_choice'.")
	}
	switch c.Type {
	case "function":
		if c.Name == "" {
			return nil, missing("tool_choice.name", "Missing required parameter: 'tool_choice.name'.")
		}
		b, _ := json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": c.Name}})
		return b, nil
	case "allowed_tools":
		if c.Mode == "required" {
			return json.RawMessage(`"required"`), nil
		}
		return json.RawMessage(`"auto"`), nil
	}
	// A hosted tool's choice: Hosted names it, and the request is refused unless it
	// passes through to OpenAI untranslated.
	return nil, nil
}

// responseFormat maps text.format to Chat Completions' response_format.
func responseFormat(raw json.RawMessage) (json.RawMessage, *Error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var f struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Schema      json.RawMessage `json:"schema"`
		Strict      *bool           `json:"strict,omitempty"`
	}
	if json.Unmarshal(raw, &f) != nil {
		return nil, invalid("text.format", "Invalid 'text.format'.")
	}
	switch f.Type {
	case "text":
		return nil, nil
	case "json_object":
		return json.RawMessage(`{"type":"json_object"}`), nil
	case "json_schema":
		if f.Name == "" || len(f.Schema) == 0 {
			return nil, missing("text.format.schema", "A json_schema text format needs a name and a schema.")
		}
		type jsonSchema struct {
			Name        string          `json:"name"`
			Description string          `json:"description,omitempty"`
			Schema      json.RawMessage `json:"schema"`
			Strict      *bool           `json:"strict,omitempty"`
		}
		b, _ := json.Marshal(struct {
			Type       string     `json:"type"`
			JSONSchema jsonSchema `json:"json_schema"`
		}{"json_schema", jsonSchema{f.Name, f.Description, f.Schema, f.Strict}})
		return b, nil
	}
	return nil, invalid("text.format.type", "Invalid value: '%s'. Supported values are: 'text', 'json_object' and 'json_schema'.", f.Type)
}

// NewResponse is the response object of a request before its answer: in progress, with
// the request's configuration echoed as OpenAI does.
func NewResponse(id string, createdAt int64, r *Request) *Response {
	res := &Response{ID: id, Object: ObjectResponse, CreatedAt: createdAt, Status: StatusInProgress, Model: r.Model,
		Output: []OutputItem{}, ParallelToolCalls: true, ServiceTier: "auto", Store: r.Stored(), Temperature: 1, TopP: 1,
		Truncation: "disabled", Text: ResponseText{Format: json.RawMessage(`{"type":"text"}`), Verbosity: "medium"},
		ToolChoice: json.RawMessage(`"auto"`), Tools: r.Tools, MaxOutputTokens: r.MaxOutputTokens, Metadata: r.Metadata}
	if res.Tools == nil {
		res.Tools = []json.RawMessage{}
	}
	if res.Metadata == nil {
		res.Metadata = map[string]string{}
	}
	if r.Instructions != "" {
		s := r.Instructions
		res.Instructions = &s
	}
	if r.PreviousResponseID != "" {
		s := r.PreviousResponseID
		res.PreviousResponseID = &s
	}
	if r.ParallelToolCalls != nil {
		res.ParallelToolCalls = *r.ParallelToolCalls
	}
	if r.Reasoning != nil {
		if r.Reasoning.Effort != "" {
			s := r.Reasoning.Effort
			res.Reasoning.Effort = &s
		}
		if s := r.Reasoning.Summary + r.Reasoning.GenerateSummary; s != "" {
			res.Reasoning.Summary = &s
		}
	}
	if r.ServiceTier != "" {
		res.ServiceTier = r.ServiceTier
	}
	if r.Temperature != nil {
		res.Temperature = *r.Temperature
	}
	if r.TopP != nil {
		res.TopP = *r.TopP
	}
	if r.TopLogprobs != nil {
		res.TopLogprobs = *r.TopLogprobs
	}
	if r.Truncation != "" {
		res.Truncation = r.Truncation
	}
	if r.Text != nil {
		if f := bytes.TrimSpace(r.Text.Format); len(f) > 0 && string(f) != "null" {
			res.Text.Format = r.Text.Format
		}
		if r.Text.Verbosity != "" {
			res.Text.Verbosity = r.Text.Verbosity
		}
	}
	if tc := bytes.TrimSpace(r.ToolChoice); len(tc) > 0 && string(tc) != "null" {
		res.ToolChoice = r.ToolChoice
	}
	if r.User != "" {
		s := r.User
		res.User = &s
	}
	return res
}

// FromChat completes res with a chat answer: its first choice's text as a message item,
// its tool calls as function_call items, its usage, and the status its finish reason
// implies. ids makes the items' ids.
func FromChat(res *Response, c *adapters.ChatResponse, ids func(prefix string) string) {
	if len(c.Choices) > 0 {
		ch := &c.Choices[0]
		text := ch.Message.Content.String()
		if text == "" && ch.Message.Refusal != "" {
			text = ch.Message.Refusal
		}
		if text != "" || len(ch.Message.ToolCalls) == 0 {
			res.Output = append(res.Output, OutputItem{ID: ids("msg_"), Type: ItemMessage, Status: StatusCompleted,
				Content: []OutputText{newOutputText(text)}})
		}
		for _, tc := range ch.Message.ToolCalls {
			res.Output = append(res.Output, OutputItem{ID: ids("fc_"), Type: ItemFunctionCall, Status: StatusCompleted,
				CallID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
		finish(res, ch.FinishReason)
	} else {
		finish(res, adapters.FinishStop)
	}
	res.Usage = usageOf(c.Usage)
}

// finish sets the status a finish reason implies: a cut-off answer is incomplete, as
// OpenAI reports it.
func finish(res *Response, reason string) {
	switch reason {
	case adapters.FinishLength:
		res.Status, res.IncompleteDetails = StatusIncomplete, &IncompleteDetails{Reason: "max_output_tokens"}
	case adapters.FinishContentFilter:
		res.Status, res.IncompleteDetails = StatusIncomplete, &IncompleteDetails{Reason: "content_filter"}
	default:
		res.Status = StatusCompleted
	}
}

// usageOf is chat usage in Responses' terms; nil stays nil (an upstream that sent none).
func usageOf(u *adapters.Usage) *Usage {
	if u == nil {
		return nil
	}
	out := &Usage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	if out.TotalTokens == 0 {
		out.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	if u.PromptTokensDetails != nil {
		out.InputTokensDetails.CachedTokens = u.PromptTokensDetails.CachedTokens
	}
	if u.CompletionTokensDetails != nil {
		out.OutputTokensDetails.ReasoningTokens = u.CompletionTokensDetails.ReasoningTokens
	}
	return out
}

// Stored is a stored response as the ledger's documents keep it: the response object as
// its client got it, and the conversation it answered (earlier turns included) and its
// output, items as they were sent and received, for previous_response_id. Raw JSON: a
// response that passed through to OpenAI keeps what gavel does not model (reasoning
// items' encrypted content, hosted tool calls) for the next pass-through.
type Stored struct {
	Response json.RawMessage   `json:"response"`
	Input    []json.RawMessage `json:"input"`
	Output   []json.RawMessage `json:"output"`
}

// InputRaw is the request's input items as sent (a string input is one user message).
func InputRaw(r *Request) []json.RawMessage {
	if r.Input.Items != nil {
		return r.Input.Raw
	}
	if r.Input.Text == "" {
		return nil
	}
	b, _ := json.Marshal(Item{Type: ItemMessage, Role: "user", Content: &Content{Text: r.Input.Text}})
	return []json.RawMessage{b}
}

// NewStored is what to store for a translated response res, which answered input after
// history.
func NewStored(res *Response, history, input []json.RawMessage) (*Stored, error) {
	b, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	st := &Stored{Response: b, Input: make([]json.RawMessage, 0, len(history)+len(input))}
	st.Input = append(append(st.Input, history...), input...)
	for i := range res.Output {
		o, err := json.Marshal(res.Output[i].asInput())
		if err != nil {
			return nil, err
		}
		st.Output = append(st.Output, o)
	}
	return st, nil
}

// NewStoredRaw is what to store for a response that passed through: the upstream's
// response object as the client got it.
func NewStoredRaw(response []byte, history, input []json.RawMessage) (*Stored, error) {
	var r struct {
		Output []json.RawMessage `json:"output"`
	}
	if err := json.Unmarshal(response, &r); err != nil {
		return nil, err
	}
	st := &Stored{Response: response, Input: make([]json.RawMessage, 0, len(history)+len(input)), Output: r.Output}
	st.Input = append(append(st.Input, history...), input...)
	return st, nil
}

// ResponseID is the id of a response object; "" when it has none.
func ResponseID(response []byte) string {
	var r struct {
		ID string `json:"id"`
	}
	json.Unmarshal(response, &r)
	return r.ID
}

// History is the conversation a response continuing this one starts from, items as
// they were sent and received: its input, then its output. Instructions are not carried
// over, as OpenAI does not.
func (s *Stored) History() []json.RawMessage {
	out := make([]json.RawMessage, 0, len(s.Input)+len(s.Output))
	return append(append(out, s.Input...), s.Output...)
}

// Items decodes a stored conversation for translation. An item that only OpenAI's own
// API can continue (a hosted tool's call) refuses the continuation on a translated target.
func Items(raw []json.RawMessage) ([]Item, *Error) {
	out := make([]Item, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			return nil, invalid("previous_response_id", "The previous response could not be read.")
		}
		if e := validateItem(&out[i], "previous_response_id"); e != nil {
			return nil, &Error{Status: 400, Code: "hosted_tool_unsupported", Param: "previous_response_id",
				Message: "The previous response holds items of type '" + out[i].Type + "', which only OpenAI's Responses API can continue, and the policy routed this request to a target that translates it."}
		}
	}
	return out, nil
}

// Inline is body with the stored conversation written into it for a pass-through: input
// becomes history followed by the request's own input, and previous_response_id (an id
// of gavel's store, unknown upstream) is removed. The other members keep their values;
// the object is re-encoded, so their order and spacing may change.
func Inline(body []byte, history, input []json.RawMessage) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	all := make([]json.RawMessage, 0, len(history)+len(input))
	all = append(append(all, history...), input...)
	in, err := json.Marshal(all)
	if err != nil {
		return nil, err
	}
	m["input"] = in
	delete(m, "previous_response_id")
	return json.Marshal(m)
}
