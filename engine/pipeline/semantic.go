package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/cache"
	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/telemetry"
)

// DefaultSemanticEmbedTimeout bounds a semantic lookup's embeddings call when
// Options.SemanticEmbedTimeout is not set: past it the lookup is a miss.
const DefaultSemanticEmbedTimeout = 2 * time.Second

// CacheKindSemantic is what CacheKind says of an answer a semantic lookup served.
const CacheKindSemantic = "semantic"

// semanticState is a semantic lookup's part of an exchange's cache state: set when the
// decision asks for mode semantic and the request is a single-turn text request.
type semanticState struct {
	part  cache.Partition
	text  string // the last user turn, as it goes upstream (redacted)
	embed decision.Target
	minBP int
	// vec is the turn's embedding once the lookup got it (nil: it failed, or the exact
	// lookup hit): the answer this request's own call gets is indexed under it.
	vec []float32
	// hit: the answer was served by this lookup, similarityBP its similarity.
	hit          bool
	similarityBP int
	// usage is the embeddings call's, charged to the request (nil: no call answered).
	usage *adapters.Usage
}

// prepareSemantic gives a request whose decision asks for a semantic lookup its
// partition and the text to embed. A request that is not single-turn text (a
// conversation, an image) gets none and is matched exactly: a conversation never
// semantically hits, whatever the policy asked.
func (p *Pipeline) prepareSemantic(x *Exchange, d *decision.Decision, scope string, stream bool) error {
	embed := d.Cache.Embed
	part, text, err := cache.SemanticPartition(scope, d.Targets[0].String(), embed.String(), x.up, stream, d.Limits.MaxTokens)
	switch {
	case errors.Is(err, cache.ErrNotSemantic):
		return nil
	case err != nil:
		return &PolicyError{Err: err}
	}
	x.cache.sem = &semanticState{part: part, text: text, embed: *embed, minBP: d.Cache.MinSimilarityBP}
	return nil
}

// semanticLookup is the lookup after an exact miss: the last user turn is embedded
// through the executor (the embed target's retries, breaker and timeout, bounded by
// SemanticEmbedTimeout) and its nearest neighbour in the partition serves the request
// when it is similar enough and its answer is still in the cache. Whatever fails is a
// miss, counted: the request goes upstream.
func (p *Pipeline) semanticLookup(ctx context.Context, x *Exchange, stream bool) *cache.Entry {
	s, team := x.cache.sem, x.caller.Record.Team
	vec, err := p.embedTurn(ctx, s)
	if err != nil {
		p.o.Metrics.SemanticLookup(telemetry.SemanticEmbedError, team, 0, false)
		p.log.Debug("semantic cache: embedding failed; served as a miss", "decision_id", x.ID, "embed", s.embed.String(), "err", err)
		return nil
	}
	s.vec = vec
	idx := p.o.Cache.Semantic()
	m, found := idx.Nearest(s.part, vec)
	bp := int(math.Round(m.Similarity * 10000))
	if !found || bp < s.minBP {
		p.o.Metrics.SemanticLookup(telemetry.SemanticMiss, team, m.Similarity, found)
		return nil
	}
	e, ok := p.o.Cache.Get(ctx, m.Key)
	if !ok || (stream && len(e.Chunks) == 0) || (!stream && e.Response == nil) {
		if !ok {
			idx.Forget(m.Key)
		}
		p.o.Metrics.SemanticLookup(telemetry.SemanticMiss, team, m.Similarity, found)
		return nil
	}
	p.o.Metrics.SemanticLookup(telemetry.SemanticHit, team, m.Similarity, found)
	s.hit, s.similarityBP = true, bp
	return e
}

// embedTurn embeds the last user turn with the decision's embeddings target.
func (p *Pipeline) embedTurn(ctx context.Context, s *semanticState) ([]float32, error) {
	timeout := p.o.SemanticEmbedTimeout
	if timeout <= 0 {
		timeout = DefaultSemanticEmbedTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// No retries: a miss costs one upstream call, a retried embedding the client's time.
	d := &decision.Decision{Allow: true, Targets: []decision.Target{s.embed}}
	res, err := p.o.Executor.Embed(ctx, &adapters.EmbeddingRequest{Model: s.embed.Model, Input: adapters.TextInput(s.text)}, d)
	if err != nil {
		return nil, err
	}
	if u := res.Response.Usage; u != nil {
		s.usage = &adapters.Usage{PromptTokens: u.PromptTokens, TotalTokens: u.TotalTokens}
	}
	if len(res.Response.Data) != 1 {
		return nil, fmt.Errorf("embeddings target %s answered %d vectors for one input", s.embed, len(res.Response.Data))
	}
	return cache.DecodeVector(res.Response.Data[0].Embedding)
}

// chargeEmbedding prices and counts a semantic lookup's embeddings call at its target's
// rate, and its tokens against the request's token limits; 0 when the request made none.
func (p *Pipeline) chargeEmbedding(x *Exchange, data *policy.Data, l usageLabels) int64 {
	if x.cache == nil || x.cache.sem == nil || x.cache.sem.usage == nil {
		return 0
	}
	u := x.cache.sem.usage
	if x.hold != nil {
		x.hold.extraTokens = int64(u.PromptTokens + u.CompletionTokens)
	}
	return p.account(data, x.cache.sem.embed.String(), l, u)
}

// indexAnswer indexes an answer this exchange's own call got and the cache stored, under
// the embedding of its last user turn.
func (p *Pipeline) indexAnswer(xc *exchangeCache) {
	if s := xc.sem; s != nil && s.vec != nil && !s.hit {
		p.o.Cache.Semantic().Add(s.part, s.vec, xc.key, xc.ttl)
	}
}

// CacheSimilarity is the similarity, in basis points, of the stored turn that served a
// semantic hit (X-Gavel-Cache-Similarity, the decision log's custom.cache_similarity);
// ok false for any other request.
func (x *Exchange) CacheSimilarity() (bp int, ok bool) {
	if x.cache == nil || x.cache.sem == nil || !x.cache.sem.hit {
		return 0, false
	}
	return x.cache.sem.similarityBP, true
}
