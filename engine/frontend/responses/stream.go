package responses

import (
	"encoding/json"
	"strings"

	"github.com/gavel-gw/gavel/adapters"
)

// Stream event types, as OpenAI names them.
const (
	EventCreated       = "response.created"
	EventInProgress    = "response.in_progress"
	EventItemAdded     = "response.output_item.added"
	EventItemDone      = "response.output_item.done"
	EventPartAdded     = "response.content_part.added"
	EventPartDone      = "response.content_part.done"
	EventTextDelta     = "response.output_text.delta"
	EventTextDone      = "response.output_text.done"
	EventArgsDelta     = "response.function_call_arguments.delta"
	EventArgsDone      = "response.function_call_arguments.done"
	EventCompleted     = "response.completed"
	EventIncomplete    = "response.incomplete"
	EventFailed        = "response.failed"
	EventError         = "error"
	ResponseStatusCode = "server_error" // response.failed's error code for an upstream failure
)

// Write receives the server-sent events of one step of the stream (Start, a Chunk,
// Finalize, Finish, Fail): "event: <type>\ndata: <json>\n\n" each, every body carrying its
// type again and its sequence_number. The bytes are only valid during the call. The
// events of one step come from one upstream chunk, so one write (and one flush) carries
// them all.
type Write func(sse []byte) error

// Streamer turns a chat chunk stream into the Responses events OpenAI sends, in its
// order: response.created and response.in_progress; per output item
// response.output_item.added, its content (response.content_part.added, the
// response.output_text.delta events, response.output_text.done,
// response.content_part.done; or the response.function_call_arguments.delta events and
// response.function_call_arguments.done) and response.output_item.done; then
// response.completed (response.incomplete for a cut-off answer) with the usage, or
// error and response.failed. Every event has the next sequence_number, from 0. Not safe
// for concurrent use.
type Streamer struct {
	res   *Response
	ids   func(prefix string) string
	write Write
	seq   int
	buf   []byte // the events of the current step, encoded

	open   int // output index of the item being streamed, -1 when none
	text   strings.Builder
	args   strings.Builder
	calls  map[int]int // a chat tool call's index → its output index
	reason string      // the chat finish reason
	usage  *adapters.Usage
}

// NewStreamer streams res (as NewResponse made it) through write; ids makes item ids.
func NewStreamer(res *Response, ids func(prefix string) string, write Write) *Streamer {
	return &Streamer{res: res, ids: ids, write: write, open: -1}
}

// Response is the response as streamed so far; after Finish, the complete one.
func (s *Streamer) Response() *Response { return s.res }

// Usage is the chat usage the stream reported; nil when it sent none.
func (s *Streamer) Usage() *adapters.Usage { return s.usage }

// begin starts an event in the step's buffer: its SSE name line and the data field's
// prefix; the caller appends the body and calls end. (Each event type's AppendJSON is
// called directly, not through an interface, so the event values stay on the stack.)
func (s *Streamer) begin(typ string) {
	s.buf = append(s.buf, "event: "...)
	s.buf = append(s.buf, typ...)
	s.buf = append(s.buf, "\ndata: "...)
}

func (s *Streamer) end() { s.buf = append(s.buf, "\n\n"...) }

// flush writes the step's events.
func (s *Streamer) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	err := s.write(s.buf)
	s.buf = s.buf[:0]
	return err
}

type lifecycleEvent struct {
	Type           string    `json:"type"`
	Response       *Response `json:"response"`
	SequenceNumber int       `json:"sequence_number"`
}

type itemEvent struct {
	Type           string     `json:"type"`
	OutputIndex    int        `json:"output_index"`
	Item           OutputItem `json:"item"`
	SequenceNumber int        `json:"sequence_number"`
}

type partEvent struct {
	Type           string     `json:"type"`
	ItemID         string     `json:"item_id"`
	OutputIndex    int        `json:"output_index"`
	ContentIndex   int        `json:"content_index"`
	Part           OutputText `json:"part"`
	SequenceNumber int        `json:"sequence_number"`
}

type textDeltaEvent struct {
	Type           string            `json:"type"`
	ItemID         string            `json:"item_id"`
	OutputIndex    int               `json:"output_index"`
	ContentIndex   int               `json:"content_index"`
	Delta          string            `json:"delta"`
	Logprobs       []json.RawMessage `json:"logprobs"`
	SequenceNumber int               `json:"sequence_number"`
}

