package responses

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/gavel-gw/gavel/adapters"
)

// Request is a POST /v1/responses body. Fields gavel does not model are decoded into
// nothing and not forwarded on the translated path (docs/agents.md lists them).
type Request struct {
	Model              string            `json:"model"`
	Input              Input             `json:"input"`
	Instructions       string            `json:"instructions,omitempty"`
	Stream             bool              `json:"stream,omitempty"`
	Store              *bool             `json:"store,omitempty"`
	PreviousResponseID string            `json:"previous_response_id,omitempty"`
	Tools              []json.RawMessage `json:"tools,omitempty"`
	ToolChoice         json.RawMessage   `json:"tool_choice,omitempty"`
	ParallelToolCalls  *bool             `json:"parallel_tool_calls,omitempty"`
	Reasoning          *Reasoning        `json:"reasoning,omitempty"`
	Text               *TextConfig       `json:"text,omitempty"`
	MaxOutputTokens    *int              `json:"max_output_tokens,omitempty"`
	Temperature        *float64          `json:"temperature,omitempty"`
	TopP               *float64          `json:"top_p,omitempty"`
	TopLogprobs        *int              `json:"top_logprobs,omitempty"`
	User               string            `json:"user,omitempty"`
	Metadata           map[string]string `json:"metadata,omitempty"`
	ServiceTier        string            `json:"service_tier,omitempty"`
	Truncation         string            `json:"truncation,omitempty"`
	Include            []string          `json:"include,omitempty"`
	Background         *bool             `json:"background,omitempty"`
	Conversation       json.RawMessage   `json:"conversation,omitempty"`
	Prompt             json.RawMessage   `json:"prompt,omitempty"`
	PromptCacheKey     string            `json:"prompt_cache_key,omitempty"`
	SafetyIdentifier   string            `json:"safety_identifier,omitempty"`

	// fields are the member names of the body it was decoded from (SetFieldNames), for
	// the policy's input.request.fields.
	fields []string
}

var _ adapters.FieldNamer = (*Request)(nil)

// SetFieldNames keeps the member names of the body r was decoded from; ToChat passes
// them on, so the policy sees the fields of the client's own request.
func (r *Request) SetFieldNames(names []string) { r.fields = names }

// Stored reports whether the response is to be stored: OpenAI stores unless told not to.
func (r *Request) Stored() bool { return r.Store == nil || *r.Store }

// Reasoning is the request's (and the response's) reasoning configuration.
type Reasoning struct {
	Effort  string `json:"effort,omitempty"`
	Summary string `json:"summary,omitempty"`
	// GenerateSummary is the deprecated spelling of Summary.
	GenerateSummary string `json:"generate_summary,omitempty"`
}

// TextConfig is the request's text options: the output format (text, json_object,
// json_schema) and verbosity.
type TextConfig struct {
	Format    json.RawMessage `json:"format,omitempty"`
	Verbosity string          `json:"verbosity,omitempty"`
}

// Input is the request's input: a string (one user message) or a list of items. Text is
// meaningful when Items is nil. Raw holds each item as the client sent it, what a stored
// conversation keeps (a pass-through continues it byte for byte).
type Input struct {
	Text  string
	Items []Item
	Raw   []json.RawMessage
}

