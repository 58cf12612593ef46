package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/timeout"
	"go.opentelemetry.io/otel/trace"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/signals"
	"github.com/gavel-gw/gavel/engine/telemetry"
)

// Executor carries out decisions. Safe for concurrent use.
type Executor struct {
	providers map[string]adapters.Provider
	resil     map[string]Resilience
	tracker   *signals.Tracker
	metrics   *telemetry.Metrics
	log       *slog.Logger

	redactor Redactor
	drop     map[string]DropParams
	shadow   *shadows
	tracer   trace.Tracer // nil: tracing off, no spans

	mu    sync.RWMutex
	pipes map[decision.Target]*pipeline
}

// Options wire an executor.
type Options struct {
	Providers  map[string]adapters.Provider
	Resilience map[string]Resilience // per provider; missing → defaults
	Tracker    *signals.Tracker
	Metrics    *telemetry.Metrics
	Log        *slog.Logger
	Redactor   Redactor     // required for decisions that redact; nil fails them
	Shadow     ShadowConfig // bounds on shadow traffic
	Tracer     trace.Tracer // nil: no spans (tracing off)
	// DropParams is each provider's drop_params; missing → DropParamsError.
	DropParams map[string]DropParams
}

// New returns an executor over the configured providers and registers them with the
// tracker, so the policy sees them as available.
func New(o Options) *Executor {
	if o.Tracker == nil {
		o.Tracker = signals.New(0)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	e := &Executor{providers: o.Providers, resil: map[string]Resilience{}, tracker: o.Tracker,
		metrics: o.Metrics, log: o.Log, pipes: map[decision.Target]*pipeline{}, redactor: o.Redactor, drop: o.DropParams}
	e.tracer = o.Tracer
	e.shadow = newShadows(e, o.Shadow, e.recordShadow)
	e.shadow.measure = e.measureShadow
	for name := range o.Providers {
		r, ok := o.Resilience[name]
		if !ok {
			r = DefaultResilience()
		}
		e.resil[name] = r.WithDefaults()
		o.Tracker.Register(name)
	}
	return e
}

// outcome is what one successful attempt produced.
type outcome struct {
	resp    *adapters.ChatResponse
	emb     *adapters.EmbeddingResponse
	stream  adapters.ChunkStream
	first   *adapters.ChatChunk
	dropped []string // extra fields dropped for this target (drop_params: drop)
	started time.Time
	ttft    time.Duration
	release func() // lets the attempt's context go once the stream is closed

	// A passed-through answer (Passthrough): raw for a whole one, rawStream and its
	// rawFirst event for a stream.
	raw       *adapters.RawResult
	rawStream adapters.RawStream
	rawFirst  adapters.RawEvent
}

// streaming reports that the attempt opened a stream someone must close.
func (o *outcome) streaming() bool { return o.stream != nil || o.rawStream != nil }

// closeStream closes an attempt's stream that nobody will read.
func (o *outcome) closeStream() {
	if o.stream != nil {
		o.stream.Close()
	}
	if o.rawStream != nil {
		o.rawStream.Close()
	}
	o.release()
}

// pipeline is one provider+model's resilience: a breaker shared by every request, and the
// retry and timeout settings run applies around it, built once.
type pipeline struct {
	target  decision.Target
	prov    adapters.Provider
	stats   *signals.Target
	res     Resilience
	breaker *breaker
	spans   *pipelineSpans // nil when tracing is off
}

func (e *Executor) pipeline(t decision.Target) (*pipeline, error) {
	e.mu.RLock()
	p := e.pipes[t]
	e.mu.RUnlock()
	if p != nil {
		return p, nil
	}
	prov, ok := e.providers[t.Provider]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoProvider, t.Provider)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if p = e.pipes[t]; p != nil {
		return p, nil
	}
	p = e.build(t, prov, e.resil[t.Provider])
	e.pipes[t] = p
	return p, nil
}