type textDoneEvent struct {
	Type           string            `json:"type"`
	ItemID         string            `json:"item_id"`
	OutputIndex    int               `json:"output_index"`
	ContentIndex   int               `json:"content_index"`
	Text           string            `json:"text"`
	Logprobs       []json.RawMessage `json:"logprobs"`
	SequenceNumber int               `json:"sequence_number"`
}

type argsDeltaEvent struct {
	Type           string `json:"type"`
	ItemID         string `json:"item_id"`
	OutputIndex    int    `json:"output_index"`
	Delta          string `json:"delta"`
	SequenceNumber int    `json:"sequence_number"`
}

type argsDoneEvent struct {
	Type           string `json:"type"`
	ItemID         string `json:"item_id"`
	Name           string `json:"name"`
	OutputIndex    int    `json:"output_index"`
	Arguments      string `json:"arguments"`
	SequenceNumber int    `json:"sequence_number"`
}

type errorEvent struct {
	Type           string  `json:"type"`
	Code           string  `json:"code"`
	Message        string  `json:"message"`
	Param          *string `json:"param"`
	SequenceNumber int     `json:"sequence_number"`
}

var noLogprobs = []json.RawMessage{}

func (s *Streamer) next() int { n := s.seq; s.seq++; return n }

// Resume numbers the next event seq: for the failure events of a stream whose first seq
// events another party (a passed-through upstream) numbered.
func (s *Streamer) Resume(seq int) { s.seq = seq }

func (s *Streamer) lifecycle(typ string) {
	ev := lifecycleEvent{Type: typ, Response: s.res, SequenceNumber: s.next()}
	s.begin(typ)
	s.buf = ev.AppendJSON(s.buf)
	s.end()
}

func (s *Streamer) item(typ string, out int) {
	ev := itemEvent{Type: typ, OutputIndex: out, Item: s.res.Output[out], SequenceNumber: s.next()}
	s.begin(typ)
	s.buf = ev.AppendJSON(s.buf)
	s.end()
}

func (s *Streamer) part(typ string, out int, text string) {
	ev := partEvent{Type: typ, ItemID: s.res.Output[out].ID, OutputIndex: out, Part: OutputText{Type: PartOutputText,
		Annotations: noLogprobs, Logprobs: noLogprobs, Text: text}, SequenceNumber: s.next()}
	s.begin(typ)
	s.buf = ev.AppendJSON(s.buf)
	s.end()
}

// Start emits response.created and response.in_progress.
func (s *Streamer) Start() error {
	s.lifecycle(EventCreated)
	s.lifecycle(EventInProgress)
	return s.flush()
}

// Chunk emits the events of one chat chunk.
func (s *Streamer) Chunk(c *adapters.ChatChunk) error {
	if c.Usage != nil {
		s.usage = c.Usage
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue // Responses has one answer; n > 1 is not asked for
		}
		d := &ch.Delta
		text := ""
		if d.Content != nil {
			text = *d.Content
		}
		if d.Refusal != nil {
			text += *d.Refusal
		}
		if text != "" {
			s.textDelta(text)
		}
		for j := range d.ToolCalls {
			s.toolDelta(&d.ToolCalls[j])
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			s.reason = *ch.FinishReason
			s.closeItem()
		}
	}
	return s.flush()
}

func (s *Streamer) textDelta(text string) {
	if s.open < 0 || s.res.Output[s.open].Type != ItemMessage {
		s.closeItem()
		s.addItem(OutputItem{ID: s.ids("msg_"), Type: ItemMessage, Status: StatusInProgress})
		s.part(EventPartAdded, s.open, "")
	}
	s.text.WriteString(text)
	ev := textDeltaEvent{Type: EventTextDelta, ItemID: s.res.Output[s.open].ID, OutputIndex: s.open,
		Delta: text, Logprobs: noLogprobs, SequenceNumber: s.next()}
	s.begin(EventTextDelta)
	s.buf = ev.AppendJSON(s.buf)
	s.end()
}

