package executor

import (
	"context"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
)

// EmbedResult is a successful embeddings call.
type EmbedResult struct {
	Target   decision.Target
	Response *adapters.EmbeddingResponse
	Upstream time.Duration
}

// Embed walks the decision's targets until one returns embeddings, through the same
// pipelines (retries, breaker, timeout) as chat. A provider without the Embedder
// capability is skipped like an unavailable one.
func (e *Executor) Embed(ctx context.Context, req *adapters.EmbeddingRequest, d *decision.Decision) (*EmbedResult, error) {
	out, t, up, err := e.walk(ctx, d, func(exec *try, p *pipeline) (*outcome, error) {
		r := *req
		r.Model = p.target.Model
		return p.attemptEmbed(exec, e, &r)
	})
	if err != nil {
		return nil, err
	}
	return &EmbedResult{Target: t, Response: out.emb, Upstream: up}, nil
}

func (p *pipeline) attemptEmbed(exec *try, e *Executor, req *adapters.EmbeddingRequest) (*outcome, error) {
	emb, ok := p.prov.(adapters.Embedder)
	if !ok {
		return nil, &adapters.Error{Provider: p.target.Provider, Kind: adapters.KindNotFound, Message: "this provider does not serve embeddings"}
	}
	ctx, at := e.startAttempt(exec, p, opEmbeddings, nil)
	out, err := p.measured(exec, e, func() (*outcome, error) {
		resp, err := emb.Embed(ctx, req)
		if err != nil {
			return nil, err
		}
		return &outcome{emb: resp}, nil
	})
	at.end(out, err)
	return out, err
}
