package executor

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/similarity"
	"github.com/gavel-gw/gavel/engine/tokens"
)

// ShadowConfig bounds shadow traffic.
type ShadowConfig struct {
	Workers int           // concurrent shadow calls; default 4
	Queue   int           // shadow calls waiting for a worker; more are dropped; default 64
	Timeout time.Duration // deadline of one shadow call; default 60s
	// SimilarityWait is how long a finished shadow waits for the primary's answer before it
	// is recorded without a similarity; default 2m.
	SimilarityWait time.Duration
}

// Shadow defaults.
const (
	DefaultShadowWorkers        = 4
	DefaultShadowQueue          = 64
	DefaultShadowTimeout        = 60 * time.Second
	DefaultShadowSimilarityWait = 2 * time.Minute
)

// ShadowResult is what a shadow call produced, for metrics and logs. It never holds
// prompt or completion text.
type ShadowResult struct {
	Target       decision.Target
	Experiment   string
	Arm          string
	DecisionID   string // the primary request's
	Latency      time.Duration
	Err          error
	Outcome      string // "ok", an error kind, or why it was not sent ("budget", "ledger_error")
	InputTokens  int
	OutputTokens int
	OutputBytes  int
	CostMicroUSD int64
	// Similarity to the primary's answer in [0, 1]; valid only when HasSimilarity.
	Similarity    float64
	HasSimilarity bool
}

// ErrShadowBudget means the shadow's budget scope is spent: the shadow is skipped and
// counted with outcome "budget".
var ErrShadowBudget = errors.New("shadow budget exhausted")

// ShadowBudget holds a shadow call's cost against the budget scope shadows are charged to.
// It runs on the shadow worker, never on the client's request path.
type ShadowBudget interface {
	// Reserve holds the estimated cost of one call to t and returns the function that
	// settles it with the actual cost (0 when the call failed). An error wrapping
	// ErrShadowBudget skips the shadow as over budget; any other error skips it too.
	Reserve(ctx context.Context, t decision.Target) (settle func(costMicroUSD int64), err error)
}

// ShadowRequest describes one client request's shadows.
type ShadowRequest struct {
	Targets    []decision.Target
	Experiment string
	Arm        string
	DecisionID string
	// Primary, when set, is the slot the server fills with the primary's answer; each
	// shadow's similarity to it is computed by whichever of the two finishes second.
	Primary *PrimaryAnswer
	// Price prices a target from the bundle catalog; nil counts no cost.
	Price func(decision.Target) tokens.Price
	// Budget, when set, must admit each shadow before it is sent.
	Budget ShadowBudget
	// Link is the client request's span: each shadow's own root span links to it. Zero
	// when tracing is off.
	Link trace.SpanContext
}

// PrimaryAnswer is a one-shot slot for the primary's answer text. The server fills it
// when the request ends (Set, or Fail when there is no answer); shadows that finished
// earlier are then compared off the caller's goroutine. The zero value is not usable:
// make one with NewPrimaryAnswer.
type PrimaryAnswer struct {
	mu      sync.Mutex
	done    bool
	ok      bool
	text    string
	waiting []*parked
}

type parked struct {
	r      ShadowResult
	text   string
	timer  *time.Timer
	record func(ShadowResult)
}

// NewPrimaryAnswer returns an empty slot.
func NewPrimaryAnswer() *PrimaryAnswer { return &PrimaryAnswer{} }

// Set records the primary's answer; only the first Set or Fail counts. It never blocks:
// similarities of shadows already waiting are computed on another goroutine.
func (p *PrimaryAnswer) Set(text string) { p.fill(text, true) }

// Fail records that the primary produced no answer: shadows are recorded without a
// similarity.
func (p *PrimaryAnswer) Fail() { p.fill("", false) }

func (p *PrimaryAnswer) fill(text string, ok bool) {
	if p == nil {
		return
	}
	text = bounded(text)
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return
	}
	p.done, p.ok, p.text = true, ok, text
	waiting := p.waiting
	p.waiting = nil
	p.mu.Unlock()
	var ready []*parked
	for _, w := range waiting {
		if w.timer.Stop() { // false: the wait ran out and the shadow was recorded already
			ready = append(ready, w)
		}
	}
	if len(ready) > 0 {
		go func() {
			for _, w := range ready {
				w.record(compare(w.r, text, w.text, ok))
			}
		}()
	}
}

// join records r once the primary's answer is known: now if it is, else when Set or Fail
// is called, or without a similarity after wait.
func (p *PrimaryAnswer) join(r ShadowResult, text string, wait time.Duration, record func(ShadowResult)) {
	if p == nil || r.Err != nil {
		record(r)
		return
	}
	text = bounded(text)
	p.mu.Lock()
	if p.done {
		primary, ok := p.text, p.ok
		p.mu.Unlock()
		record(compare(r, primary, text, ok))
		return
	}
	w := &parked{r: r, text: text, record: record}
	w.timer = time.AfterFunc(wait, func() {
		p.mu.Lock()
		for i, x := range p.waiting {
			if x == w {
				p.waiting = append(p.waiting[:i], p.waiting[i+1:]...)
				break
			}
		}
		p.mu.Unlock()
		record(w.r)
	})
	p.waiting = append(p.waiting, w)
	p.mu.Unlock()
}

// bounded cuts text to what the similarity reads, copying a cut so that a parked result
// does not pin a large answer in memory.
func bounded(text string) string {
	if len(text) > similarity.MaxBytes {
		return strings.Clone(text[:similarity.MaxBytes])
	}
	return text
}

func compare(r ShadowResult, primary, shadow string, ok bool) ShadowResult {
	if ok {
		r.Similarity, r.HasSimilarity = similarity.Cosine(primary, shadow), true
	}
	return r
}

