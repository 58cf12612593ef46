package pipeline

import (
	"context"
	"errors"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/executor"
	"github.com/gavel-gw/gavel/engine/similarity"
	"github.com/gavel-gw/gavel/engine/telemetry"
	"github.com/gavel-gw/gavel/engine/tokens"
)

// Mid-stream continuation (decision limits.midstream "continue", docs/reliability.md):
// when a translated stream fails after bytes reached the client, the next healthy target
// of the decision is asked for the rest of the answer, and what it sends is relayed in the
// same client stream as if one upstream had answered. The stream keeps what that takes
// only when the decision asks for it: the text relayed so far (the continuation's
// prefill) and the tool calls of the current attempt, which are held until the attempt's
// finish so that the client only ever sees whole calls — a call cut half-way is dropped
// and the continuation makes it again. A stream whose decision does not continue goes
// through Recv's plain path and pays nothing for this.

// priorAttempt is an attempt whose stream was cut and continued on another target: its
// route and what it used, charged at that route's price.
type priorAttempt struct {
	route string
	usage adapters.Usage
}

// continuing is a continuable stream's state (Stream.cont).
type continuing struct {
	ctx   context.Context // the request's: a stream it ended is not continued
	text  strings.Builder // the assistant text the client received: the next prefill
	calls []heldCall      // the current attempt's tool calls, held until its finish
	queue []*adapters.ChatChunk
	// The first chunk's identity, which the continuations' chunks take over: the client
	// reads one completion.
	id, model, fingerprint string
	created                int64
	started                bool
	strip                  *overlap // from a continuation's start until its overlap is decided
	prefillTokens          int      // the estimate of the current attempt's prefill
	done                   bool     // the upstream stream ended (io.EOF)
}

// heldCall is one tool call being assembled from its deltas.
type heldCall struct {
	index int // the upstream's
	call  adapters.ToolCall
	args  strings.Builder
}

// continuable reports whether a stream under x's decision continues after a failure, and
// whether it can: a passed-through stream is relayed byte for byte and cannot be (its
// failure ends with the error event), nor can one with several choices.
func continuable(x *Exchange, sr *executor.StreamResult) (asked, can bool) {
	if x.decision == nil || !x.decision.Limits.Continues() {
		return false, false
	}
	return true, sr.Raw == nil && (x.up.N == nil || *x.up.N <= 1)
}

// next returns the current attempt's next chunk: its first, then what its stream yields.
func (s *Stream) next() (*adapters.ChatChunk, error) {
	if !s.first {
		s.first = true
		return s.sr.First, nil
	}
	return s.sr.Stream.Recv()
}

// recvContinuing is Recv for a stream whose decision continues it.
func (s *Stream) recvContinuing() (*adapters.ChatChunk, error) {
	c := s.cont
	for {
		if len(c.queue) > 0 {
			q := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			return q, nil
		}
		if c.done {
			return nil, io.EOF
		}
		chunk, err := s.next()
		if err == nil {
			s.shape(chunk)
			continue
		}
		if !errors.Is(err, io.EOF) {
			if s.continueAfter(err) {
				continue
			}
			return nil, err
		}
		c.done = true
		if len(s.x.prior) > 0 {
			s.p.o.Metrics.StreamContinuation(telemetry.ContinuationOK)
		}
		// An upstream that ended without a finish chunk: what it held goes out now.
		s.release(nil)
	}
}

// shape accounts for one upstream chunk and queues what the client is to see of it.
func (s *Stream) shape(chunk *adapters.ChatChunk) {
	c, x := s.cont, s.x
	if chunk.Usage != nil {
		x.usage = chunk.Usage // the current attempt's own: priced at its route
		if len(x.prior) > 0 {
			chunk.Usage = x.totalUsage()
		}
	}
	first := !c.started
	if first {
		c.started = true
		c.id, c.model, c.fingerprint, c.created = chunk.ID, chunk.Model, chunk.SystemFingerprint, chunk.Created
	} else if len(x.prior) > 0 {
		chunk.ID, chunk.Model, chunk.SystemFingerprint, chunk.Created = c.id, c.model, c.fingerprint, c.created
	}
	var finish *adapters.ChatChunk
	for i := range chunk.Choices {
		ch := &chunk.Choices[i]
		if len(x.prior) > 0 {
			ch.Delta.Role = "" // the client has had it
		}
		if t := ch.Delta.Content; t != nil && *t != "" {
			x.completion.WriteString(*t) // what the attempt produced, counted if it reports no usage
			out := *t
			if c.strip != nil {
				var decided bool
				if out, decided = c.strip.feed(out); decided {
					c.strip = nil
				}
			}
			s.relayed(out)
			ch.Delta.Content = &out
		}
		if len(ch.Delta.ToolCalls) > 0 {
			c.hold(ch.Delta.ToolCalls)
			ch.Delta.ToolCalls = nil
		}
		if ch.FinishReason != nil {
			finish = chunk
		}
	}
	if finish != nil {
		s.release(finish)
		return
	}
	if first || !emptyChunk(chunk) {
		if out := relayChunk(chunk, x.wantUse); out != nil {
			c.queue = append(c.queue, out)
		}
	}
}