func (e *Executor) build(t decision.Target, prov adapters.Provider, res Resilience) *pipeline {
	p := &pipeline{target: t, prov: prov, res: res, stats: e.tracker.Target(t.Provider, t.Model)}
	p.breaker = newBreaker(res.Breaker, func(from, to circuitbreaker.State) {
		e.log.Warn("circuit breaker state changed", "provider", t.Provider, "model", t.Model,
			"from", from.String(), "to", to.String())
		e.metrics.BreakerState(t.Provider, t.Model, breakerGauge(to))
		e.tracker.Kick()
	})
	p.stats.SetCircuit(func() signals.Circuit { return circuitOf(p.breaker) })
	e.metrics.BreakerState(t.Provider, t.Model, 0)
	p.spans = e.spansFor(t, prov)
	return p
}

// jitterFactor spreads retries of many requests that failed together.
const jitterFactor = 0.2

// circuitOf reports open only while the breaker would reject: once its delay has passed it
// admits a probe, and a policy that skipped "open" targets would otherwise never send one.
func circuitOf(cb *breaker) signals.Circuit {
	switch {
	case cb.isClosed():
		return signals.Closed
	case cb.isOpen() && cb.remainingDelay() > 0:
		return signals.Open
	default:
		return signals.HalfOpen
	}
}

func breakerGauge(s circuitbreaker.State) int {
	switch s {
	case circuitbreaker.OpenState:
		return 2
	case circuitbreaker.HalfOpenState:
		return 1
	}
	return 0
}

// ErrNoRedactor fails a decision that asks for redaction when no redactor is configured:
// sending the data unmasked is not an option.
var ErrNoRedactor = errors.New("the decision asks for redaction but no redactor is configured")

// Prepare applies the parts of a decision that change what is sent upstream to every
// target alike (redaction). Call it once per request, before Chat, OpenStream or Shadow.
func (e *Executor) Prepare(req *adapters.ChatRequest, d *decision.Decision) (*adapters.ChatRequest, error) {
	if len(d.Redact) == 0 {
		return req, nil
	}
	if e.redactor == nil {
		return nil, ErrNoRedactor
	}
	r := *req
	r.Messages = redact(e.redactor, req.Messages, d.Redact)
	return &r, nil
}

// PrepareEmbedding is Prepare for embeddings: redaction applies to the inputs.
func (e *Executor) PrepareEmbedding(req *adapters.EmbeddingRequest, d *decision.Decision) (*adapters.EmbeddingRequest, error) {
	if len(d.Redact) == 0 || len(req.Input.Texts) == 0 {
		return req, nil
	}
	if e.redactor == nil {
		return nil, ErrNoRedactor
	}
	r := *req
	texts := make([]string, len(req.Input.Texts))
	for i, t := range req.Input.Texts {
		texts[i] = e.redactor.Redact(t, d.Redact)
	}
	r.Input = adapters.TextInput(texts...)
	return &r, nil
}

// upstreamRequest is the request as one target receives it: its model, and the decision's
// token cap.
func upstreamRequest(req *adapters.ChatRequest, t decision.Target, d *decision.Decision, stream bool) *adapters.ChatRequest {
	r := *req
	r.Model = t.Model
	r.Stream = stream
	if stream {
		// Always ask for usage: gavel needs it for cost; the server drops the usage chunk
		// when the client did not ask for it.
		r.StreamOptions = &adapters.StreamOptions{IncludeUsage: true}
	} else {
		r.StreamOptions = nil
	}
	if m := d.Limits.MaxTokens; m > 0 {
		if r.MaxCompletionTokens != nil {
			if *r.MaxCompletionTokens > m {
				r.MaxCompletionTokens = &m
			}
		} else if r.MaxTokens == nil || *r.MaxTokens > m {
			r.MaxTokens = &m
		}
	}
	return &r
}

// ChatResult is a successful non-streamed call.
type ChatResult struct {
	Target   decision.Target
	Response *adapters.ChatResponse
	Raw      *adapters.RawResult // a passed-through answer (ChatNative); Response is then nil
	Upstream time.Duration       // time spent in upstream attempts, retries and backoff included
	// Dropped names the extra fields the answering target could not express and was sent
	// without (drop_params: drop); nil when none.
	Dropped []string
}

