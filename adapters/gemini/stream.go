package gemini

import (
	"bytes"
	"context"
	"encoding/json"
	"io"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
	"github.com/gavel-gw/gavel/adapters/internal/sse"
)

// maxCandidates bounds the candidate index an event may name (Gemini allows 8 candidates),
// so that a broken one cannot make the stream allocate state for millions of them.
const maxCandidates = 128

// stream is the adapters.ChunkStream of a streamGenerateContent?alt=sse response. Each
// SSE event is a partial GenerateContentResponse and becomes zero or more OpenAI chunks.
// Gemini sends no terminator like OpenAI's [DONE]: the stream has ended normally when
// the body ends after a candidate has reported its finishReason.
//
// Recv is meant for one goroutine; Close may be called from another to abort it.
type stream struct {
	httpx.StreamBody
	p *Provider

	tail error // how the stream ends once pending is drained

	// The envelope every chunk carries, fixed by the first event.
	id           string
	model        string
	created      int64
	includeUsage bool

	dec      *sse.JSONDecoder      // decodes events with state kept from one to the next
	ev       generateResponse      // decode target, reused event after event
	pending  []*adapters.ChatChunk // chunks of the last event not yet returned
	next     int                   // index of the next pending chunk
	events   int
	finished bool          // a candidate reported its finishReason
	usage    usageMetadata // the latest usageMetadata; Gemini repeats it, growing
	cands    []candState   // per candidate index
	calls    int           // tool call ids handed out
}

// candState is what the stream remembers of one candidate (one OpenAI choice).
type candState struct {
	started   bool // its role chunk went out
	finished  bool // its finish chunk went out
	toolCalls int  // tool calls so far: the index of the next one
}

func newStream(ctx context.Context, p *Provider, body io.ReadCloser, model string, includeUsage bool) *stream {
	s := &stream{p: p, dec: sse.GetJSONDecoder(), model: model,
		created: p.now().Unix(), includeUsage: includeUsage}
	s.Open(ctx, &p.Base, body)
	return s
}

// Recv returns the next chunk, io.EOF after the last one, or an *adapters.Error.
func (s *stream) Recv() (*adapters.ChatChunk, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	for {
		if s.next < len(s.pending) {
			c := s.pending[s.next]
			s.pending[s.next] = nil
			s.next++
			return c, nil
		}
		if s.tail != nil {
			return nil, s.finish(s.tail)
		}
		if s.Closed() {
			return nil, s.finish(s.ClosedError())
		}
		s.pending, s.next = s.pending[:0], 0
		data, err := s.Next()
		if err != nil {
			s.tail = s.end(data, err)
			continue
		}
		data = bytes.TrimSpace(data)
		if len(data) == 0 {
			continue
		}
		if err := s.event(data); err != nil {
			return nil, s.finish(err)
		}
	}
}

// end decides how the stream ends once the event reader stopped. partial is the data of
// an event cut off by the end of the body. A normal end may still queue the usage chunk.
func (s *stream) end(partial []byte, err error) error {
	if e := s.ReadError(err); e != nil {
		return e
	}
	if partial = bytes.TrimSpace(partial); len(partial) > 0 {
		// The SSE spec drops an event the body cut short. One that is whole JSON lacks
		// only its blank line, which a server closing the connection may leave out.
		if partial[0] != '{' || !json.Valid(partial) {
			return s.Truncated("stream ended in the middle of an event")
		}
		if e := s.event(partial); e != nil {
			return e
		}
	}
	if !s.finished {
		s.pending = s.pending[:0]
		return s.EndedBefore("a finish reason", "event", s.events)
	}
	if s.includeUsage && s.usage != (usageMetadata{}) {
		b := s.newChunk(0)
		b.chunk.Choices = b.choice[:0] // "choices": [], as OpenAI sends it
		b.chunk.Usage = toUsage(&s.usage)
		s.pending = append(s.pending, &b.chunk)
	}
	return io.EOF
}