// relayed records text the client is about to receive.
func (s *Stream) relayed(t string) {
	if t == "" {
		return
	}
	x := s.x
	s.cont.text.WriteString(t)
	if x.primary != nil && len(x.shadowText) < similarity.MaxBytes {
		x.shadowText = append(x.shadowText, t[:min(len(t), similarity.MaxBytes-len(x.shadowText))]...)
	}
}

// release queues what the attempt held — text an undecided overlap kept, then its tool
// calls, whole — ahead of finish, the chunk that ends the answer (nil at the end of the
// stream).
func (s *Stream) release(finish *adapters.ChatChunk) {
	c := s.cont
	if c.strip != nil {
		t := c.strip.flush()
		c.strip = nil
		if t != "" {
			s.relayed(t)
			c.queue = append(c.queue, c.chunk(adapters.Delta{Content: &t}))
		}
	}
	if len(c.calls) > 0 {
		calls := make([]adapters.ToolCall, len(c.calls))
		for i := range c.calls {
			h := &c.calls[i]
			idx := i
			calls[i] = h.call
			calls[i].Index = &idx
			calls[i].Function.Arguments = h.args.String()
			if calls[i].Type == "" {
				calls[i].Type = "function"
			}
		}
		c.calls = c.calls[:0]
		c.queue = append(c.queue, c.chunk(adapters.Delta{ToolCalls: calls}))
	}
	if finish != nil && !emptyChunk(finish) {
		if out := relayChunk(finish, s.x.wantUse); out != nil {
			c.queue = append(c.queue, out)
		}
	}
}

// chunk is a chunk of the client's completion carrying delta.
func (c *continuing) chunk(d adapters.Delta) *adapters.ChatChunk {
	return &adapters.ChatChunk{ID: c.id, Object: adapters.ObjectChatCompletionChunk, Created: c.created, Model: c.model,
		SystemFingerprint: c.fingerprint, Choices: []adapters.ChunkChoice{{Index: 0, Delta: d}}}
}

// hold adds tool-call deltas to the calls being assembled.
func (c *continuing) hold(deltas []adapters.ToolCall) {
	for i := range deltas {
		d := &deltas[i]
		idx := 0
		if d.Index != nil {
			idx = *d.Index
		}
		var h *heldCall
		for j := range c.calls {
			if c.calls[j].index == idx {
				h = &c.calls[j]
				break
			}
		}
		if h == nil {
			c.calls = append(c.calls, heldCall{index: idx})
			h = &c.calls[len(c.calls)-1]
		}
		if d.ID != "" {
			h.call.ID = d.ID
		}
		if d.Type != "" {
			h.call.Type = d.Type
		}
		if d.Function.Name != "" {
			h.call.Function.Name = d.Function.Name
		}
		h.args.WriteString(d.Function.Arguments)
	}
}

// heldText is the text of the calls being assembled (tokens the attempt produced).
func (c *continuing) heldText() string {
	var b strings.Builder
	for i := range c.calls {
		b.WriteString(c.calls[i].call.Function.Name)
		b.WriteString(c.calls[i].args.String())
	}
	return b.String()
}

// emptyChunk reports a chunk that tells the client nothing.
func emptyChunk(c *adapters.ChatChunk) bool {
	if c.Usage != nil {
		return false
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		d := &ch.Delta
		if ch.FinishReason != nil || d.Role != "" || len(d.ToolCalls) > 0 ||
			(d.Content != nil && *d.Content != "") || (d.Refusal != nil && *d.Refusal != "") {
			return false
		}
	}
	return true
}