// UnmarshalJSON accepts a string, an array of items or null.
func (in *Input) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*in = Input{}
		return nil
	case b[0] == '"':
		in.Items = nil
		return json.Unmarshal(b, &in.Text)
	case b[0] == '[':
		in.Text = ""
		var raw []json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return err
		}
		in.Items, in.Raw = make([]Item, len(raw)), raw
		for i, r := range raw {
			if err := json.Unmarshal(r, &in.Items[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return errors.New("input must be a string or an array of input items")
}

// MarshalJSON writes the form the input was received in.
func (in Input) MarshalJSON() ([]byte, error) {
	if in.Items != nil {
		return json.Marshal(in.Items)
	}
	return json.Marshal(in.Text)
}

// Item types.
const (
	ItemMessage            = "message"
	ItemFunctionCall       = "function_call"
	ItemFunctionCallOutput = "function_call_output"
	ItemReasoning          = "reasoning"
	ItemReference          = "item_reference"
)

// Item is one input item (a message, a function call, its output, a reasoning item…),
// and the input form of every output item, as stored for previous_response_id. An item
// without a type is a message (OpenAI's "easy input message").
type Item struct {
	Type   string `json:"type,omitempty"`
	ID     string `json:"id,omitempty"`
	Status string `json:"status,omitempty"`
	// message
	Role    string   `json:"role,omitempty"`
	Content *Content `json:"content,omitempty"`
	// function_call, function_call_output
	CallID    string  `json:"call_id,omitempty"`
	Name      string  `json:"name,omitempty"`
	Arguments *string `json:"arguments,omitempty"`
	// Output is a function_call_output's result: a string or a list of content parts.
	Output *Content `json:"output,omitempty"`
	// reasoning: kept in stored conversations, not sent on the translated path.
	Summary          json.RawMessage `json:"summary,omitempty"`
	EncryptedContent string          `json:"encrypted_content,omitempty"`
}

// Content is a message's content, or a function output: a string or a list of parts.
// Parts != nil selects the array form.
type Content struct {
	Text  string
	Parts []Part
}

// UnmarshalJSON accepts a string, an array of parts or null.
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*c = Content{}
		return nil
	case b[0] == '"':
		c.Parts = nil
		return json.Unmarshal(b, &c.Text)
	case b[0] == '[':
		c.Text = ""
		var parts []Part
		if err := json.Unmarshal(b, &parts); err != nil {
			return err
		}
		if parts == nil {
			parts = []Part{}
		}
		c.Parts = parts
		return nil
	}
	return errors.New("content must be a string or an array of content parts")
}

// MarshalJSON writes the form the content was received in.
func (c Content) MarshalJSON() ([]byte, error) {
	if c.Parts != nil {
		return json.Marshal(c.Parts)
	}
	return json.Marshal(c.Text)
}

// Content part types.
const (
	PartInputText  = "input_text"
	PartInputImage = "input_image"
	PartInputFile  = "input_file"
	PartOutputText = "output_text"
	PartRefusal    = "refusal"
)

// Part is one content part: input_text, input_image, input_file, output_text, refusal.
type Part struct {
	Type     string `json:"type"`
	Text     string `json:"text,omitempty"`
	Refusal  string `json:"refusal,omitempty"`
	ImageURL string `json:"image_url,omitempty"`
	Detail   string `json:"detail,omitempty"`
	FileID   string `json:"file_id,omitempty"`
	FileData string `json:"file_data,omitempty"`
	FileURL  string `json:"file_url,omitempty"`
	Filename string `json:"filename,omitempty"`
}

// FunctionTool is a tools entry of type function (Responses flattens what Chat
// Completions nests under "function").
type FunctionTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// Response statuses.
const (
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"
	StatusIncomplete = "incomplete"
	StatusFailed     = "failed"
)

// ObjectResponse is a Response's object field.
const ObjectResponse = "response"

// Response is the response object: the body of a non-streamed answer, of GET
// /v1/responses/{id}, and the "response" of the lifecycle events. Fields are written in
// OpenAI's order, nulls included, as its SDKs and agents read them.
type Response struct {
	ID                 string             `json:"id"`
	Object             string             `json:"object"`
	CreatedAt          int64              `json:"created_at"`
	Status             string             `json:"status"`
	Background         bool               `json:"background"`
	Error              *ResponseError     `json:"error"`
	IncompleteDetails  *IncompleteDetails `json:"incomplete_details"`
	Instructions       *string            `json:"instructions"`
	MaxOutputTokens    *int               `json:"max_output_tokens"`
	Model              string             `json:"model"`
	Output             []OutputItem       `json:"output"`
	ParallelToolCalls  bool               `json:"parallel_tool_calls"`
	PreviousResponseID *string            `json:"previous_response_id"`
	Reasoning          ResponseReasoning  `json:"reasoning"`
	ServiceTier        string             `json:"service_tier"`
	Store              bool               `json:"store"`
	Temperature        float64            `json:"temperature"`
	Text               ResponseText       `json:"text"`
	ToolChoice         json.RawMessage    `json:"tool_choice"`
	Tools              []json.RawMessage  `json:"tools"`
	TopLogprobs        int                `json:"top_logprobs"`
	TopP               float64            `json:"top_p"`
	Truncation         string             `json:"truncation"`
	Usage              *Usage             `json:"usage"`
	User               *string            `json:"user"`
	Metadata           map[string]string  `json:"metadata"`
}

