package pipeline_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/mock"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/executor"
	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/ledger/memstore"
	"github.com/gavel-gw/gavel/engine/pipeline"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/signals"
	"github.com/gavel-gw/gavel/engine/telemetry"
	"github.com/gavel-gw/gavel/engine/tokens"
)

// The rig is a real pipeline: the Rego policy in testdata over a data.gavel each test
// shapes, the executor over mock providers (and two small wrappers where the mock cannot
// do what a test needs), and an in-memory ledger on a fixed clock, so rate windows and
// budget periods cannot roll over in the middle of a test.

// Catalog ids the test policy routes to. Each provider is configured without retries.
const (
	goodID    = "good/m"    // answers, usage included
	badID     = "bad/m"     // always fails with a 503, falls back to bad2/m
	bad2ID    = "bad2/m"    // always fails with a 503
	noUsageID = "nousage/m" // answers and streams without usage
	slowID    = "slow/m"    // blocks until the request's context ends
	shadowID  = "shadow/m"  // answers shadow copies
	embedID   = "good/e"    // the good provider's embeddings
	bigID     = "big/m"     // answers setup.bigReply, without usage
)

// Replies of the mocks: fixed, so usage and counted tokens are known in advance.
const (
	goodReply   = "The answer is forty-two, and it has always been forty-two."
	shadowReply = "Forty-two, says the shadow model, after some thought."
)

// Catalog prices, micro-USD per million tokens: 1 µUSD per input token and 2 per output
// token for the callers' models, dearer for the shadow.
var (
	price       = tokens.Price{InputMicroUSDPerMTok: 1_000_000, OutputMicroUSDPerMTok: 2_000_000}
	shadowPrice = tokens.Price{InputMicroUSDPerMTok: 3_000_000, OutputMicroUSDPerMTok: 5_000_000}
)

// clock is the ledger's fixed now: the middle of a minute, the middle of a month.
var clock = time.Date(2026, 3, 14, 12, 0, 30, 0, time.UTC)

// ana is the caller of every request.
var ana = func() *auth.Caller {
	r := policy.KeyRecord{KeyID: "k-ana", User: "ana", Team: "search", Project: "web"}
	return &auth.Caller{Record: r, Value: policy.CallerValue(r)}
}()

// setup shapes a rig.
type setup struct {
	budgets    []map[string]any // data.gavel.budgets
	rateLimits []map[string]any // data.gavel.rate_limits
	shadow     []string         // catalog ids every request is mirrored to
	experiment string           // labels.experiment of every decision
	charge     string           // Options.ShadowCharge
	noLedger   bool             // Options.Ledger nil
	noBundle   bool             // the engine never activates a bundle
	bigReply   string           // the reply of bigID, which streams it in MaxChunks pieces without usage
}

type rig struct {
	p      *pipeline.Pipeline
	store  *memstore.Store
	shadow *records // the executor's "shadow" log records
	slow   *blocking
}

func newRig(t *testing.T, s setup) *rig {
	t.Helper()
	r := &rig{shadow: &records{msg: "shadow", ch: make(chan slog.Record, 16)}, slow: &blocking{name: "slow", started: make(chan struct{}, 16)}}
	good := newMock(t, mock.Config{Name: "good", Reply: goodReply})
	providers := map[string]adapters.Provider{
		"good":    good,
		"bad":     newMock(t, mock.Config{Name: "bad", ErrorRate: 1, ErrorStatus: 503}),
		"bad2":    newMock(t, mock.Config{Name: "bad2", ErrorRate: 1, ErrorStatus: 503}),
		"nousage": noUsage{newMock(t, mock.Config{Name: "nousage", Reply: goodReply})},
		"slow":    r.slow,
		"shadow":  newMock(t, mock.Config{Name: "shadow", Reply: shadowReply}),
	}
	if s.bigReply != "" {
		providers["big"] = noUsage{newMock(t, mock.Config{Name: "big", Reply: s.bigReply, Chunks: mock.MaxChunks})}
	}
	res := map[string]executor.Resilience{}
	for name := range providers {
		res[name] = executor.Resilience{MaxRetries: 0}
	}
	tracker := signals.New(0)
	metrics := telemetry.NewMetrics()
	exec := executor.New(executor.Options{Providers: providers, Resilience: res, Tracker: tracker, Metrics: metrics,
		Log: slog.New(r.shadow)})
	t.Cleanup(exec.Close)

	engine := policy.New()
	if !s.noBundle {
		if _, err := engine.Activate(context.Background(), testBundle(t, s), "test"); err != nil {
			t.Fatal(err)
		}
	}
	o := pipeline.Options{
		Engine:       engine,
		Planner:      policy.NewPlanner(engine, tracker, 0, slog.New(slog.DiscardHandler)),
		Executor:     exec,
		Metrics:      metrics,
		ShadowCharge: s.charge,
	}
	if !s.noLedger {
		r.store = memstore.New(memstore.Options{Now: func() time.Time { return clock }})
		t.Cleanup(func() { r.store.Close() })
		o.Ledger = r.store
	}
	r.p = pipeline.New(o)
	return r
}

