package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"iter"
	"strings"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/cache"
	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/executor"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/tokens"
)

// Cache results, as X-Gavel-Cache, the decision log's custom.cache and
// gavel_cache_requests_total say them.
const (
	CacheHit       = "hit"       // served from the cache, no upstream call
	CacheMiss      = "miss"      // this request's upstream call answered (and may be stored)
	CacheCoalesced = "coalesced" // served by an identical request's upstream call in flight
	CacheBypass    = "bypass"    // the policy allowed caching, but the answer was passed through in the client's protocol
)

// DefaultIdempotencyTTL is how long an Idempotency-Key's answer is kept for retries when
// Options.IdempotencyTTL is not set.
const DefaultIdempotencyTTL = 24 * time.Hour

// exchangeCache is an exchange's cache state, nil for a request that uses none.
type exchangeCache struct {
	key      cache.Key
	store    bool // look up and store under key (mode exact)
	coalesce bool // share an upstream call in flight under key
	idem     bool // key is an Idempotency-Key's; bodyHash must match
	bodyHash string
	ttl      time.Duration
	chargeBP int
	result   string
	served   *cache.Entry   // a hit's entry; for a coalesced request what it was served
	sem      *semanticState // nil: no semantic lookup (semantic.go)

	// A stream answered by this request's own call, recorded for storing (nil when not
	// stored, or when it grew past the entry bound).
	record      []*adapters.ChatChunk
	recordBytes int

	// A streamed hit's stream: its stored chunks after the first (cachedStream).
	hit    executor.StreamResult
	replay replay
}

// CachedAnswer is the answer of a request served from the cache as a Chat Completions
// body, encoded once per entry (cache.Entry.AnswerJSON) and shared: the caller writes it as
// it is instead of encoding the same completion again. nil when the request was not a
// buffered hit.
func (x *Exchange) CachedAnswer() []byte {
	if x.cache == nil || x.cache.result != CacheHit || x.cache.served == nil {
		return nil
	}
	return x.cache.served.AnswerJSON()
}

// CachedStream is a streamed hit's whole answer as its client gets it, rendered by render
// from the stored chunks as they would be relayed one by one (the usage gavel asked for
// dropped unless the client asked for it, as Recv does) and kept with the entry
// (cache.Entry.Rendered): later hits on the entry write the same bytes without encoding
// a chunk. It is nil when the request is not a streamed hit, or when it has shadows, which
// read the answer's text as Recv relays it. Call it after OpenStream; the Stream it
// opened then needs no Recv.
func (x *Exchange) CachedStream(render func(chunks iter.Seq[*adapters.ChatChunk]) ([]byte, error)) []byte {
	xc := x.cache
	if xc == nil || xc.result != CacheHit || xc.served == nil || len(xc.served.Chunks) == 0 || x.primary != nil {
		return nil
	}
	e, usage, slot := xc.served, x.wantUse, cache.RenderChatSSE
	if usage {
		slot = cache.RenderChatSSEUsage
	}
	return e.Rendered(slot, func() ([]byte, error) {
		return render(func(yield func(*adapters.ChatChunk) bool) {
			for _, c := range e.Chunks {
				if c = relayChunk(c, usage); c != nil && !yield(c) {
					return
				}
			}
		})
	})
}

// Idempotency gives the exchange the client's Idempotency-Key, before AdmitChat: an
// admitted request whose key was used before by the same caller within the TTL gets that
// request's answer (or joins its call in flight) instead of a second upstream call.
func (x *Exchange) Idempotency(key string) { x.idemKey = key }

// CacheResult is the request's cache result (CacheHit, CacheMiss, CacheCoalesced,
// CacheBypass), "" when the decision used no cache and no coalescing.
func (x *Exchange) CacheResult() string {
	if x.cache == nil {
		return ""
	}
	return x.cache.result
}

