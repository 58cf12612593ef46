package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"io"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
)

var messageStopType = []byte(`"message_stop"`)

// streamOptions is what a stream needs to know of the request it answers.
type streamOptions struct {
	model        string // the requested model, used if message_start names none
	includeUsage bool   // stream_options.include_usage: end with a usage chunk
	created      int64  // the chunks' "created", fixed for the whole stream
}

// stream is the adapters.ChunkStream of a Messages API event stream. Each Recv reads
// events until one yields a chunk, so nothing is buffered beyond the current event. Recv
// is meant for one goroutine; Close may be called from another to abort it.
type stream struct {
	httpx.StreamBody
	p    *Provider
	opts streamOptions

	events int // events decoded, for the truncation message

	ev       streamEvent // decode target, reused for every event
	started  bool        // message_start seen
	finished bool        // a finish_reason chunk was sent
	id       string
	model    string
	tools    map[int]int // content block index → tool call ordinal, for tool_use blocks
	usage    wireUsage
	counts   [4]int // storage behind usage's pointers, so updates do not allocate

	// tail holds the chunks message_stop yields (finish_reason if none was sent yet, and
	// usage), handed out by the following Recv calls after the body is done with.
	tail  [2]*adapters.ChatChunk
	ntail int
}

func newStream(ctx context.Context, p *Provider, body io.ReadCloser, opts streamOptions) *stream {
	s := &stream{p: p, opts: opts, model: opts.model}
	s.Open(ctx, &p.Base, body)
	return s
}

// Recv returns the next chunk, io.EOF after message_stop (and the usage chunk, when the
// request asked for one), or an *adapters.Error.
func (s *stream) Recv() (*adapters.ChatChunk, error) {
	if s.ntail > 0 && !s.Closed() {
		c := s.tail[0]
		s.tail[0], s.tail[1] = s.tail[1], nil
		s.ntail--
		return c, nil
	}
	if err := s.Stopped(); err != nil {
		return nil, err
	}
	for {
		data, err := s.Next()
		if err != nil {
			// The SSE spec drops an event the body cut short, but one that is a complete
			// message_stop shows the upstream finished.
			if err == io.EOF && isMessageStop(data) && s.ReadError(err) == nil {
				return s.result(s.handle(bytes.TrimSpace(data)))
			}
			return nil, s.finish(s.readFailure(err))
		}
		data = bytes.TrimSpace(data)
		if len(data) == 0 {
			continue
		}
		c, err := s.handle(data)
		if c != nil || err != nil || s.Err() != nil {
			return s.result(c, err)
		}
	}
}

// isMessageStop reports whether data, the unfinished event at the end of the body, is a
// message_stop. It is checked only there, so its decoding cost does not matter.
func isMessageStop(data []byte) bool {
	if !bytes.Contains(data, messageStopType) {
		return false
	}
	var ev struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(data, &ev) == nil && ev.Type == "message_stop"
}

// result returns what handle produced: a chunk, an error that ends the stream, or the
// first chunk of message_stop's tail (or io.EOF when the tail is empty).
func (s *stream) result(c *adapters.ChatChunk, err error) (*adapters.ChatChunk, error) {
	if err != nil {
		return nil, s.finish(err)
	}
	if c != nil {
		return c, nil
	}
	return s.Recv()
}