// Chat walks the decision's targets until one answers.
func (e *Executor) Chat(ctx context.Context, req *adapters.ChatRequest, d *decision.Decision) (*ChatResult, error) {
	out, t, up, err := e.walk(ctx, d, func(exec *try, p *pipeline) (*outcome, error) {
		r, dropped, err := e.fit(p, upstreamRequest(req, p.target, d, false))
		if err != nil {
			return nil, err
		}
		out, err := p.attemptChat(exec, e, r, nil)
		if out != nil {
			out.dropped = dropped
		}
		return out, err
	})
	if err != nil {
		return nil, err
	}
	return &ChatResult{Target: t, Response: out.resp, Upstream: up, Dropped: out.dropped}, nil
}

// StreamResult is an open stream whose first chunk has arrived.
type StreamResult struct {
	Target decision.Target
	First  *adapters.ChatChunk
	Stream adapters.ChunkStream // yields the chunks after First; Close it
	// RawFirst and Raw are a passed-through stream (OpenStreamNative) instead of First
	// and Stream: its first event and the events after it.
	RawFirst adapters.RawEvent
	Raw      adapters.RawStream
	Upstream time.Duration // time until First, retries included
	Dropped  []string      // as in ChatResult
}

// OpenStream walks the targets until one produces a first chunk. After it returns, nothing
// is retried: the caller owns the stream and reports a mid-stream failure to the client.
func (e *Executor) OpenStream(ctx context.Context, req *adapters.ChatRequest, d *decision.Decision) (*StreamResult, error) {
	return e.streamOver(ctx, d, d, req, nil)
}

// streamOver walks walkOn's targets until one produces a first chunk, sending each req
// shaped by d (limits, model rewrite). With cont, it is a continuation: walkOn holds the
// targets after the cut one, and each is asked to go on from cont.Text in its own way.
func (e *Executor) streamOver(ctx context.Context, walkOn, d *decision.Decision, req *adapters.ChatRequest, cont *Continuation) (*StreamResult, error) {
	out, t, up, err := e.walk(ctx, walkOn, func(exec *try, p *pipeline) (*outcome, error) {
		ask := req
		if cont != nil {
			ask = continuationRequest(req, p.prov, cont.Text)
		}
		r, dropped, err := e.fit(p, upstreamRequest(ask, p.target, d, true))
		if err != nil {
			return nil, err
		}
		out, err := p.attemptStream(exec, e, r, nil)
		if out != nil {
			out.dropped = dropped
		}
		return out, err
	})
	if err != nil {
		return nil, err
	}
	p, _ := e.pipeline(t)
	return &StreamResult{Target: t, First: out.first, Upstream: up, Dropped: out.dropped,
		Stream: &trackedStream{ChunkStream: out.stream, streamTracker: p.tracker(e, ctx, out)}}, nil
}

// attempt is one call to one target, made inside the target's pipeline.
type attempt func(exec *try, p *pipeline) (*outcome, error)

// walk tries the decision's targets in order, each through its pipeline, until one
// succeeds; a failure the next target cannot fix (the client's fault, the client gone)
// ends the walk. Chat, streams and embeddings differ only in their attempt.
func (e *Executor) walk(ctx context.Context, d *decision.Decision, call attempt) (*outcome, decision.Target, time.Duration, error) {
	if d.Fault != nil {
		call = e.faulty(d.Fault, call)
	}
	// failed is made at the first failure: a request its first target answers (nearly all
	// of them) pays no allocation for it.
	var failed *FailedError
	start := time.Now()
	skip := 0 // targets already tried as a hedged group
	if d.Hedge != nil && len(d.Targets) > 1 {
		failed = &FailedError{}
		out, t, n, err := e.hedged(ctx, d, call, failed)
		if err == nil {
			return out, t, time.Since(start), nil
		}
		if ctx.Err() != nil || !classify(err).Failover() {
			return nil, decision.Target{}, time.Since(start), failed
		}
		skip = n
	}
	for i, t := range d.Targets {
		if i < skip {
			continue
		}
		if i > 0 {
			e.metrics.Fallback(d.Targets[i-1].String(), t.String())
		}
		p, err := e.pipeline(t)
		if err != nil {
			failed = failed.add(t, err)
			continue
		}
		out, err := p.run(ctx, e, d.Limits.MaxRetries, call)
		if err == nil {
			return out, t, time.Since(start), nil
		}
		failed = failed.add(t, err)
		if ctx.Err() != nil || !classify(err).Failover() {
			break
		}
	}
	if failed == nil {
		failed = &FailedError{} // a decision without targets
	}
	return nil, decision.Target{}, time.Since(start), failed
}