type shadowJob struct {
	req    *adapters.ChatRequest
	target decision.Target
	sr     *ShadowRequest
}

// shadows runs mirrored requests on workers of their own: a shadow never shares the
// client's context, never blocks the client's request (a full queue drops it), and runs
// with no retries so it adds as little load as possible.
type shadows struct {
	e      *Executor
	cfg    ShadowConfig
	queue  chan shadowJob
	record func(ShadowResult) // once the comparison with the primary is known (or given up)
	// measure counts a result as soon as the shadow call ends, so metrics do not wait for
	// the primary's answer; nil in tests.
	measure func(ShadowResult)
	once    sync.Once
	wg      sync.WaitGroup
	stop    context.CancelFunc
	ctx     context.Context
}

func newShadows(e *Executor, cfg ShadowConfig, record func(ShadowResult)) *shadows {
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultShadowWorkers
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultShadowQueue
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultShadowTimeout
	}
	if cfg.SimilarityWait <= 0 {
		cfg.SimilarityWait = DefaultShadowSimilarityWait
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
	r := ShadowResult{Target: j.target, Experiment: j.sr.Experiment, Arm: j.sr.Arm, DecisionID: j.sr.DecisionID}
	settle := func(int64) {}
	if j.sr.Budget != nil {
		st, err := j.sr.Budget.Reserve(ctx, j.target)
		if err != nil {
			r.Err, r.Outcome = err, "ledger_error"
			if errors.Is(err, ErrShadowBudget) {
				r.Outcome = "budget"
			}
			if s.measure != nil {
				s.measure(r)
			}
			s.record(r)
			return
		}
		settle = st
	}
	ctx, span := s.e.startShadow(ctx, j)
	start := time.Now()
	d := &decision.Decision{Allow: true, Targets: []decision.Target{j.target}, Limits: decision.Limits{MaxRetries: 0}}
	res, err := s.e.Chat(ctx, j.req, d)
	endShadow(span, err)
	r.Latency, r.Err, r.Outcome = time.Since(start), err, outcomeLabel(err)
	var text string
	if err == nil {
		cached := 0
		if u := res.Response.Usage; u != nil {
			r.InputTokens, r.OutputTokens = u.PromptTokens, u.CompletionTokens
			if u.PromptTokensDetails != nil {
				cached = u.PromptTokensDetails.CachedTokens
			}
		}
		if len(res.Response.Choices) > 0 {
			text = res.Response.Choices[0].Message.Content.String()
		}
		for _, c := range res.Response.Choices {
			r.OutputBytes += len(c.Message.Content.String())
		}
		if j.sr.Price != nil {
			r.CostMicroUSD = tokens.Cost(j.sr.Price(j.target), r.InputTokens, cached, r.OutputTokens)
		}
	}
	settle(r.CostMicroUSD)
	if s.measure != nil {
		s.measure(r)
	}
	j.sr.Primary.join(r, text, s.cfg.SimilarityWait, s.record)
}

// Shadow queues a non-streamed copy of req for each target. It never blocks: when the
// queue is full the copy is dropped and counted.
func (e *Executor) Shadow(req *adapters.ChatRequest, targets []decision.Target, experiment string) (queued, dropped int) {
	return e.ShadowWith(req, &ShadowRequest{Targets: targets, Experiment: experiment})
}

// ShadowWith is Shadow with the request's context for results: arm, decision id, the
// primary's answer for similarity, prices for cost, and the budget shadows are charged to.
func (e *Executor) ShadowWith(req *adapters.ChatRequest, sr *ShadowRequest) (queued, dropped int) {
	e.shadow.start()
	for _, t := range sr.Targets {
		r := *req
		r.Stream, r.StreamOptions = false, nil
		select {
		case e.shadow.queue <- shadowJob{req: &r, target: t, sr: sr}:
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

// measureShadow counts a finished shadow: outcome, latency, tokens and cost.
func (e *Executor) measureShadow(r ShadowResult) {
	t := r.Target
	if r.Outcome == "budget" || r.Outcome == "ledger_error" {
		e.metrics.ShadowSkipped(t.Provider, t.Model, r.Experiment, r.Outcome)
		return
	}
	e.metrics.Shadow(t.Provider, t.Model, r.Experiment, r.Outcome, r.Latency)
	e.metrics.ShadowUsage(t.Provider, t.Model, r.Experiment, r.InputTokens, r.OutputTokens, r.CostMicroUSD)
}

// recordShadow publishes a shadow's comparison with the primary and its one log line,
// never text.
func (e *Executor) recordShadow(r ShadowResult) {
	if r.HasSimilarity {
		e.metrics.ShadowSimilarity(r.Target.Provider, r.Target.Model, r.Experiment, r.Similarity)
	}
	logShadow(e.log, r)
}

func logShadow(log *slog.Logger, r ShadowResult) {
	if !log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs, slog.String("decision_id", r.DecisionID), slog.String("experiment", r.Experiment), slog.String("arm", r.Arm),
		slog.String("provider", r.Target.Provider), slog.String("model", r.Target.Model),
		slog.Int64("latency_ms", r.Latency.Milliseconds()), slog.Int("input_tokens", r.InputTokens), slog.Int("output_tokens", r.OutputTokens),
		slog.Int64("cost_micro_usd", r.CostMicroUSD), slog.Int("output_bytes", r.OutputBytes))
	if r.HasSimilarity {
		attrs = append(attrs, slog.Float64("similarity", r.Similarity))
	}
	if r.Err != nil {
		attrs = append(attrs, slog.String("error", r.Outcome))
	}
	log.LogAttrs(context.Background(), slog.LevelInfo, "shadow", attrs...)
}
