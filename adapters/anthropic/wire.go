package anthropic

import "encoding/json"

// This file holds the Messages API's wire shapes, reduced to the fields gavel sends or
// reads. Field order follows Anthropic's documentation, so that requests read naturally.

// messagesRequest is the body of POST /v1/messages.
type messagesRequest struct {
	Model     string `json:"model"`
	MaxTokens int    `json:"max_tokens"`
	// System is the system prompt: a string, or []wireBlock when a block carries
	// cache_control; nil when there is none.
	System        any             `json:"system,omitempty"`
	Messages      []wireMessage   `json:"messages"`
	Metadata      *wireMetadata   `json:"metadata,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopK          *int            `json:"top_k,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	Thinking      *wireThinking   `json:"thinking,omitempty"`
	Tools         []wireTool      `json:"tools,omitempty"`
	ToolChoice    *wireToolChoice `json:"tool_choice,omitempty"`
}

// wireThinking is extended thinking: {"type":"enabled","budget_tokens":N}, N at least
// 1024 and below max_tokens.
type wireThinking struct {
	Type         string `json:"type"`
	BudgetTokens int    `json:"budget_tokens"`
}

// wireMessage is one turn. Content is always the array form, which every role accepts.
type wireMessage struct {
	Role    string      `json:"role"`
	Content []wireBlock `json:"content"`
}

// wireBlock is a request content block: text, image, tool_use or tool_result. Only the
// fields of its type are set; the adapter never produces an empty text block, which the
// API rejects.
type wireBlock struct {
	Type      string           `json:"type"`
	Text      string           `json:"text,omitempty"`
	Source    *wireImageSource `json:"source,omitempty"`
	ID        string           `json:"id,omitempty"`
	Name      string           `json:"name,omitempty"`
	Input     json.RawMessage  `json:"input,omitempty"`
	ToolUseID string           `json:"tool_use_id,omitempty"`
	// Content is a tool_result's content: a string, or []wireBlock of text and images.
	Content any `json:"content,omitempty"`
	// CacheControl marks a prompt-caching breakpoint ({"type":"ephemeral"}), verbatim
	// from the client's content part or message.
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// wireImageSource is an image's source: {"type":"base64","media_type","data"} or
// {"type":"url","url"}.
type wireImageSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type wireMetadata struct {
	UserID string `json:"user_id"`
}

type wireTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// wireToolChoice is {"type":"auto"|"any"|"tool"|"none"}; Name is set for "tool".
type wireToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

// messageResponse is a non-streamed answer, and the "message" of a message_start event.
type messageResponse struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Role       string          `json:"role"`
	Model      string          `json:"model"`
	Content    []responseBlock `json:"content"`
	StopReason string          `json:"stop_reason"`
	Usage      wireUsage       `json:"usage"`
	// Error is set when a 2xx body is an error (some proxies answer so).
	Error *wireErrorObject `json:"error"`
}

// responseBlock is an answer's content block. Types other than text and tool_use
// (thinking, redacted_thinking, server_tool_use, web_search_tool_result…) are skipped.
type responseBlock struct {
	Type  string          `json:"type"`
	Text  string          `json:"text"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// wireUsage counts tokens. Fields are pointers because message_delta reports only the
// counts that changed, and a missing count must not reset the one message_start gave.
type wireUsage struct {
	InputTokens              *int `json:"input_tokens"`
	OutputTokens             *int `json:"output_tokens"`
	CacheCreationInputTokens *int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int `json:"cache_read_input_tokens"`
}

// streamEvent is the union of every SSE event's data; Type selects which fields mean
// anything. One value is reused for every event of a stream.
type streamEvent struct {
	Type         string           `json:"type"`
	Message      messageResponse  `json:"message"`       // message_start
	Index        int              `json:"index"`         // content_block_*
	ContentBlock responseBlock    `json:"content_block"` // content_block_start
	Delta        eventDelta       `json:"delta"`         // content_block_delta, message_delta
	Usage        wireUsage        `json:"usage"`         // message_delta
	Error        *wireErrorObject `json:"error"`         // error
}

// eventDelta is the union of a content_block_delta's delta (text_delta, input_json_delta,
// thinking_delta, signature_delta, citations_delta) and a message_delta's delta.
type eventDelta struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	PartialJSON string `json:"partial_json"`
	StopReason  string `json:"stop_reason"`
}

// wireErrorObject is the "error" of {"type":"error","error":{"type","message"}}. Both
// fields are raw so that a badly typed one does not lose the other.
type wireErrorObject struct {
	Type    json.RawMessage `json:"type"`
	Message json.RawMessage `json:"message"`
}

// errorEnvelope is Anthropic's error body; request_id is kept for the message.
type errorEnvelope struct {
	Type      json.RawMessage `json:"type"`
	Error     json.RawMessage `json:"error"`
	RequestID json.RawMessage `json:"request_id"`
}