// continueAfter tries to continue the answer after its stream failed with cause; false
// leaves the failure to be reported (Fail). The cut attempt becomes a prior attempt,
// charged for what it produced; the stream reads the continuation from then on.
func (s *Stream) continueAfter(cause error) bool {
	c, x := s.cont, s.x
	if c.ctx.Err() != nil {
		return false // the client left, the deadline passed, or gavel is shutting down
	}
	text := c.text.String()
	failed := s.sr.Target
	sr, err := s.p.o.Executor.ContinueStream(c.ctx, x.up, x.decision, executor.Continuation{After: failed, Text: text})
	if err != nil {
		s.p.o.Metrics.StreamContinuation(telemetry.ContinuationFailed)
		s.p.log.Warn("stream could not be continued", "decision_id", x.ID, "route", x.route, "cause", cause, "err", err)
		return false
	}
	// What the cut attempt used: its usage when it reported any, else gavel's estimates of
	// its prompt (with the prefill it was sent) and the tokens of what it produced.
	u := adapters.Usage{}
	if x.usage != nil {
		u = *x.usage
	}
	if u.PromptTokens == 0 {
		u.PromptTokens = x.EstimatedInputTokens() + c.prefillTokens
	}
	produced := x.completion.Total()
	if held := c.heldText(); held != "" {
		produced += tokens.EstimateModel(failed.Model, held)
	}
	u.CompletionTokens = max(u.CompletionTokens, produced)
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	x.prior = append(x.prior, priorAttempt{route: x.route, usage: u})
	s.p.log.Info("stream continued on another target", "decision_id", x.ID, "from", x.route, "to", sr.Target.String(), "cause", cause)

	s.sr.Stream.Close()
	s.sr, s.first = sr, false
	x.route, x.usage = sr.Target.String(), nil
	x.upstream += sr.Upstream
	for _, d := range sr.Dropped {
		x.dropped = appendNew(x.dropped, d)
	}
	x.completion.Start(&s.p.counter, sr.Target.Model)
	c.calls = c.calls[:0] // a call cut half-way is made again by the continuation
	c.strip = newOverlap(text)
	c.prefillTokens = 0
	if text != "" {
		c.prefillTokens = tokens.EstimateModel(sr.Target.Model, text)
	}
	return true
}

func appendNew(list []string, s string) []string {
	for _, v := range list {
		if v == s {
			return list
		}
	}
	return append(list, s)
}

// totalUsage is the usage of every attempt of the answer: the prior (cut) ones and the
// current one; nil when none reported or was counted.
func (x *Exchange) totalUsage() *adapters.Usage {
	if len(x.prior) == 0 {
		return x.usage
	}
	var t adapters.Usage
	if x.usage != nil {
		t = *x.usage
		if d := x.usage.PromptTokensDetails; d != nil {
			cp := *d
			t.PromptTokensDetails = &cp
		}
		t.CompletionTokensDetails = nil
	}
	for i := range x.prior {
		u := &x.prior[i].usage
		t.PromptTokens += u.PromptTokens
		t.CompletionTokens += u.CompletionTokens
		t.TotalTokens += u.PromptTokens + u.CompletionTokens
	}
	return &t
}

// ContinuedFrom lists the routes ("provider/model") whose streams were cut and continued
// on another target, in order; nil when the answer came from one target.
func (x *Exchange) ContinuedFrom() []string {
	if len(x.prior) == 0 {
		return nil
	}
	out := make([]string, len(x.prior))
	for i := range x.prior {
		out[i] = x.prior[i].route
	}
	return out
}

// Overlap stripping bounds: a continuation that repeats the end of what was relayed is
// trimmed of the repetition, looked for in the last overlapWindow bytes. A repetition
// shorter than minOverlap bytes is taken for a coincidence (a continuation may rightly
// begin with the letters the text ended with), unless it is whitespace only (the prefill
// was sent without its trailing whitespace, which the continuation then writes again) or
// the whole relayed text (the target started over).
const (
	overlapWindow = 512
	minOverlap    = 8
)

// overlap strips from the start of a continuation what it repeats of the relayed text.
// It holds the continuation's first bytes until the longest repetition is known: while
// what it holds still occurs in the relayed text's tail, a longer one may follow.
type overlap struct {
	tail  string // the relayed text's last overlapWindow bytes
	whole bool   // tail is the whole relayed text
	held  []byte
}

// newOverlap strips what a continuation repeats of relayed; nil when relayed is empty.
func newOverlap(relayed string) *overlap {
	if relayed == "" {
		return nil
	}
	o := &overlap{tail: relayed, whole: true}
	if len(relayed) > overlapWindow {
		cut := len(relayed) - overlapWindow
		for cut < len(relayed) && !utf8.RuneStart(relayed[cut]) {
			cut++
		}
		o.tail, o.whole = relayed[cut:], false
	}
	return o
}

// feed takes the continuation's next piece and returns what to relay now; decided is
// true once the overlap is known (everything after goes through untouched).
func (o *overlap) feed(piece string) (out string, decided bool) {
	o.held = append(o.held, piece...)
	if len(o.held) < len(o.tail) && strings.Contains(o.tail, string(o.held)) {
		return "", false
	}
	return o.flush(), true
}

// flush decides with what is held (the continuation ended or is long enough) and returns
// the text to relay.
func (o *overlap) flush() string {
	b := string(o.held)
	o.held = nil
	return b[o.repeated(b):]
}

// repeated is the length of the longest prefix of b that the tail ends with and that is
// taken for a repetition.
func (o *overlap) repeated(b string) int {
	for k := min(len(b), len(o.tail)); k > 0; k-- {
		if k < len(b) && !utf8.RuneStart(b[k]) {
			continue
		}
		if !strings.HasSuffix(o.tail, b[:k]) {
			continue
		}
		if k >= minOverlap || (o.whole && k == len(o.tail)) || strings.TrimFunc(b[:k], unicode.IsSpace) == "" {
			return k
		}
	}
	return 0
}
