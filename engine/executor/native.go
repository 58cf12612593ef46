package executor

import (
	"context"

	"github.com/failsafe-go/failsafe-go"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
)

// rawFor is the passed-through request one target receives, or nil when its provider
// cannot pass bodies through: the target's model, and the decision's token cap.
func rawFor(raw *adapters.RawRequest, p *pipeline, d *decision.Decision, stream bool) *adapters.RawRequest {
	if raw == nil {
		return nil
	}
	if _, ok := p.prov.(adapters.Passthrough); !ok {
		return nil
	}
	r := *raw
	r.Model = p.target.Model
	r.Stream = stream
	r.MaxOutputTokens = d.Limits.MaxTokens
	return &r
}

// ChatNative is Chat for a client that spoke another wire format than OpenAI's (raw is
// its request as sent, req the same request in the canonical types): a target whose
// provider speaks raw.Protocol natively gets raw passed through (ChatResult.Raw), any
// other gets req translated (ChatResult.Response). Either way the call goes through the
// target's retries, breaker and timeout, and failover may cross from one kind of target
// to the other.
func (e *Executor) ChatNative(ctx context.Context, req *adapters.ChatRequest, raw *adapters.RawRequest, d *decision.Decision) (*ChatResult, error) {
	out, t, up, err := e.walk(ctx, d, func(exec failsafe.Execution[*outcome], p *pipeline) (*outcome, error) {
		nr := rawFor(raw, p, d, false)
		r, dropped, err := e.fitNative(p, upstreamRequest(req, p.target, d, false), nr)
		if err != nil {
			return nil, err
		}
		out, err := p.attemptChat(exec, e, r, nr)
		if out != nil {
			out.dropped = dropped
		}
		return out, err
	})
	if err != nil {
		return nil, err
	}
	return &ChatResult{Target: t, Response: out.resp, Raw: out.raw, Upstream: up, Dropped: out.dropped}, nil
}

// OpenStreamNative is OpenStream for a client that spoke another wire format (see
// ChatNative): a passed-through stream comes back as StreamResult.Raw with its first event
// in RawFirst, a translated one as Stream and First.
func (e *Executor) OpenStreamNative(ctx context.Context, req *adapters.ChatRequest, raw *adapters.RawRequest, d *decision.Decision) (*StreamResult, error) {
	out, t, up, err := e.walk(ctx, d, func(exec failsafe.Execution[*outcome], p *pipeline) (*outcome, error) {
		nr := rawFor(raw, p, d, true)
		r, dropped, err := e.fitNative(p, upstreamRequest(req, p.target, d, true), nr)
		if err != nil {
			return nil, err
		}
		out, err := p.attemptStream(exec, e, r, nr)
		if out != nil {
			out.dropped = dropped
		}
		return out, err
	})
	if err != nil {
		return nil, err
	}
	p, _ := e.pipeline(t)
	res := &StreamResult{Target: t, Upstream: up, Dropped: out.dropped}
	if out.rawStream != nil {
		res.RawFirst, res.Raw = out.rawFirst, &trackedRaw{RawStream: out.rawStream, streamTracker: p.tracker(e, ctx, out)}
	} else {
		res.First, res.Stream = out.first, &trackedStream{ChunkStream: out.stream, streamTracker: p.tracker(e, ctx, out)}
	}
	return res, nil
}

// CountTokens passes a token-counting request (raw.Op is adapters.OpCountTokens) to the
// decision's first target whose provider serves it natively, through the target's
// pipeline; a target that cannot count is skipped like one without the capability.
func (e *Executor) CountTokens(ctx context.Context, raw *adapters.RawRequest, d *decision.Decision) (*ChatResult, error) {
	out, t, up, err := e.walk(ctx, d, func(exec failsafe.Execution[*outcome], p *pipeline) (*outcome, error) {
		r := rawFor(raw, p, d, false)
		if r == nil {
			return nil, errNoCount(p)
		}
		r.MaxOutputTokens = 0
		ctx, at := e.startAttempt(exec, p, opChat, nil)
		out, err := p.measured(exec, e, func() (*outcome, error) {
			res, err := p.prov.(adapters.Passthrough).RawCall(ctx, r)
			if err != nil {
				if err == adapters.ErrNotNative {
					return nil, errNoCount(p)
				}
				return nil, err
			}
			return &outcome{raw: res}, nil
		})
		at.end(out, err)
		return out, err
	})
	if err != nil {
		return nil, err
	}
	return &ChatResult{Target: t, Raw: out.raw, Upstream: up}, nil
}

func errNoCount(p *pipeline) error {
	return &adapters.Error{Provider: p.target.Provider, Kind: adapters.KindNotFound, Message: "this provider does not count tokens for this protocol"}
}