// failure puts what a target's pipeline returned into the taxonomy the rest of gavel reads:
// the pipeline reports its own verdicts (an attempt timeout, an open breaker, the caller's
// context ending between attempts) as sentinels rather than upstream errors.
func (p *pipeline) failure(err error) error {
	if adapters.AsError(err) != nil {
		return err
	}
	if errors.Is(err, circuitbreaker.ErrOpen) {
		return &OpenError{Retry: p.breaker.remainingDelay()}
	}
	msg := err.Error()
	if errors.Is(err, timeout.ErrExceeded) {
		msg = p.timeoutMessage()
	}
	return &adapters.Error{Provider: p.target.Provider, Kind: classify(err), Message: msg, Err: err}
}

func (p *pipeline) timeoutMessage() string {
	return "no answer within the attempt timeout of " + p.res.Timeout.String()
}

// attemptFailure names why an attempt failed when its context was cancelled under it:
// the attempt timeout cancels the context, so the adapter reports a
// cancellation, but the upstream was too slow and that is the target's failure.
func (p *pipeline) attemptFailure(exec *try, err error) error {
	if err == nil || classify(err) != adapters.KindCanceled || !attemptTimedOut(exec) {
		return err
	}
	return &adapters.Error{Provider: p.target.Provider, Kind: adapters.KindTimeout, Message: p.timeoutMessage(), Err: err}
}

// attemptTimedOut reports whether the attempt's own timeout cancelled it.
func attemptTimedOut(exec *try) bool { return exec.timedOut() }

// verdict is what the end of an attempt says about its target.
type verdict int

const (
	verdictOK        verdict = iota // the upstream answered (even if it refused the request)
	verdictFailed                   // the upstream's fault: counts against its breaker and error rate
	verdictAbandoned                // cancelled: says nothing about the target
)

// attemptVerdict judges an attempt's end. An attempt that its request ended (a hedge
// that won elsewhere, the client gone, the request's deadline) was abandoned, whatever
// error the cancelled call surfaced (a deadline reads as a timeout); the attempt's own
// timeout is the upstream's failure.
func attemptVerdict(exec *try, err error) verdict {
	switch {
	case err == nil:
		return verdictOK
	case attemptTimedOut(exec):
		return verdictFailed
	case classify(err) == adapters.KindCanceled, exec.Context().Err() != nil:
		return verdictAbandoned
	case breakerFailure(err):
		return verdictFailed
	}
	return verdictOK
}

// record ends an attempt in the target's signals and metrics. A cancelled attempt says
// nothing about the target, so the signals forget it (no error, no latency sample).
func (p *pipeline) record(exec *try, e *Executor, lat time.Duration, err error) {
	switch attemptVerdict(exec, err) {
	case verdictAbandoned:
		p.stats.Abandon()
	case verdictFailed:
		p.stats.End(lat, 0, true)
	default:
		p.stats.End(lat, 0, false)
	}
	e.metrics.Attempt(p.target.Provider, p.target.Model, outcomeLabel(err), lat)
}

// measured makes a whole (non-streamed) call and records it in the target's signals and
// metrics.
func (p *pipeline) measured(exec *try, e *Executor, call func() (*outcome, error)) (*outcome, error) {
	start := time.Now()
	p.stats.Begin()
	out, err := call()
	err = p.attemptFailure(exec, err)
	p.record(exec, e, time.Since(start), err)
	if err != nil {
		return nil, err
	}
	out.started = start
	return out, nil
}