func newMock(t *testing.T, c mock.Config) *mock.Provider {
	t.Helper()
	p, err := mock.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testBundle is testdata/policy.rego over the data.gavel the setup describes.
func testBundle(t *testing.T, s setup) *bundle.Bundle {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "policy.rego"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := ast.ParseModule("policy.rego", string(raw))
	if err != nil {
		t.Fatal(err)
	}
	priceJSON := func(p tokens.Price) map[string]any {
		return map[string]any{"input_musd_per_mtok": p.InputMicroUSDPerMTok, "output_musd_per_mtok": p.OutputMicroUSDPerMTok}
	}
	entry := func(id string, p tokens.Price, fallbacks ...string) map[string]any {
		prov, model, _ := strings.Cut(id, "/")
		return map[string]any{"provider": prov, "model": model, "price": priceJSON(p), "fallbacks": fallbacks}
	}
	g := map[string]any{
		"catalog": map[string]any{
			goodID:    entry(goodID, price),
			badID:     entry(badID, price, bad2ID),
			bad2ID:    entry(bad2ID, price),
			noUsageID: entry(noUsageID, price),
			slowID:    entry(slowID, price),
			shadowID:  entry(shadowID, shadowPrice),
			embedID:   entry(embedID, price),
			bigID:     entry(bigID, price),
		},
		"test": map[string]any{"shadow": s.shadow, "experiment": s.experiment},
	}
	if s.shadow == nil {
		g["test"].(map[string]any)["shadow"] = []string{}
	}
	if s.budgets != nil {
		g["budgets"] = s.budgets
	}
	if s.rateLimits != nil {
		g["rate_limits"] = s.rateLimits
	}
	return &bundle.Bundle{
		Data:    map[string]any{"gavel": g},
		Modules: []bundle.ModuleFile{{URL: "/policy.rego", Path: "/policy.rego", Raw: raw, Parsed: mod}},
	}
}

// teamDaily is a hard daily budget of the caller's team.
func teamDaily(limit int64) map[string]any {
	return map[string]any{"name": "team-daily", "scope": "team", "period": "day", "limit_musd": limit, "hard": true}
}

// teamBudget is teamDaily as the ledger knows it for ana.
func teamBudget(limit int64) ledger.Budget {
	return ledger.Budget{Scope: "team", ID: "search", Period: "day", LimitMicroUSD: limit, Hard: true}
}

// keyRate is the caller's per-key rate limit as data.gavel declares it, and keyLimit the
// same as the ledger knows it for ana.
func keyRate(rpm, tpm int64) map[string]any {
	return map[string]any{"scope": "key", "rpm": rpm, "tpm": tpm}
}

func keyLimit(rpm, tpm int64) ledger.RateLimit {
	return ledger.RateLimit{Scope: "key", ID: "k-ana", RequestsPerMinute: rpm, TokensPerMinute: tpm}
}

func (r *rig) budget(t *testing.T, b ledger.Budget) ledger.BudgetState {
	t.Helper()
	st, err := r.store.Snapshot(context.Background(), []ledger.Budget{b})
	if err != nil {
		t.Fatal(err)
	}
	return st[0]
}

func (r *rig) rate(t *testing.T, l ledger.RateLimit) ledger.RateLimitState {
	t.Helper()
	st, err := r.store.RateState(context.Background(), []ledger.RateLimit{l})
	if err != nil {
		t.Fatal(err)
	}
	return st[0]
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitSpent polls the ledger until b has spent spent with nothing reserved.
func (r *rig) waitSpent(t *testing.T, b ledger.Budget, spent int64) {
	t.Helper()
	var st ledger.BudgetState
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st = r.budget(t, b); st.Spent == spent && st.Reserved == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s:%s: spent %d, reserved %d; want spent %d, reserved 0", b.Scope, b.ID, st.Spent, st.Reserved, spent)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// chatRequest asks model one question.
func chatRequest(model string) *adapters.ChatRequest {
	return &adapters.ChatRequest{Model: model, Messages: []adapters.Message{
		{Role: "system", Content: &adapters.Content{Text: "Answer briefly."}},
		{Role: "user", Content: &adapters.Content{Text: "What is the answer to everything?"}},
	}}
}

// upstreamUsage is what the mock configured as c reports for req, computed by a mock of
// its own (the mock is deterministic).
func upstreamUsage(t *testing.T, c mock.Config, req *adapters.ChatRequest) adapters.Usage {
	t.Helper()
	r := *req
	r.Stream, r.StreamOptions = false, nil
	resp, err := newMock(t, c).Chat(context.Background(), &r)
	if err != nil {
		t.Fatal(err)
	}
	return *resp.Usage
}

func cost(p tokens.Price, u adapters.Usage) int64 {
	return tokens.Cost(p, u.PromptTokens, 0, u.CompletionTokens)
}

// estimate is the cost the pipeline reserves for req at p.
func estimate(req *adapters.ChatRequest, p tokens.Price) (estIn int, amount int64) {
	f := pipeline.ChatFeatures("id", req, "", ana)
	return f.EstInputTokens, tokens.EstimateCost(p, f.EstInputTokens, f.MaxTokens)
}

// drain reads a stream to its end and returns the chunks the client would see.
func drain(t *testing.T, s *pipeline.Stream) []*adapters.ChatChunk {
	t.Helper()
	var out []*adapters.ChatChunk
	for {
		c, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if c != nil {
			out = append(out, c)
		}
	}
}

// noUsage is a provider whose answers carry no usage block and whose streams carry no
// usage chunk, as some upstreams do.
type noUsage struct{ *mock.Provider }

func (p noUsage) Chat(ctx context.Context, req *adapters.ChatRequest) (*adapters.ChatResponse, error) {
	res, err := p.Provider.Chat(ctx, req)
	if res != nil {
		res.Usage = nil
	}
	return res, err
}

func (p noUsage) ChatStream(ctx context.Context, req *adapters.ChatRequest) (adapters.ChunkStream, error) {
	s, err := p.Provider.ChatStream(ctx, req)
	if err != nil {
		return nil, err
	}
	return noUsageStream{s}, nil
}

type noUsageStream struct{ adapters.ChunkStream }

func (s noUsageStream) Recv() (*adapters.ChatChunk, error) {
	for {
		c, err := s.ChunkStream.Recv()
		if err != nil || c.Usage == nil {
			return c, err
		}
	}
}

// blocking is a provider that reports each call on started and answers only when the
// call's context ends.
type blocking struct {
	name    string
	started chan struct{}
}

func (b *blocking) Name() string { return b.name }

func (b *blocking) Chat(ctx context.Context, _ *adapters.ChatRequest) (*adapters.ChatResponse, error) {
	b.started <- struct{}{}
	<-ctx.Done()
	return nil, &adapters.Error{Provider: b.name, Kind: adapters.KindCanceled, Err: ctx.Err()}
}

func (b *blocking) ChatStream(ctx context.Context, req *adapters.ChatRequest) (adapters.ChunkStream, error) {
	_, err := b.Chat(ctx, req)
	return nil, err
}

// records is a slog handler that hands over the records with one message.
type records struct {
	msg string
	ch  chan slog.Record
	mu  sync.Mutex
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *records) WithGroup(string) slog.Handler            { return h }

func (h *records) Handle(_ context.Context, r slog.Record) error {
	if r.Message != h.msg {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case h.ch <- r.Clone():
	default:
	}
	return nil
}

// next waits for the next record.
func (h *records) next(t *testing.T) slog.Record {
	t.Helper()
	select {
	case r := <-h.ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("no %q record", h.msg)
		return slog.Record{}
	}
}

// attr is a record's attribute by key.
func attr(r slog.Record, key string) slog.Value {
	var v slog.Value
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}