// handle decodes one event's data and returns the chunk it yields, if any. message_stop
// ends the stream: it fills the tail and records io.EOF.
func (s *stream) handle(data []byte) (*adapters.ChatChunk, error) {
	ev := &s.ev
	*ev = streamEvent{}
	if err := json.Unmarshal(data, ev); err != nil {
		return nil, s.p.ProtocolError("cannot decode stream event", err)
	}
	s.events++
	switch ev.Type {
	case "ping":
		return nil, nil
	case "error":
		return nil, s.p.streamError(errorObject(ev.Error))
	case "message_start":
		if s.started {
			return nil, s.p.ProtocolError("second message_start in one stream", nil)
		}
		s.started = true
		s.id = ev.Message.ID
		if ev.Message.Model != "" {
			s.model = ev.Message.Model
		}
		s.addUsage(&ev.Message.Usage)
		c := s.chunk()
		c.Choices[0].Delta.Role = "assistant"
		c.Choices[0].Delta.Content = &c.box.text // "" as OpenAI's first chunk has
		return &c.ChatChunk, nil
	case "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop":
		if !s.started {
			return nil, s.p.ProtocolError(ev.Type+" before message_start", nil)
		}
	default:
		// Event types may be added over time, and a client must ignore unknown ones.
		return nil, nil
	}

	switch ev.Type {
	case "content_block_start":
		b := &ev.ContentBlock
		switch b.Type {
		case "text":
			if b.Text != "" {
				return s.textChunk(b.Text), nil
			}
		case "tool_use":
			if s.tools == nil {
				s.tools = make(map[int]int, 2)
			}
			ordinal := len(s.tools)
			if prev, ok := s.tools[ev.Index]; ok {
				ordinal = prev // a repeated start for one block continues the same call
			}
			s.tools[ev.Index] = ordinal
			c := s.chunk()
			tc := c.toolCall(ordinal)
			tc.ID, tc.Type, tc.Function.Name = b.ID, "function", b.Name
			return &c.ChatChunk, nil
		}
	case "content_block_delta":
		d := &ev.Delta
		switch d.Type {
		case "text_delta":
			if d.Text != "" {
				return s.textChunk(d.Text), nil
			}
		case "input_json_delta":
			// Deltas of blocks that are not tool_use (a server tool's input) are not
			// forwarded: the client did not declare those tools and cannot run them.
			ordinal, ok := s.tools[ev.Index]
			if ok && d.PartialJSON != "" {
				c := s.chunk()
				c.toolCall(ordinal).Function.Arguments = d.PartialJSON
				return &c.ChatChunk, nil
			}
		}
		// thinking_delta, signature_delta, citations_delta: not part of the OpenAI answer.
	case "message_delta":
		s.addUsage(&ev.Usage)
		if ev.Delta.StopReason != "" && !s.finished {
			return s.finishChunk(ev.Delta.StopReason), nil
		}
	case "message_stop":
		s.MarkDone()
		if !s.finished {
			s.tail[s.ntail] = s.finishChunk("end_turn")
			s.ntail++
		}
		if s.opts.includeUsage {
			c := s.chunk()
			c.Choices = c.box.choice[:0]
			c.Usage = usage(&s.usage)
			s.tail[s.ntail] = &c.ChatChunk
			s.ntail++
		}
		s.finish(io.EOF)
	}
	return nil, nil
}

// addUsage takes the counts an event reports. Anthropic's counts are cumulative, so a
// later count replaces an earlier one; a count the event leaves out is kept.
func (s *stream) addUsage(u *wireUsage) {
	set := func(dst **int, slot *int, v *int) {
		if v != nil {
			*slot = *v
			*dst = slot
		}
	}
	set(&s.usage.InputTokens, &s.counts[0], u.InputTokens)
	set(&s.usage.OutputTokens, &s.counts[1], u.OutputTokens)
	set(&s.usage.CacheCreationInputTokens, &s.counts[2], u.CacheCreationInputTokens)
	set(&s.usage.CacheReadInputTokens, &s.counts[3], u.CacheReadInputTokens)
}

// chunkBox is a chunk allocated together with the storage its pointers and slices refer
// to, so that a typical chunk costs one allocation.
type chunkBox struct {
	adapters.ChatChunk
	box struct {
		choice [1]adapters.ChunkChoice
		call   [1]adapters.ToolCall
		index  int
		text   string
		finish string
	}
}

// chunk returns a chunk with the stream's envelope and one empty choice.
func (s *stream) chunk() *chunkBox {
	c := new(chunkBox)
	c.ID, c.Object, c.Created, c.Model = s.id, adapters.ObjectChatCompletionChunk, s.opts.created, s.model
	c.Choices = c.box.choice[:]
	return c
}

// toolCall gives the chunk's choice one tool call delta with the given index.
func (c *chunkBox) toolCall(ordinal int) *adapters.ToolCall {
	c.box.index = ordinal
	c.box.call[0].Index = &c.box.index
	c.Choices[0].Delta.ToolCalls = c.box.call[:]
	return &c.box.call[0]
}

func (s *stream) textChunk(text string) *adapters.ChatChunk {
	c := s.chunk()
	c.box.text = text
	c.Choices[0].Delta.Content = &c.box.text
	return &c.ChatChunk
}

func (s *stream) finishChunk(stopReason string) *adapters.ChatChunk {
	s.finished = true
	c := s.chunk()
	c.box.finish = finishReason(stopReason)
	c.Choices[0].FinishReason = &c.box.finish
	return &c.ChatChunk
}

// readFailure classifies why the event reader stopped before message_stop.
func (s *stream) readFailure(err error) error {
	if e := s.ReadError(err); e != nil {
		return e
	}
	return s.EndedBefore("message_stop", "event", s.events)
}

// finish ends the stream; a tail not yet handed out goes with a stream that failed.
func (s *stream) finish(err error) error {
	if err != io.EOF {
		s.ntail = 0
	}
	return s.End(err)
}