// prepareCache keys an admitted chat request for the cache, coalescing or its
// Idempotency-Key, as the decision says. It costs nothing when none applies.
func (p *Pipeline) prepareCache(x *Exchange, d *decision.Decision) error {
	c := d.Cache
	use := c != nil && (c.Caches() || c.Coalesce)
	if (!use && x.idemKey == "") || (x.raw != nil && x.raw.Op == adapters.OpCountTokens) {
		return nil
	}
	if x.native() != nil {
		// A passed-through answer is the upstream's own bytes in the client's protocol:
		// it is neither stored nor shared (docs/cache.md).
		x.cache = &exchangeCache{result: CacheBypass}
		return nil
	}
	stream := x.stream && !x.DegradeStream()
	if x.idemKey != "" {
		body, err := cache.RequestKey("", x.model, x.chat, x.stream, 0)
		if err != nil {
			return &PolicyError{Err: err}
		}
		x.cache = &exchangeCache{idem: true, coalesce: true, store: true, bodyHash: body.Hash, ttl: p.idemTTL(),
			key: cache.Key{Scope: "idem:" + x.caller.Record.KeyID, Model: x.model, Hash: hashString(x.idemKey)}}
		if c != nil {
			x.cache.chargeBP = c.ChargeBP
		}
		return nil
	}
	rec := &x.caller.Record
	key, err := cache.RequestKey(cache.ScopeID(c.Scope, rec.KeyID, rec.Team, rec.Project), d.Targets[0].String(), x.up, stream, d.Limits.MaxTokens)
	if err != nil {
		return &PolicyError{Err: err}
	}
	x.cache = &exchangeCache{key: key, store: c.Caches() && p.o.Cache != nil, coalesce: c.Coalesce,
		ttl: time.Duration(c.TTLS) * time.Second, chargeBP: c.ChargeBP}
	if c.Semantic() && x.cache.store {
		return p.prepareSemantic(x, d, key.Scope, stream)
	}
	return nil
}

func (p *Pipeline) idemTTL() time.Duration {
	if p.o.IdempotencyTTL > 0 {
		return p.o.IdempotencyTTL
	}
	return DefaultIdempotencyTTL
}

// lookup finds the exchange's entry in the cache. An Idempotency-Key's entry for another
// body is ErrIdempotencyConflict.
func (p *Pipeline) lookup(ctx context.Context, x *Exchange, stream bool) (*cache.Entry, error) {
	xc := x.cache
	if !xc.store || p.o.Cache == nil {
		return nil, nil
	}
	e, ok := p.o.Cache.Get(ctx, xc.key)
	if !ok {
		// An identical request already in flight answers this one (it joins the call):
		// no embedding needed.
		if xc.sem != nil && !(xc.coalesce && p.flights.Lookup(xc.key.String()) != nil) {
			return p.semanticLookup(ctx, x, stream), nil
		}
		return nil, nil
	}
	if xc.idem && e.BodyHash != xc.bodyHash {
		return nil, ErrIdempotencyConflict
	}
	return e, nil
}

// served marks the exchange as answered without its own upstream call.
func (x *Exchange) served(result string, e *cache.Entry) {
	x.cache.result, x.cache.served = result, e
	x.route, x.usage = e.Route, e.Usage
}

// cachedChat is Chat for an exchange with a cache state: a hit, a coalesced call, or a
// call of its own whose answer is stored. handled is false when none applies.
func (p *Pipeline) cachedChat(ctx context.Context, x *Exchange, up *adapters.ChatRequest) (res *adapters.ChatResponse, handled bool, err error) {
	xc := x.cache
	e, err := p.lookup(ctx, x, false)
	if err != nil {
		return nil, true, err
	}
	if e != nil && e.Response != nil {
		x.served(CacheHit, e)
		return e.Response, true, nil
	}
	xc.result = CacheMiss
	if !xc.coalesce {
		return nil, false, nil
	}
	f, leader := p.flights.Join(xc.key.String())
	defer f.Leave()
	if leader {
		cctx, cancel := detached(ctx)
		f.Start(cancel, xc.idem)
		f.Tag(xc.bodyHash)
		d, data := x.decision, x.rev.Data
		go func() {
			defer cancel()
			r, err := p.o.Executor.Chat(cctx, up, d)
			if err != nil {
				f.End(err)
				return
			}
			// Stored before anyone is answered: a client holding the answer finds it cached.
			if xc.store && p.o.Cache != nil && r.Response.Usage != nil &&
				p.o.Cache.Put(cctx, xc.key, &cache.Entry{Route: r.Target.String(), Usage: r.Response.Usage, Response: r.Response,
					CostMUSD: p.costOf(data, r.Target.String(), r.Response.Usage), BodyHash: xc.bodyHash}, xc.ttl) {
				p.indexAnswer(xc)
			}
			f.Answer(cache.Meta{Route: r.Target.String(), Upstream: r.Upstream, Dropped: r.Dropped}, r.Response)
		}()
	} else if xc.idem && f.Tagged() != xc.bodyHash {
		return nil, true, ErrIdempotencyConflict
	}
	m, r, err := f.Wait(ctx)
	if err != nil {
		if leader || ctx.Err() != nil {
			return nil, true, err
		}
		// The shared call failed: this request walks its own targets.
		return nil, false, nil
	}
	x.route, x.upstream, x.usage, x.dropped = m.Route, m.Upstream, r.Usage, m.Dropped
	if !leader {
		x.served(CacheCoalesced, &cache.Entry{Route: m.Route, Usage: r.Usage, Response: r})
	}
	return r, true, nil
}

