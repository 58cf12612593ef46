package pipeline

import (
	"context"
	"errors"
	"io"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/similarity"
)

// Passthrough gives a Messages or Responses exchange the client's request as it was sent,
// before AdmitChat: targets whose provider speaks that protocol natively receive it with
// only the model rewritten (see adapters.Passthrough); the others receive the canonical
// request AdmitChat gets. Without it every target gets the canonical request.
func (x *Exchange) Passthrough(raw *adapters.RawRequest) { x.raw = raw }

// Fields sets input.request.fields for a request whose body is in another protocol than
// Chat Completions (the names of its members, as that protocol spells them), before
// AdmitChat; the canonical request's own names would say nothing of what the client sent.
func (x *Exchange) Fields(names []string) { x.fields = names }

// native is the raw request to pass through, nil when there is none or when the decision
// redacts: redaction works on the canonical request, so a redacting decision is carried
// out by translation, for every target alike.
func (x *Exchange) native() *adapters.RawRequest {
	if x.raw == nil || (x.decision != nil && len(x.decision.Redact) > 0) {
		return nil
	}
	return x.raw
}

// ChatNative is Chat for an exchange that may pass through (Passthrough): the answer is
// either a canonical response or, from a target that speaks the client's protocol, the
// upstream's own answer (raw), which the caller relays as it is.
func (p *Pipeline) ChatNative(ctx context.Context, x *Exchange) (*adapters.ChatResponse, *adapters.RawResult, error) {
	raw := x.native()
	if raw == nil {
		res, err := p.Chat(ctx, x)
		return res, nil, err
	}
	up := x.up
	if up.Stream {
		r := *up
		r.Stream = false
		up = &r
	}
	res, err := p.o.Executor.ChatNative(ctx, up, raw, x.decision)
	if err != nil {
		return nil, nil, err
	}
	x.route, x.upstream, x.dropped = res.Target.String(), res.Upstream, res.Dropped
	if res.Raw == nil {
		x.usage = res.Response.Usage
		if x.primary != nil {
			x.answer = res.Response
		}
		if x.usage == nil {
			x.uncounted, x.answer = true, res.Response
		}
		return res.Response, nil, nil
	}
	x.usage = res.Raw.Usage
	if x.primary != nil {
		// The shadows compare their answers with the text the client got.
		x.rawAnswer = true
		x.keepShadowText(adapters.RawAnswerText(raw.Protocol, res.Raw.Body))
	}
	if x.usage == nil {
		// Counted with the tokenizer from the prompt: the raw answer is not read for text.
		x.uncounted = true
	}
	return nil, res.Raw, nil
}

// CountTokens asks the decision's targets that count natively how many input tokens the
// passed-through request (Op adapters.OpCountTokens) takes. The request is judged like any
// other but costs nothing. A decision none of whose targets counts natively is an
// *adapters.Error of KindNotFound inside the executor's FailedError.
func (p *Pipeline) CountTokens(ctx context.Context, x *Exchange) (*adapters.RawResult, error) {
	if x.raw == nil {
		return nil, &PolicyError{Err: errNoRaw}
	}
	res, err := p.o.Executor.CountTokens(ctx, x.raw, x.decision)
	if err != nil {
		return nil, err
	}
	x.route, x.upstream = res.Target.String(), res.Upstream
	x.usage = &adapters.Usage{} // counting is free
	return res.Raw, nil
}

var errNoRaw = errors.New("count_tokens needs the request as sent (Exchange.Passthrough)")

// Raw reports that the stream is passed through: read it with RecvRaw, not Recv.
func (s *Stream) Raw() bool { return s.sr.Raw != nil }

// RecvRaw returns the next event of a passed-through stream as the upstream sent it,
// io.EOF at the end. Its usage is recorded for accounting when the stream ends.
func (s *Stream) RecvRaw() (adapters.RawEvent, error) {
	var ev adapters.RawEvent
	var err error
	if !s.first {
		s.first = true
		ev = s.sr.RawFirst
	} else {
		ev, err = s.sr.Raw.Recv()
		if u := s.sr.Raw.Usage(); u != nil {
			s.x.usage = u
		}
		if err == io.EOF && s.x.usage == nil {
			s.x.uncounted = true
		}
	}
	if err == nil && s.x.primary != nil && len(s.x.shadowText) < similarity.MaxBytes {
		// The shadows compare their answers with the text the client got.
		s.x.keepShadowText(adapters.RawEventText(s.x.raw.Protocol, ev))
	}
	return ev, err
}

// EstimatedInputTokens is gavel's estimate of the request's input tokens, as the policy
// saw it (input.request.est_input_tokens); 0 before the decision.
func (x *Exchange) EstimatedInputTokens() int {
	if x.features == nil {
		return 0
	}
	return x.features.EstInputTokens
}
