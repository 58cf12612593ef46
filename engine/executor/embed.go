package executor

import (
	"context"
	"time"

	"github.com/failsafe-go/failsafe-go"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/policy"
)

// EmbedResult is a successful embeddings call.
type EmbedResult struct {
	Target   policy.Target
	Response *adapters.EmbeddingResponse
	Upstream time.Duration
}

// Embed walks the decision's targets until one returns embeddings, through the same
// pipelines (retries, breaker, timeout) as chat. A provider without the Embedder
// capability is skipped like an unavailable one.
func (e *Executor) Embed(ctx context.Context, req *adapters.EmbeddingRequest, d *policy.Decision) (*EmbedResult, error) {
	failed := &FailedError{}
	start := time.Now()
	for i, t := range d.Targets {
		if i > 0 {
			e.metrics.Fallback(d.Targets[i-1].String(), t.String())
		}
		p, err := e.pipeline(t)
		if err != nil {
			failed.Tried = append(failed.Tried, &TargetError{Target: t, Err: err})
			continue
		}
		r := *req
		r.Model = t.Model
		out, err := p.executor(e, d.Limits.MaxRetries).WithContext(ctx).GetWithExecution(func(exec failsafe.Execution[*outcome]) (*outcome, error) {
			return p.attemptEmbed(exec.Context(), e, &r)
		})
		if err == nil && out != nil {
			if u := out.emb.Usage; u != nil {
				e.metrics.Tokens(t.Provider, t.Model, u.PromptTokens, 0)
			}
			return &EmbedResult{Target: t, Response: out.emb, Upstream: time.Since(start)}, nil
		}
		failed.Tried = append(failed.Tried, &TargetError{Target: t, Err: err})
		if ctx.Err() != nil || !classify(err).Failover() {
			break
		}
	}
	return nil, failed
}

func (p *pipeline) attemptEmbed(ctx context.Context, e *Executor, req *adapters.EmbeddingRequest) (*outcome, error) {
	emb, ok := p.prov.(adapters.Embedder)
	if !ok {
		return nil, &adapters.Error{Provider: p.target.Provider, Kind: adapters.KindNotFound, Message: "this provider does not serve embeddings"}
	}
	start := time.Now()
	p.stats.Begin()
	resp, err := emb.Embed(ctx, req)
	lat := time.Since(start)
	p.stats.End(lat, 0, breakerFailure(err))
	e.metrics.Attempt(p.target.Provider, p.target.Model, outcomeLabel(err), lat)
	if err != nil {
		return nil, err
	}
	return &outcome{emb: resp, started: start}, nil
}