// storeAnswer keeps a buffered answer this exchange's own call got, when the decision
// stores it.
func (p *Pipeline) storeAnswer(ctx context.Context, x *Exchange, r *adapters.ChatResponse) {
	xc := x.cache
	if xc == nil || !xc.store || p.o.Cache == nil || xc.result != CacheMiss || r.Usage == nil {
		return
	}
	if p.o.Cache.Put(ctx, xc.key, &cache.Entry{Route: x.route, Usage: r.Usage, Response: r,
		CostMUSD: p.costOf(x.rev.Data, x.route, r.Usage), BodyHash: xc.bodyHash}, xc.ttl) {
		p.indexAnswer(xc)
	}
}

// cachedStream is OpenStream for an exchange with a cache state: a replay of a stored
// stream, a copy of an identical stream in flight, or a stream of its own that is
// recorded for storing. handled is false when none applies.
func (p *Pipeline) cachedStream(ctx context.Context, x *Exchange) (sr *executor.StreamResult, handled bool, err error) {
	xc := x.cache
	e, err := p.lookup(ctx, x, true)
	if err != nil {
		return nil, true, err
	}
	if e != nil && len(e.Chunks) > 0 {
		x.served(CacheHit, e)
		// Kept in the exchange's cache state, already on the heap: a hit allocates neither.
		xc.replay = replay{chunks: e.Chunks[1:]}
		xc.hit = executor.StreamResult{Target: targetOf(e.Route), First: e.Chunks[0], Stream: &xc.replay}
		return &xc.hit, true, nil
	}
	xc.result = CacheMiss
	if !xc.coalesce {
		if xc.store {
			xc.record = make([]*adapters.ChatChunk, 0, 16)
		}
		return nil, false, nil
	}
	f, leader := p.flights.Join(xc.key.String())
	if leader {
		cctx, cancel := detached(ctx)
		f.Start(cancel, xc.idem)
		f.Tag(xc.bodyHash)
		go p.runStream(cctx, cancel, f, x)
	} else if xc.idem && f.Tagged() != xc.bodyHash {
		f.Leave()
		return nil, true, ErrIdempotencyConflict
	}
	m, first, err := f.WaitOpen(ctx)
	if err != nil {
		f.Leave()
		if leader || ctx.Err() != nil {
			return nil, true, err
		}
		return nil, false, nil // the shared call failed before its first chunk: walk on our own
	}
	if !leader {
		x.cache.result = CacheCoalesced
	}
	return &executor.StreamResult{Target: targetOf(m.Route), First: first, Stream: f.Reader(ctx, 1), Upstream: m.Upstream, Dropped: m.Dropped}, true, nil
}

// runStream is a coalesced stream's one upstream call: every chunk goes to the flight,
// and a complete stream with usage is stored when the decision says so.
func (p *Pipeline) runStream(ctx context.Context, cancel context.CancelFunc, f *cache.Flight, x *Exchange) {
	defer cancel()
	xc, up, d, data := x.cache, x.up, x.decision, x.rev.Data
	sr, err := p.o.Executor.OpenStream(ctx, up, d)
	if err != nil {
		f.End(err)
		return
	}
	defer sr.Stream.Close()
	route := sr.Target.String()
	f.Open(cache.Meta{Route: route, Upstream: sr.Upstream, Dropped: sr.Dropped}, sr.First)
	usage := sr.First.Usage
	// What is stored is kept as it arrives, up to the largest entry the cache keeps.
	chunks, size := []*adapters.ChatChunk{sr.First}, cache.ChunkBytes(sr.First)
	for {
		c, err := sr.Stream.Recv()
		if err != nil {
			if err == io.EOF && xc.store && p.o.Cache != nil && usage != nil && chunks != nil {
				// Stored before the followers read the end, as for a buffered answer.
				if p.o.Cache.Put(ctx, xc.key, &cache.Entry{Route: route, Usage: usage, Chunks: chunks,
					CostMUSD: p.costOf(data, route, usage), BodyHash: xc.bodyHash}, xc.ttl) {
					p.indexAnswer(xc)
				}
			}
			f.End(err)
			return
		}
		if c.Usage != nil {
			usage = c.Usage
		}
		if chunks != nil && xc.store && p.o.Cache != nil {
			if size += cache.ChunkBytes(c); size > p.o.Cache.MaxEntryBytes() {
				chunks = nil
			} else {
				chunks = append(chunks, c)
			}
		}
		f.Publish(c)
	}
}