// event turns one GenerateContentResponse into chunks, appended to pending.
func (s *stream) event(data []byte) error {
	ev := &s.ev
	ev.reset()
	if err := s.dec.Decode(data, ev); err != nil {
		return s.p.ProtocolError("cannot decode stream event", err)
	}
	if w, ok := parseErrorObject(ev.Error); ok {
		return s.p.streamError(w)
	}
	if s.events == 0 {
		s.id = responseID(string(ev.ResponseID))
		s.model = safeModel(string(ev.ModelVersion), s.model)
	}
	s.events++
	if ev.UsageMetadata != (usageMetadata{}) {
		s.usage = ev.UsageMetadata
	}
	if len(ev.Candidates) == 0 {
		if ev.PromptFeedback != nil && ev.PromptFeedback.BlockReason != "" {
			return s.p.own(noCandidates(ev))
		}
		return nil // a usage-only event
	}
	for i := range ev.Candidates {
		c := &ev.Candidates[i]
		idx := c.Index
		if idx == 0 {
			idx = i
		}
		if idx < 0 || idx >= maxCandidates {
			return s.p.ProtocolError("stream event names an out-of-range candidate index", nil)
		}
		for len(s.cands) <= idx {
			s.cands = append(s.cands, candState{})
		}
		st := &s.cands[idx]
		if st.finished {
			continue // nothing may follow a choice's finish chunk
		}
		if !st.started {
			st.started = true
			b := s.newChunk(idx)
			b.choice[0].Delta = adapters.Delta{Role: "assistant", Content: &b.text}
			s.pending = append(s.pending, &b.chunk)
		}
		var text string
		for j := range c.Content.Parts {
			p := &c.Content.Parts[j]
			switch {
			case p.Thought:
				// Thought summaries are not the answer; see toChatResponse.
			case p.FunctionCall != nil:
				s.textChunk(idx, text)
				text = ""
				b := s.newChunk(idx)
				b.index = st.toolCalls
				b.call[0] = adapters.ToolCall{Index: &b.index, ID: callID(s.calls), Type: "function",
					Function: adapters.FunctionCall{Name: p.FunctionCall.Name, Arguments: compactArgs(p.FunctionCall.Args)}}
				b.choice[0].Delta.ToolCalls = b.call[:]
				s.pending = append(s.pending, &b.chunk)
				st.toolCalls++
				s.calls++
			case text == "":
				text = p.Text
			default:
				text += p.Text
			}
		}
		s.textChunk(idx, text)
		if c.FinishReason != "" {
			st.finished, s.finished = true, true
			b := s.newChunk(idx)
			b.finish = finishReason(c.FinishReason, st.toolCalls > 0)
			b.choice[0].FinishReason = &b.finish
			s.pending = append(s.pending, &b.chunk)
		}
	}
	return nil
}

func (s *stream) textChunk(idx int, text string) {
	if text == "" {
		return
	}
	b := s.newChunk(idx)
	b.text = text
	b.choice[0].Delta.Content = &b.text
	s.pending = append(s.pending, &b.chunk)
}

// chunkBox holds a chunk together with everything its pointers point to, so that a
// chunk costs one allocation however it is filled.
type chunkBox struct {
	chunk  adapters.ChatChunk
	choice [1]adapters.ChunkChoice
	call   [1]adapters.ToolCall
	text   string
	finish string
	index  int
}

func (s *stream) newChunk(choice int) *chunkBox {
	b := &chunkBox{chunk: adapters.ChatChunk{ID: s.id, Object: adapters.ObjectChatCompletionChunk,
		Created: s.created, Model: s.model}}
	b.choice[0].Index = choice
	b.chunk.Choices = b.choice[:]
	return b
}

// finish ends the stream and lets go of what it decoded with. Gemini has no end marker
// to drain past: a body read to its end has already handed its connection back.
func (s *stream) finish(err error) error {
	sse.PutJSONDecoder(s.dec)
	s.dec = nil
	s.pending, s.next, s.tail = nil, 0, nil
	s.ev = generateResponse{}
	return s.End(err)
}
