package anthropic

import (
	"encoding/json"

	"github.com/gavel-gw/gavel/adapters"
)

// Event names of a Messages stream.
const (
	EventMessageStart      = "message_start"
	EventContentBlockStart = "content_block_start"
	EventContentBlockDelta = "content_block_delta"
	EventContentBlockStop  = "content_block_stop"
	EventMessageDelta      = "message_delta"
	EventMessageStop       = "message_stop"
	EventPing              = "ping"
	EventError             = "error"
)

// Emit writes one server-sent event: its name, and its data encoded as JSON.
type Emit func(name string, data any) error

// The events' data, in Anthropic's field order.
type (
	messageStart struct {
		Type    string    `json:"type"`
		Message *Response `json:"message"`
	}
	blockStart struct {
		Type         string `json:"type"`
		Index        int    `json:"index"`
		ContentBlock any    `json:"content_block"`
	}
	blockDelta struct {
		Type  string `json:"type"`
		Index int    `json:"index"`
		Delta any    `json:"delta"`
	}
	blockStop struct {
		Type  string `json:"type"`
		Index int    `json:"index"`
	}
	messageDelta struct {
		Type  string           `json:"type"`
		Delta messageDeltaStop `json:"delta"`
		Usage Usage            `json:"usage"`
	}
	messageDeltaStop struct {
		StopReason   string  `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	}
	typeOnly struct {
		Type string `json:"type"`
	}
	textBlock struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	toolBlock struct {
		Type  string          `json:"type"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	}
	thinkingBlock struct {
		Type      string `json:"type"`
		Thinking  string `json:"thinking"`
		Signature string `json:"signature"`
	}
	textDelta struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	jsonDelta struct {
		Type        string `json:"type"`
		PartialJSON string `json:"partial_json"`
	}
	thinkingDelta struct {
		Type     string `json:"type"`
		Thinking string `json:"thinking"`
	}
	signatureDelta struct {
		Type      string `json:"type"`
		Signature string `json:"signature"`
	}
)

var emptyInput = json.RawMessage(`{}`)

// Encoder turns a canonical stream (chat.completion.chunk objects) into the events of a
// Messages stream, chunk by chunk: message_start and a ping first, a content block per run
// of text and per tool call (input_json_delta carrying its arguments), and at the end the
// open block's stop, message_delta with the stop reason and the usage, and message_stop.
// Canonical streams carry no thinking, so no thinking block is produced.
type Encoder struct {
	emit  Emit
	model string

	started bool
	open    int    // index of the open content block, -1 when none
	kind    string // the open block's type
	next    int    // index of the next block
	tools   map[int]int
	stop    string
	usage   *adapters.Usage
	input   Usage // the input counts message_start reported
}

// NewEncoder returns an encoder writing through emit; model names the answer until the
// upstream's first chunk names it.
func NewEncoder(emit Emit, model string) *Encoder {
	return &Encoder{emit: emit, model: model, open: -1}
}

// SetInputTokens sets the input_tokens message_start reports when the upstream's first
// chunk carries no usage (OpenAI-compatible upstreams send it last): gavel's estimate of
// the prompt. Anthropic's own message_start carries the input count, and clients (Claude
// Code's context meter) read it there before the answer ends; message_delta then
// carries the upstream's exact usage.
func (e *Encoder) SetInputTokens(n int) { e.input.InputTokens = n }

// Chunk encodes one canonical chunk.
func (e *Encoder) Chunk(c *adapters.ChatChunk) error {
	if c.Usage != nil {
		e.usage = c.Usage
	}
	if !e.started {
		if err := e.start(c.ID, c.Model); err != nil {
			return err
		}
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue // the Messages API has one answer
		}
		if t := ch.Delta.Content; t != nil && *t != "" {
			if err := e.text(*t); err != nil {
				return err
			}
		}
		if t := ch.Delta.Refusal; t != nil && *t != "" {
			if err := e.text(*t); err != nil {
				return err
			}
		}
		for j := range ch.Delta.ToolCalls {
			if err := e.tool(&ch.Delta.ToolCalls[j]); err != nil {
				return err
			}
		}
		if ch.FinishReason != nil {
			e.stop = StopReason(*ch.FinishReason)
		}
	}
	return nil
}

func (e *Encoder) start(id, model string) error {
	e.started = true
	if model == "" {
		model = e.model
	}
	if e.usage != nil { // the upstream counted first: its count, not the estimate
		u := UsageOf(e.usage)
		e.input = Usage{InputTokens: u.InputTokens, CacheCreationInputTokens: u.CacheCreationInputTokens, CacheReadInputTokens: u.CacheReadInputTokens}
	}
	msg := &Response{ID: MessageID(id), Type: "message", Role: "assistant", Model: model, Content: []Block{}, Usage: e.input}
	if err := e.emit(EventMessageStart, messageStart{Type: EventMessageStart, Message: msg}); err != nil {
		return err
	}
	return e.emit(EventPing, typeOnly{Type: EventPing})
}