func (p *pipeline) attemptChat(exec *try, e *Executor, req *adapters.ChatRequest, raw *adapters.RawRequest) (*outcome, error) {
	ctx, at := e.startAttempt(exec, p, opChat, req)
	out, err := p.measured(exec, e, func() (*outcome, error) {
		if raw != nil {
			if res, err := p.prov.(adapters.Passthrough).RawCall(ctx, raw); !errors.Is(err, adapters.ErrNotNative) {
				if err != nil {
					return nil, err
				}
				return &outcome{raw: res}, nil
			}
			if req == nil {
				return nil, errUnfit
			}
		}
		resp, err := p.prov.Chat(ctx, req)
		if err != nil {
			return nil, err
		}
		return &outcome{resp: resp}, nil
	})
	at.end(out, err)
	return out, err
}

// attemptStream opens the stream and waits for its first chunk, so that a stream failing
// before producing anything is retried or failed over like any other failure.
func (p *pipeline) attemptStream(exec *try, e *Executor, req *adapters.ChatRequest, raw *adapters.RawRequest) (*outcome, error) {
	// The attempt's context must outlive this function: the stream is read after it.
	release := exec.deferCancel()
	ctx, at := e.startAttempt(exec, p, opChat, req)
	start := time.Now()
	p.stats.Begin()
	fail := func(err error) (*outcome, error) {
		err = p.attemptFailure(exec, err)
		p.record(exec, e, time.Since(start), err)
		at.end(nil, err)
		release()
		return nil, err
	}
	if raw != nil {
		res, err := p.prov.(adapters.Passthrough).RawCall(ctx, raw)
		if !errors.Is(err, adapters.ErrNotNative) {
			if err != nil {
				return fail(err)
			}
			if res.Stream == nil {
				return fail(&adapters.Error{Provider: p.target.Provider, Kind: adapters.KindProtocol, Message: "passthrough answered a stream request without a stream"})
			}
			first, err := res.Stream.Recv()
			if err != nil {
				res.Stream.Close()
				if errors.Is(err, io.EOF) {
					err = &adapters.Error{Provider: p.target.Provider, Kind: adapters.KindProtocol, Message: "stream ended before its first event"}
				}
				return fail(err)
			}
			// The first event's bytes belong to the stream's reader until its next Recv,
			// which happens on another goroutine's time: keep a copy.
			first.Name, first.Data = bytes.Clone(first.Name), bytes.Clone(first.Data)
			ttft := time.Since(start)
			e.metrics.TTFT(p.target.Provider, p.target.Model, ttft)
			e.metrics.Attempt(p.target.Provider, p.target.Model, "ok", ttft)
			out := &outcome{rawStream: res.Stream, rawFirst: first, started: start, ttft: ttft, release: release}
			at.end(out, nil)
			return out, nil
		}
		if req == nil {
			return fail(errUnfit)
		}
	}
	st, err := p.prov.ChatStream(ctx, req)
	if err != nil {
		return fail(err)
	}
	first, err := st.Recv()
	if err != nil {
		st.Close()
		if errors.Is(err, io.EOF) {
			err = &adapters.Error{Provider: p.target.Provider, Kind: adapters.KindProtocol, Message: "stream ended before its first chunk"}
		}
		return fail(err)
	}
	ttft := time.Since(start)
	e.metrics.TTFT(p.target.Provider, p.target.Model, ttft)
	e.metrics.Attempt(p.target.Provider, p.target.Model, "ok", ttft)
	out := &outcome{stream: st, first: first, started: start, ttft: ttft, release: release}
	at.end(out, nil)
	return out, nil
}

// OpenFor reports how long until the first of targets admits a probe, when every one of
// them has an open breaker: the truthful Retry-After of a request nothing could take
// because of them. ok is false when targets is empty or any of them is not open.
func (e *Executor) OpenFor(targets []decision.Target) (wait time.Duration, ok bool) {
	for i, t := range targets {
		e.mu.RLock()
		p := e.pipes[t]
		e.mu.RUnlock()
		if p == nil {
			return 0, false
		}
		d := p.breaker.remainingDelay()
		if d <= 0 {
			return 0, false
		}
		if i == 0 || d < wait {
			wait = d
		}
	}
	return wait, len(targets) > 0
}
