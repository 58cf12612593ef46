package mock

import (
	"context"
	"io"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gavel-gw/gavel/adapters"
)

// ChatStream opens a stream after Latency, or fails as ErrorRate decides. The stream is
// a role chunk, the reply in Chunks content chunks (ChunkInterval apart), a finish chunk
// and, when the request asks for it, a usage chunk with no choices.
func (p *Provider) ChatStream(ctx context.Context, req *adapters.ChatRequest) (adapters.ChunkStream, error) {
	n := p.seq.Add(1)
	if err := p.wait(ctx, p.cfg.Latency); err != nil {
		return nil, err
	}
	if p.fails(n) {
		return nil, p.injectedFailure()
	}
	s := &stream{
		p:            p,
		ctx:          ctx,
		answer:       p.answer(req, n),
		model:        req.Model,
		created:      time.Now().Unix(),
		includeUsage: req.StreamOptions != nil && req.StreamOptions.IncludeUsage,
	}
	s.pieces = p.cfg.Chunks
	if s.answer.toolName != "" {
		s.pieces = len(toolArgPieces)
	}
	if p.cfg.ChunkInterval > 0 {
		// Only a paced stream can block in Recv, so only it needs a way for Close to wake it.
		s.closing = make(chan struct{})
	}
	return s, nil
}

// toolArgPieces is how a forced tool call's "{}" arguments arrive: in more than one
// delta, as real upstreams send them, so consumers' concatenation is exercised.
var toolArgPieces = [...]string{"{", "}"}

type stream struct {
	p            *Provider
	ctx          context.Context
	answer       answer
	model        string
	created      int64
	includeUsage bool
	pieces       int // content (or tool argument) chunks

	step  int   // next chunk: 0 role, 1..pieces content, pieces+1 finish, pieces+2 usage
	err   error // sticky end: io.EOF or *adapters.Error
	timer *time.Timer

	closed  atomic.Bool
	closing chan struct{} // closed by Close; nil when the stream is not paced
}

// Recv returns the next chunk, io.EOF at the end, or an *adapters.Error when ctx ended
// or the stream was closed.
func (s *stream) Recv() (*adapters.ChatChunk, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.closed.Load() {
		return nil, s.fail(s.closedError())
	}
	if err := s.ctx.Err(); err != nil {
		return nil, s.fail(s.p.ctxError(s.ctx))
	}
	switch {
	case s.step == 0:
		s.step++
		return s.first(), nil
	case s.step <= s.pieces:
		if err := s.pace(); err != nil {
			return nil, s.fail(err)
		}
		c := s.piece(s.step)
		s.step++
		return c, nil
	case s.step == s.pieces+1:
		s.step++
		c := s.chunk()
		c.Choices[0].FinishReason = &s.answer.finish
		return c, nil
	case s.step == s.pieces+2 && s.includeUsage:
		s.step++
		c := s.chunk()
		c.Choices = []adapters.ChunkChoice{}
		u := s.answer.usage
		c.Usage = &u
		return c, nil
	}
	s.stopTimer()
	s.err = io.EOF
	return nil, io.EOF
}

// first is the role chunk; for a tool call it also names the function, as OpenAI does.
func (s *stream) first() *adapters.ChatChunk {
	c := s.chunk()
	d := &c.Choices[0].Delta
	d.Role = "assistant"
	if s.answer.toolName != "" {
		zero := 0
		d.ToolCalls = []adapters.ToolCall{{Index: &zero, ID: s.answer.toolID, Type: "function",
			Function: adapters.FunctionCall{Name: s.answer.toolName}}}
		return c
	}
	d.Content = new(string)
	return c
}

// piece is content chunk i (1-based) of the reply, or tool argument delta i.
func (s *stream) piece(i int) *adapters.ChatChunk {
	c := s.chunk()
	d := &c.Choices[0].Delta
	if s.answer.toolName != "" {
		zero := 0
		d.ToolCalls = []adapters.ToolCall{{Index: &zero, Function: adapters.FunctionCall{Arguments: toolArgPieces[i-1]}}}
		return c
	}
	text := s.answer.text
	part := text[splitPoint(text, i-1, s.pieces):splitPoint(text, i, s.pieces)]
	d.Content = &part
	return c
}

// splitPoint is where piece k of n starts: an even cut moved forward to a rune start,
// so no chunk carries half a character.
func splitPoint(s string, k, n int) int {
	j := k * len(s) / n
	for j < len(s) && !utf8.RuneStart(s[j]) {
		j++
	}
	return j
}

// chunk allocates a chunk with one empty choice in a single allocation.
func (s *stream) chunk() *adapters.ChatChunk {
	a := new(struct {
		c      adapters.ChatChunk
		choice [1]adapters.ChunkChoice
	})
	a.c = adapters.ChatChunk{
		ID:                s.answer.id,
		Object:            adapters.ObjectChatCompletionChunk,
		Created:           s.created,
		Model:             s.model,
		Choices:           a.choice[:],
		SystemFingerprint: systemFingerprint,
	}
	return &a.c
}

// pace waits ChunkInterval, reusing one timer per stream.
func (s *stream) pace() error {
	d := s.p.cfg.ChunkInterval
	if d <= 0 {
		return nil
	}
	if s.timer == nil {
		s.timer = time.NewTimer(d)
	} else {
		s.timer.Reset(d)
	}
	select {
	case <-s.timer.C:
		return nil
	case <-s.ctx.Done():
		return s.p.ctxError(s.ctx)
	case <-s.closing:
		return s.closedError()
	}
}

func (s *stream) fail(err error) error {
	s.stopTimer()
	s.err = err
	return err
}

func (s *stream) stopTimer() {
	if s.timer != nil {
		s.timer.Stop()
	}
}

func (s *stream) closedError() *adapters.Error {
	return &adapters.Error{Provider: s.p.cfg.Name, Kind: adapters.KindCanceled, Message: "stream closed"}
}

// Close ends the stream; a Recv blocked in pacing returns at once. It is idempotent and
// safe to call from another goroutine than Recv's.
func (s *stream) Close() error {
	if s.closed.CompareAndSwap(false, true) && s.closing != nil {
		close(s.closing)
	}
	return nil
}