func (s *Streamer) toolDelta(tc *adapters.ToolCall) {
	idx := 0
	if tc.Index != nil {
		idx = *tc.Index
	}
	out, known := s.calls[idx]
	if !known {
		s.closeItem()
		id := tc.ID
		if id == "" {
			id = s.ids("call_")
		}
		if s.calls == nil {
			s.calls = map[int]int{}
		}
		s.addItem(OutputItem{ID: s.ids("fc_"), Type: ItemFunctionCall, Status: StatusInProgress,
			CallID: id, Name: tc.Function.Name})
		s.calls[idx] = s.open
		out = s.open
	} else if out != s.open {
		return // a late piece of a call already closed: chat upstreams stream calls in order
	}
	if tc.Function.Name != "" && s.res.Output[out].Name == "" {
		s.res.Output[out].Name = tc.Function.Name
	}
	if tc.Function.Arguments == "" {
		return
	}
	s.args.WriteString(tc.Function.Arguments)
	ev := argsDeltaEvent{Type: EventArgsDelta, ItemID: s.res.Output[out].ID, OutputIndex: out,
		Delta: tc.Function.Arguments, SequenceNumber: s.next()}
	s.begin(EventArgsDelta)
	s.buf = ev.AppendJSON(s.buf)
	s.end()
}

func (s *Streamer) addItem(it OutputItem) {
	s.res.Output = append(s.res.Output, it)
	s.open = len(s.res.Output) - 1
	s.item(EventItemAdded, s.open)
}

// closeItem ends the item being streamed with its done events.
func (s *Streamer) closeItem() {
	if s.open < 0 {
		return
	}
	i := s.open
	s.open = -1
	it := &s.res.Output[i]
	it.Status = StatusCompleted
	if it.Type == ItemMessage {
		text := s.text.String()
		s.text.Reset()
		it.Content = []OutputText{newOutputText(text)}
		ev := textDoneEvent{Type: EventTextDone, ItemID: it.ID, OutputIndex: i, Text: text,
			Logprobs: noLogprobs, SequenceNumber: s.next()}
		s.begin(EventTextDone)
		s.buf = ev.AppendJSON(s.buf)
		s.end()
		s.part(EventPartDone, i, text)
	} else {
		it.Arguments = s.args.String()
		s.args.Reset()
		ev := argsDoneEvent{Type: EventArgsDone, ItemID: it.ID, Name: it.Name, OutputIndex: i,
			Arguments: it.Arguments, SequenceNumber: s.next()}
		s.begin(EventArgsDone)
		s.buf = ev.AppendJSON(s.buf)
		s.end()
	}
	s.item(EventItemDone, i)
}

// Finish completes the response after the last chunk: the open item is closed (an
// answer with no item at all gets an empty message, as FromChat gives it), the status
// and usage are set, and response.completed (response.incomplete for an answer cut off
// by max_output_tokens or a content filter) carries the whole response. Call Finalize
// between the last chunk and Finish to store the response first.
func (s *Streamer) Finish() error {
	if err := s.Finalize(); err != nil {
		return err
	}
	typ := EventCompleted
	if s.res.Status == StatusIncomplete {
		typ = EventIncomplete
	}
	s.lifecycle(typ)
	return s.flush()
}

// Finalize closes the response (items, status, usage) without emitting its last event;
// Finish calls it, and calling it again does nothing.
func (s *Streamer) Finalize() error {
	if s.res.Status != StatusInProgress {
		return nil
	}
	s.closeItem()
	if len(s.res.Output) == 0 {
		s.addItem(OutputItem{ID: s.ids("msg_"), Type: ItemMessage, Status: StatusInProgress})
		s.part(EventPartAdded, s.open, "")
		s.closeItem()
	}
	finish(s.res, s.reason)
	s.res.Usage = usageOf(s.usage)
	return s.flush()
}

// Fail ends a stream whose upstream failed after it started: an error event, then
// response.failed with the response as far as it got.
func (s *Streamer) Fail(code, message string) error {
	s.open = -1
	s.res.Status = StatusFailed
	s.res.Error = &ResponseError{Code: code, Message: message}
	s.res.Usage = usageOf(s.usage)
	ev := errorEvent{Type: EventError, Code: code, Message: message, SequenceNumber: s.next()}
	s.begin(EventError)
	s.buf = ev.AppendJSON(s.buf)
	s.end()
	s.lifecycle(EventFailed)
	return s.flush()
}
