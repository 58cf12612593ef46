package executor

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/policy"
)

// ShadowConfig bounds shadow traffic.
type ShadowConfig struct {
	Workers int           // concurrent shadow calls; default 4
	Queue   int           // shadow calls waiting for a worker; more are dropped; default 64
	Timeout time.Duration // deadline of one shadow call; default 60s
}

// ShadowResult is what a shadow call produced, for metrics and logs.
type ShadowResult struct {
	Target       policy.Target
	Experiment   string
	Latency      time.Duration
	Err          error
	InputTokens  int
	OutputTokens int
	OutputBytes  int
}

type shadowJob struct {
	req        *adapters.ChatRequest
	target     policy.Target
	experiment string
	link       trace.SpanContext // the request that queued it, for the shadow span's link
}

// shadows runs mirrored requests on workers of their own: a shadow never shares the
// client's context, never blocks the client's request (a full queue drops it), and runs
// with no retries so it adds as little load as possible.
type shadows struct {
	e      *Executor
	cfg    ShadowConfig
	queue  chan shadowJob
	record func(ShadowResult)
	once   sync.Once
	wg     sync.WaitGroup
	stop   context.CancelFunc
	ctx    context.Context
}

func newShadows(e *Executor, cfg ShadowConfig, record func(ShadowResult)) *shadows {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 64
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if record == nil {
		record = func(ShadowResult) {}
	}
	ctx, stop := context.WithCancel(context.Background())
	return &shadows{e: e, cfg: cfg, queue: make(chan shadowJob, cfg.Queue), record: record, ctx: ctx, stop: stop}
}

func (s *shadows) start() {
	s.once.Do(func() {
		for i := 0; i < s.cfg.Workers; i++ {
			s.wg.Add(1)
			go s.work()
		}
	})
}

func (s *shadows) work() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case j := <-s.queue:
			s.run(j)
		}
	}
}

func (s *shadows) run(j shadowJob) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	ctx, span := s.e.startShadow(ctx, j)
	start := time.Now()
	d := &policy.Decision{Allow: true, Targets: []policy.Target{j.target}, Limits: policy.Limits{MaxRetries: 0}}
	res, err := s.e.Chat(ctx, j.req, d)
	endShadow(span, err)
	r := ShadowResult{Target: j.target, Experiment: j.experiment, Latency: time.Since(start), Err: err}
	if err == nil {
		if u := res.Response.Usage; u != nil {
			r.InputTokens, r.OutputTokens = u.PromptTokens, u.CompletionTokens
		}
		for _, c := range res.Response.Choices {
			r.OutputBytes += len(c.Message.Content.String())
		}
	}
	s.record(r)
}

// Shadow queues a non-streamed copy of req for each target. It never blocks: when the
// queue is full the copy is dropped and false is returned for it. ctx is the client's
// request: only its span is kept (shadow spans link to it), never its deadline.
func (e *Executor) Shadow(ctx context.Context, req *adapters.ChatRequest, targets []policy.Target, experiment string) (queued, dropped int) {
	e.shadow.start()
	link := e.shadowLink(ctx)
	for _, t := range targets {
		r := *req
		r.Stream, r.StreamOptions = false, nil
		select {
		case e.shadow.queue <- shadowJob{req: &r, target: t, experiment: experiment, link: link}:
			queued++
		default:
			dropped++
			e.metrics.ShadowDropped()
		}
	}
	return queued, dropped
}

// Close stops the shadow workers, abandoning queued shadows.
func (e *Executor) Close() {
	e.shadow.stop()
	e.shadow.wg.Wait()
}

func logShadow(log *slog.Logger, r ShadowResult) {
	attrs := []any{"provider", r.Target.Provider, "model", r.Target.Model, "experiment", r.Experiment,
		"latency_ms", r.Latency.Milliseconds(), "input_tokens", r.InputTokens, "output_tokens", r.OutputTokens, "output_bytes", r.OutputBytes}
	if r.Err != nil {
		attrs = append(attrs, "error", outcomeLabel(r.Err))
	}
	log.Info("shadow", attrs...)
}
