package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/gavel-gw/gavel/engine/decision"
)

// Request is the body of POST /v1/messages. Fields gavel does not model stay in the raw
// body, which a passthrough target receives unchanged.
type Request struct {
	Model         string          `json:"model"`
	MaxTokens     *int            `json:"max_tokens"`
	System        *Text           `json:"system"`
	Messages      []Message       `json:"messages"`
	Metadata      *Metadata       `json:"metadata"`
	StopSequences []string        `json:"stop_sequences"`
	Stream        bool            `json:"stream"`
	Temperature   *float64        `json:"temperature"`
	TopP          *float64        `json:"top_p"`
	TopK          *int            `json:"top_k"`
	Tools         []Tool          `json:"tools"`
	ToolChoice    *ToolChoice     `json:"tool_choice"`
	Thinking      *Thinking       `json:"thinking"`
	ServiceTier   string          `json:"service_tier"`
	Container     json.RawMessage `json:"container"`
}

// Text is content that is a string or an array of blocks: the system prompt, a message's
// content, a tool result's content. Blocks is nil for the string form.
type Text struct {
	String string
	Blocks []Block
}

// UnmarshalJSON accepts a string or an array of blocks.
func (t *Text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		t.Blocks = nil
		return json.Unmarshal(b, &t.String)
	case len(b) > 0 && b[0] == '[':
		var blocks []Block
		if err := json.Unmarshal(b, &blocks); err != nil {
			return err
		}
		if blocks == nil {
			blocks = []Block{}
		}
		t.String, t.Blocks = "", blocks
		return nil
	case bytes.Equal(b, []byte("null")):
		*t = Text{}
		return nil
	}
	return errors.New("must be a string or an array of content blocks")
}

// MarshalJSON writes the form the content was received in.
func (t Text) MarshalJSON() ([]byte, error) {
	if t.Blocks != nil {
		return json.Marshal(t.Blocks)
	}
	return json.Marshal(t.String)
}

// Message is one turn of the conversation.
type Message struct {
	Role    string `json:"role"`
	Content Text   `json:"content"`
}

// Block is a content block of any type; Type selects which fields mean anything.
type Block struct {
	Type string `json:"type"`
	// text
	Text string `json:"text,omitempty"`
	// image, document
	Source *Source `json:"source,omitempty"`
	Title  string  `json:"title,omitempty"`
	// tool_use (and server_tool_use)
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
	// tool_result
	ToolUseID string `json:"tool_use_id,omitempty"`
	Content   *Text  `json:"content,omitempty"`
	IsError   bool   `json:"is_error,omitempty"`
	// thinking, redacted_thinking
	Thinking  string `json:"thinking,omitempty"`
	Signature string `json:"signature,omitempty"`
	Data      string `json:"data,omitempty"`
	// CacheControl is read only to say it is lost in translation.
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// Source is an image's or a document's source: base64 data, a URL, or plain text.
type Source struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

// Metadata is the request's metadata; user_id identifies the end user.
type Metadata struct {
	UserID string `json:"user_id"`
}

// Tool is a tool the model may call: a client tool (no type, or "custom") with a JSON
// Schema, or one of Anthropic's server or versioned tools (web_search_…, bash_…), which
// only Anthropic runs.
type Tool struct {
	Type        string          `json:"type,omitempty"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
}

// ToolChoice is {"type":"auto"|"any"|"tool"|"none"}, Name set for "tool".
type ToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

// Thinking is extended thinking: {"type":"enabled","budget_tokens":N} or disabled.
type Thinking struct {
	Type         string `json:"type"`
	BudgetTokens int    `json:"budget_tokens,omitempty"`
}

// CountRequest is the body of POST /v1/messages/count_tokens: a Request without the
// generation parameters.
type CountRequest = Request

// Response is a non-streamed answer: {"id","type":"message","role","model","content",
// "stop_reason","stop_sequence","usage"}.
type Response struct {
	ID           string  `json:"id"`
	Type         string  `json:"type"`
	Role         string  `json:"role"`
	Model        string  `json:"model"`
	Content      []Block `json:"content"`
	StopReason   *string `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
	Usage        Usage   `json:"usage"`
}

// Usage counts tokens as Anthropic does: input_tokens excludes the cached input, which
// cache_creation_input_tokens and cache_read_input_tokens count.
type Usage struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	OutputTokens             int `json:"output_tokens"`
}

// ErrorBody is Anthropic's error shape: {"type":"error","error":{"type","message"}}.
type ErrorBody struct {
	Type  string      `json:"type"`
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the "error" of an ErrorBody. Remediation, for a denial, says what the
// caller can change so that its request passes (gavel's addition, in the policy
// contract's shape; clients that do not know it ignore it).
type ErrorDetail struct {
	Type        string                `json:"type"`
	Message     string                `json:"message"`
	Remediation *decision.Remediation `json:"remediation,omitempty"`
}

// NewError returns the error body of type typ (invalid_request_error, rate_limit_error,
// overloaded_error…).
func NewError(typ, msg string) ErrorBody {
	return ErrorBody{Type: "error", Error: ErrorDetail{Type: typ, Message: msg}}
}
