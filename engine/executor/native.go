package executor

import (
	"context"
	"errors"

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

// fitted is a canonical request fitted to a target (fit), with what it dropped; req is
// nil when the target cannot be sent it (unfit says why) and only a raw call can serve.
type fitted struct {
	req     *adapters.ChatRequest
	dropped []string
	unfit   error
}

// fitNative fits the canonical request to a target, for the case it does not take the
// raw request. A request the target cannot be sent canonically fails the attempt at once
// only when there is no raw request to try instead.
func (e *Executor) fitNative(p *pipeline, req *adapters.ChatRequest, raw *adapters.RawRequest) (fitted, error) {
	r, dropped, err := e.fit(p, req)
	if err != nil {
		if raw == nil {
			return fitted{}, err
		}
		return fitted{unfit: err}, nil
	}
	return fitted{req: r, dropped: dropped}, nil
}

// errUnfit is an attempt's failure when the raw call was not native and the canonical
// request could not be fitted; the caller reports the fit's reason instead.
var errUnfit = &adapters.Error{Kind: adapters.KindBadRequest, Message: "the request cannot be sent to this provider"}

// settle puts the fit's reason in place of errUnfit.
func (f fitted) settle(err error) error {
	if f.unfit != nil && errors.Is(err, errUnfit) {
		return f.unfit
	}
	return err
}

// ChatNative is Chat for a client that spoke another wire format than OpenAI's (raw is
// its request as sent, req the same request in the canonical types): a target whose
// provider speaks raw.Protocol natively gets raw passed through (ChatResult.Raw), any
// other gets req translated (ChatResult.Response). Either way the call goes through the
// target's retries, breaker and timeout, and failover may cross from one kind of target
// to the other.
func (e *Executor) ChatNative(ctx context.Context, req *adapters.ChatRequest, raw *adapters.RawRequest, d *decision.Decision) (*ChatResult, error) {
	out, t, up, err := e.walk(ctx, d, func(exec *try, p *pipeline) (*outcome, error) {
		pass := rawFor(raw, p, d, false)
		f, err := e.fitNative(p, upstreamRequest(req, p.target, d, false), pass)
		if err != nil {
			return nil, err
		}
		out, err := p.attemptChat(exec, e, f.req, pass)
		if out != nil && out.raw == nil {
			out.dropped = f.dropped
		}
		return out, f.settle(err)
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
	out, t, up, err := e.walk(ctx, d, func(exec *try, p *pipeline) (*outcome, error) {
		pass := rawFor(raw, p, d, true)
		f, err := e.fitNative(p, upstreamRequest(req, p.target, d, true), pass)
		if err != nil {
			return nil, err
		}
		out, err := p.attemptStream(exec, e, f.req, pass)
		if out != nil && out.rawStream == nil {
			out.dropped = f.dropped
		}
		return out, f.settle(err)
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
	out, t, up, err := e.walk(ctx, d, func(exec *try, p *pipeline) (*outcome, error) {
		r := rawFor(raw, p, d, false)
		if r == nil {
			return nil, errNoCount(p)
		}
		r.MaxOutputTokens = 0
		ctx, at := e.startAttempt(exec, p, opChat, nil)
		out, err := p.measured(exec, e, func() (*outcome, error) {
			res, err := p.prov.(adapters.Passthrough).RawCall(ctx, r)
			if err != nil {
				if errors.Is(err, adapters.ErrNotNative) {
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

// ErrNoCounter is wrapped by the failure of a target that cannot count tokens natively
// (CountTokens): the caller may estimate instead when no target could.
var ErrNoCounter = errors.New("this provider does not count tokens for this protocol")

func errNoCount(p *pipeline) error {
	return &adapters.Error{Provider: p.target.Provider, Kind: adapters.KindNotFound, Message: ErrNoCounter.Error(), Err: ErrNoCounter}
}

// NoCounter reports that no target of a CountTokens walk could count natively.
func (e *FailedError) NoCounter() bool {
	for _, t := range e.Tried {
		if !errors.Is(t.Err, ErrNoCounter) {
			return false
		}
	}
	return len(e.Tried) > 0
}