// ResponseError is a failed response's error.
type ResponseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// IncompleteDetails says why a response is incomplete: "max_output_tokens" or
// "content_filter".
type IncompleteDetails struct {
	Reason string `json:"reason"`
}

// ResponseReasoning is the reasoning configuration a response reports (nulls when unset).
type ResponseReasoning struct {
	Effort  *string `json:"effort"`
	Summary *string `json:"summary"`
}

// ResponseText is the text configuration a response reports.
type ResponseText struct {
	Format    json.RawMessage `json:"format"`
	Verbosity string          `json:"verbosity"`
}

// Usage counts a response's tokens.
type Usage struct {
	InputTokens         int                 `json:"input_tokens"`
	InputTokensDetails  InputTokensDetails  `json:"input_tokens_details"`
	OutputTokens        int                 `json:"output_tokens"`
	OutputTokensDetails OutputTokensDetails `json:"output_tokens_details"`
	TotalTokens         int                 `json:"total_tokens"`
}

// InputTokensDetails breaks input tokens down.
type InputTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// OutputTokensDetails breaks output tokens down.
type OutputTokensDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// OutputItem is one item of a response's output: an assistant message or a function
// call. It is written with exactly the fields of its type.
type OutputItem struct {
	ID     string
	Type   string // ItemMessage or ItemFunctionCall
	Status string
	// message
	Content []OutputText
	// function_call
	CallID, Name, Arguments string
}

// OutputText is an output_text content part.
type OutputText struct {
	Type        string            `json:"type"`
	Annotations []json.RawMessage `json:"annotations"`
	Logprobs    []json.RawMessage `json:"logprobs"`
	Text        string            `json:"text"`
}

func newOutputText(text string) OutputText {
	return OutputText{Type: PartOutputText, Annotations: []json.RawMessage{}, Logprobs: []json.RawMessage{}, Text: text}
}

type messageWire struct {
	ID      string       `json:"id"`
	Type    string       `json:"type"`
	Status  string       `json:"status"`
	Content []OutputText `json:"content"`
	Role    string       `json:"role"`
}

type functionCallWire struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Status    string `json:"status"`
	Arguments string `json:"arguments"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
}

// MarshalJSON writes the item as OpenAI does for its type.
func (o OutputItem) MarshalJSON() ([]byte, error) {
	if o.Type == ItemFunctionCall {
		return json.Marshal(functionCallWire{ID: o.ID, Type: o.Type, Status: o.Status, Arguments: o.Arguments, CallID: o.CallID, Name: o.Name})
	}
	content := o.Content
	if content == nil {
		content = []OutputText{}
	}
	return json.Marshal(messageWire{ID: o.ID, Type: ItemMessage, Status: o.Status, Content: content, Role: "assistant"})
}

// UnmarshalJSON reads an item written by MarshalJSON (a stored response).
func (o *OutputItem) UnmarshalJSON(b []byte) error {
	var w struct {
		ID        string       `json:"id"`
		Type      string       `json:"type"`
		Status    string       `json:"status"`
		Content   []OutputText `json:"content"`
		Arguments string       `json:"arguments"`
		CallID    string       `json:"call_id"`
		Name      string       `json:"name"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*o = OutputItem{ID: w.ID, Type: w.Type, Status: w.Status, Content: w.Content, CallID: w.CallID, Name: w.Name, Arguments: w.Arguments}
	return nil
}

// asInput is the item as the next turn's input carries it (previous_response_id).
func (o *OutputItem) asInput() Item {
	if o.Type == ItemFunctionCall {
		args := o.Arguments
		return Item{Type: ItemFunctionCall, ID: o.ID, Status: o.Status, CallID: o.CallID, Name: o.Name, Arguments: &args}
	}
	parts := make([]Part, len(o.Content))
	for i, c := range o.Content {
		parts[i] = Part{Type: PartOutputText, Text: c.Text}
	}
	return Item{Type: ItemMessage, ID: o.ID, Status: o.Status, Role: "assistant", Content: &Content{Parts: parts}}
}

// Deleted is the body of DELETE /v1/responses/{id}.
type Deleted struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Deleted bool   `json:"deleted"`
}