// recordChunk keeps a chunk of a stream this exchange's own call answers, for storing,
// until the stream grows past the largest entry the cache keeps.
func (p *Pipeline) recordChunk(x *Exchange, c *adapters.ChatChunk) {
	xc := x.cache
	if xc.recordBytes += cache.ChunkBytes(c); xc.recordBytes > p.o.Cache.MaxEntryBytes() {
		xc.record = nil
		return
	}
	xc.record = append(xc.record, c)
}

// storeStream stores a recorded stream that ended well.
func (p *Pipeline) storeStream(x *Exchange) {
	xc := x.cache
	if xc == nil || xc.record == nil || x.usage == nil || xc.result != CacheMiss {
		return
	}
	if p.o.Cache.Put(context.Background(), xc.key, &cache.Entry{Route: x.route, Usage: x.usage, Chunks: xc.record,
		CostMUSD: p.costOf(x.rev.Data, x.route, x.usage), BodyHash: xc.bodyHash}, xc.ttl) {
		p.indexAnswer(xc)
	}
	xc.record = nil
}

// chargeServed settles a request answered without its own upstream call: it is charged
// charge_bp of what the answer cost originally, and the rest is counted as saved. No
// upstream tokens were used, so none are counted against rate limits. extra is what the
// request cost besides (a semantic lookup's embedding), already counted.
func (p *Pipeline) chargeServed(x *Exchange, l usageLabels, extra int64) int64 {
	xc := x.cache
	full := xc.served.CostMUSD
	if full == 0 && x.usage != nil && x.rev != nil {
		full = p.costOf(x.rev.Data, x.route, x.usage)
	}
	cost := full * int64(xc.chargeBP) / 10000
	p.o.Metrics.CacheSaved(l.team, full-cost)
	if cost > 0 {
		provider, model, _ := strings.Cut(x.route, "/")
		p.o.Metrics.Cost(provider, model, l.team, cost)
	}
	x.hold.settle(&adapters.Usage{}, cost+extra)
	return cost + extra
}

// costOf prices usage at the catalog rate of route, without counting it anywhere.
func (p *Pipeline) costOf(data *policy.Data, route string, u *adapters.Usage) int64 {
	cached, written := 0, 0
	if d := u.PromptTokensDetails; d != nil {
		cached, written = d.CachedTokens, d.CacheWriteTokens
	}
	return tokens.CostCached(p.price(data, route), u.PromptTokens, cached, written, u.CompletionTokens)
}

// detached is the context of a shared upstream call: it keeps the request's values and
// deadline but not its cancellation, so that the first client leaving does not end the
// call for the others (the flight cancels it when nobody waits any more).
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	base := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(base, dl)
	}
	return context.WithCancel(base)
}

// targetOf parses "provider/model".
func targetOf(route string) decision.Target {
	p, m, _ := strings.Cut(route, "/")
	return decision.Target{Provider: p, Model: m}
}

// replay is a stored stream's chunks after the first, as a ChunkStream.
type replay struct {
	chunks []*adapters.ChatChunk
	i      int
}

func (r *replay) Recv() (*adapters.ChatChunk, error) {
	if r.i >= len(r.chunks) {
		return nil, io.EOF
	}
	r.i++
	return r.chunks[r.i-1], nil
}

func (r *replay) Close() error { return nil }

var _ adapters.ChunkStream = (*replay)(nil)

// hashString is the hex SHA-256 of s: an Idempotency-Key is a client's string, kept only
// hashed.
func hashString(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