func (e *Encoder) openBlock(kind string, block any) error {
	if err := e.closeBlock(); err != nil {
		return err
	}
	e.open, e.kind = e.next, kind
	e.next++
	return e.emit(EventContentBlockStart, blockStart{Type: EventContentBlockStart, Index: e.open, ContentBlock: block})
}

func (e *Encoder) closeBlock() error {
	if e.open < 0 {
		return nil
	}
	i := e.open
	e.open, e.kind = -1, ""
	return e.emit(EventContentBlockStop, blockStop{Type: EventContentBlockStop, Index: i})
}

func (e *Encoder) text(t string) error {
	if e.kind != "text" {
		if err := e.openBlock("text", textBlock{Type: "text", Text: ""}); err != nil {
			return err
		}
	}
	return e.emit(EventContentBlockDelta, blockDelta{Type: EventContentBlockDelta, Index: e.open, Delta: textDelta{Type: "text_delta", Text: t}})
}

// tool encodes a tool call delta: its first piece (with id and name) opens a tool_use
// block, its argument pieces are input_json_delta events of that block.
func (e *Encoder) tool(tc *adapters.ToolCall) error {
	n := 0
	if tc.Index != nil {
		n = *tc.Index
	}
	block, ok := e.tools[n]
	if !ok {
		if e.tools == nil {
			e.tools = make(map[int]int, 2)
		}
		if err := e.openBlock("tool_use", toolBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: emptyInput}); err != nil {
			return err
		}
		block = e.open
		e.tools[n] = block
	}
	if tc.Function.Arguments == "" {
		return nil
	}
	return e.emit(EventContentBlockDelta, blockDelta{Type: EventContentBlockDelta, Index: block, Delta: jsonDelta{Type: "input_json_delta", PartialJSON: tc.Function.Arguments}})
}

// End closes the stream after the canonical stream's last chunk.
func (e *Encoder) End() error {
	if !e.started {
		if err := e.start("", e.model); err != nil {
			return err
		}
	}
	if err := e.closeBlock(); err != nil {
		return err
	}
	stop := e.stop
	if stop == "" {
		stop = "end_turn"
	}
	// The upstream's usage, exact; an upstream that reported none leaves the input counts
	// message_start gave (message_delta's counts replace them in the client's message).
	usage := e.input
	if e.usage != nil {
		usage = UsageOf(e.usage)
	}
	if err := e.emit(EventMessageDelta, messageDelta{Type: EventMessageDelta, Delta: messageDeltaStop{StopReason: stop}, Usage: usage}); err != nil {
		return err
	}
	return e.emit(EventMessageStop, typeOnly{Type: EventMessageStop})
}

// ResponseEvents re-expresses a whole answer as the events a stream of it would have had,
// thinking blocks and their signatures included, for a streaming client served from a
// buffered call.
func ResponseEvents(r *Response, emit Emit) error {
	start := *r
	start.Content = []Block{}
	start.StopReason, start.StopSequence = nil, nil
	start.Usage = Usage{InputTokens: r.Usage.InputTokens, CacheCreationInputTokens: r.Usage.CacheCreationInputTokens, CacheReadInputTokens: r.Usage.CacheReadInputTokens}
	if err := emit(EventMessageStart, messageStart{Type: EventMessageStart, Message: &start}); err != nil {
		return err
	}
	if err := emit(EventPing, typeOnly{Type: EventPing}); err != nil {
		return err
	}
	for i := range r.Content {
		b := &r.Content[i]
		var first any = b
		var deltas []any
		switch b.Type {
		case "text":
			first = textBlock{Type: "text"}
			deltas = append(deltas, textDelta{Type: "text_delta", Text: b.Text})
		case "tool_use":
			first = toolBlock{Type: "tool_use", ID: b.ID, Name: b.Name, Input: emptyInput}
			if in := input(string(b.Input)); string(in) != "{}" {
				deltas = append(deltas, jsonDelta{Type: "input_json_delta", PartialJSON: string(in)})
			}
		case "thinking":
			first = thinkingBlock{Type: "thinking"}
			deltas = append(deltas, thinkingDelta{Type: "thinking_delta", Thinking: b.Thinking}, signatureDelta{Type: "signature_delta", Signature: b.Signature})
		}
		if err := emit(EventContentBlockStart, blockStart{Type: EventContentBlockStart, Index: i, ContentBlock: first}); err != nil {
			return err
		}
		for _, d := range deltas {
			if err := emit(EventContentBlockDelta, blockDelta{Type: EventContentBlockDelta, Index: i, Delta: d}); err != nil {
				return err
			}
		}
		if err := emit(EventContentBlockStop, blockStop{Type: EventContentBlockStop, Index: i}); err != nil {
			return err
		}
	}
	stop := "end_turn"
	if r.StopReason != nil {
		stop = *r.StopReason
	}
	if err := emit(EventMessageDelta, messageDelta{Type: EventMessageDelta, Delta: messageDeltaStop{StopReason: stop, StopSequence: r.StopSequence}, Usage: r.Usage}); err != nil {
		return err
	}
	return emit(EventMessageStop, typeOnly{Type: EventMessageStop})
}
