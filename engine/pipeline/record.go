package pipeline

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/decisionlog"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/tokens"
)

// Finish ends a request: its usage is priced and its ledger hold settled, its shadows get
// the primary's answer, and it is recorded (metrics, decision log, one log line without
// any prompt or completion text). status is what the client got; errCode is the error
// code it saw, "" on success. Call it exactly once, whatever happened before.
func (p *Pipeline) Finish(x *Exchange, status int, errCode string) {
	dur := time.Since(x.start)
	p.Settle(x)
	cost, priced := x.cost, x.priced
	if x.primary != nil {
		answerShadows(x, status)
	}
	arm := ""
	if x.decision != nil && x.decision.AB != nil {
		arm = x.decision.AB.Arm
	}
	p.o.Metrics.Request(x.endpoint, x.route, strconv.Itoa(status), arm, x.stream, dur)
	p.o.Metrics.ExperimentRequest(experimentOfExchange(x), arm, dur)
	if r := x.CacheResult(); r != "" {
		team := ""
		if x.caller != nil {
			team = x.caller.Record.Team
		}
		p.o.Metrics.CacheRequest(r, team)
	}
	if p.o.DecisionLog != nil && x.rev != nil {
		rec := decisionlog.Record{ID: x.ID, Time: x.start, Revision: x.rev.ID, Input: x.input, Request: x.features,
			Result: x.result, Route: x.route, Substituted: x.Substituted(), Status: status, Error: errCode, Dropped: x.dropped,
			Fault: x.Fault(), Cache: x.CacheResult(), LatencyMS: dur.Milliseconds(), ContinuedFrom: x.ContinuedFrom()}
		if bp, ok := x.CacheSimilarity(); ok {
			rec.CacheKind, rec.CacheSimilarityBP = CacheKindSemantic, bp
		}
		if u := x.totalUsage(); priced && u != nil { // an answer whose usage was counted and priced
			rec.Usage, rec.CostMUSD = true, cost
			rec.InputTokens, rec.OutputTokens = u.PromptTokens, u.CompletionTokens
		}
		p.o.DecisionLog.Log(rec)
	}
	if x.upstream > 0 {
		p.o.Metrics.Overhead(max(0, dur-x.upstream))
	}
	h := p.log.Handler()
	if !h.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	// Typed attributes: no interface boxing on a line written for every request.
	attrs := make([]slog.Attr, 0, 20)
	attrs = append(attrs, slog.String("decision_id", x.ID), slog.Int("status", status), slog.String("route", x.route),
		slog.Int64("duration_ms", dur.Milliseconds()), slog.Int64("upstream_ms", x.upstream.Milliseconds()),
		slog.String("endpoint", x.endpoint))
	if sub := x.Substituted(); sub != "" {
		attrs = append(attrs, slog.String("substituted", sub))
	}
	if x.chat != nil {
		attrs = append(attrs, slog.String("model", x.chat.Model), slog.Bool("stream", x.chat.Stream))
	} else if x.model != "" {
		attrs = append(attrs, slog.String("model", x.model))
	}
	if x.caller != nil {
		attrs = append(attrs, slog.String("key_id", x.caller.Record.KeyID), slog.String("team", x.caller.Record.Team))
	}
	if x.rev != nil {
		attrs = append(attrs, slog.String("bundle_revision", x.rev.ID))
	}
	if arm != "" {
		attrs = append(attrs, slog.String("experiment", x.decision.AB.Experiment), slog.String("arm", arm))
	}
	if u := x.totalUsage(); u != nil {
		attrs = append(attrs, slog.Int("input_tokens", u.PromptTokens), slog.Int("output_tokens", u.CompletionTokens))
	} else if priced {
		attrs = append(attrs, slog.Int("input_tokens", 0), slog.Int("output_tokens", 0))
	}
	if priced {
		attrs = append(attrs, slog.Int64("cost_micro_usd", cost))
	} else {
		attrs = append(attrs, slog.Bool("usage_counted_async", true))
	}
	if errCode != "" {
		attrs = append(attrs, slog.String("error_code", errCode))
	}
	if x.streamFail {
		attrs = append(attrs, slog.Bool("stream_failed", true))
	}
	if len(x.prior) > 0 {
		attrs = append(attrs, slog.String("continued_from", strings.Join(x.ContinuedFrom(), ",")))
	}
	if f := x.Fault(); f != "" {
		attrs = append(attrs, slog.String("fault", f))
	}
	if r := x.CacheResult(); r != "" {
		attrs = append(attrs, slog.String("cache", r))
	}
	if len(x.dropped) > 0 {
		attrs = append(attrs, slog.String("dropped_params", strings.Join(x.dropped, ",")))
	}
	// The record goes to the handler without Logger.LogAttrs, which would walk the stack
	// for a source location the log does not show (runtime.Callers on every request).
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
	r.AddAttrs(attrs...)
	_ = h.Handle(context.Background(), r) // as Logger.LogAttrs: a failed log write is not the request's failure
}

// Settle prices the request's usage and settles its ledger hold now, once: the HTTP layer
// calls it before the last bytes of an answer are written (before a buffered answer's
// body, before a stream's [DONE]), so that a crash after a client holds its answer cannot
// lose the charge. Finish settles whatever was not settled before. An answer without
// usage is counted with the tokenizer off the request path and committed when that is
// done (Wait waits for it).
func (p *Pipeline) Settle(x *Exchange) {
	if x.settled {
		return
	}
	x.settled = true
	x.cost, x.priced = p.charge(x)
}

// Wait waits for the charges still being counted off the request path (answers without
// usage) to be committed, or until ctx ends: call it after the last request ended and
// before the ledger closes.
func (p *Pipeline) Wait(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for p.counting.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// charge is the one place a request's usage is priced and counted: tokens and cost by
// provider, model and the caller's team, then the ledger hold is settled with that cost.
// priced is false when an upstream answered without usage (a stream without a usage
// chunk, or an answer without a usage block): the real tokenizer then counts off the
// request's path and charges later.
func (p *Pipeline) charge(x *Exchange) (cost int64, priced bool) {
	l := usageLabels{experiment: experimentOfExchange(x)}
	if x.caller != nil {
		l.team = x.caller.Record.Team
	}
	if x.decision != nil && x.decision.AB != nil {
		l.arm = x.decision.AB.Arm
	}
	var data *policy.Data
	if x.rev != nil {
		data = x.rev.Data
	}
	// A semantic lookup's embeddings call is upstream usage of its own target: charged to
	// the request whatever the lookup found.
	embedCost := p.chargeEmbedding(x, data, l)
	if x.cache != nil && x.cache.served != nil {
		return p.chargeServed(x, l, embedCost), true
	}
	// Attempts cut mid-stream and continued elsewhere are charged at their own routes'
	// prices, on top of the answering attempt.
	priorCost := embedCost
	for i := range x.prior {
		priorCost += p.account(data, x.prior[i].route, l, &x.prior[i].usage)
	}
	if x.usage == nil && (x.uncounted || x.completion.Len() > 0) {
		// The tally is copied: what it still holds is counted on the goroutine.
		hd, route, prompt, completion, framed := x.hold, x.route, x.prompt, x.completion, x.endpoint != EndpointEmbeddings
		answer, prior := x.answer, x.prior
		p.counting.Add(1)
		go func() {
			defer p.counting.Add(-1)
			if answer != nil {
				_, model, _ := strings.Cut(route, "/")
				completion.Start(&p.counter, model)
				writeAnswer(&completion, answer)
			}
			u := p.countUsage(route, prompt, &completion, framed)
			cost := p.account(data, route, l, u) + priorCost
			for i := range prior {
				u.PromptTokens += prior[i].usage.PromptTokens
				u.CompletionTokens += prior[i].usage.CompletionTokens
				u.TotalTokens += prior[i].usage.PromptTokens + prior[i].usage.CompletionTokens
			}
			hd.settle(u, cost)
		}()
		return 0, false
	}
	if x.usage != nil {
		cost = p.account(data, x.route, l, x.usage)
	}
	cost += priorCost
	x.hold.settle(x.totalUsage(), cost)
	return cost, true
}

// price is the catalog price of id ("provider/model"): the bundle's catalog when it has
// the model (governance's price list wins), else the price its provider declares.
func (p *Pipeline) price(data *policy.Data, id string) tokens.Price {
	if data != nil {
		if e, ok := data.Catalog[id]; ok {
			return e.Price
		}
	}
	pr, _ := p.o.Catalog.Price(id)
	return pr
}

// account prices usage at the catalog rate of the route taken and counts it.
func (p *Pipeline) account(data *policy.Data, route string, l usageLabels, u *adapters.Usage) int64 {
	provider, model, _ := strings.Cut(route, "/")
	price := p.price(data, route) // route is the catalog id: no string built per request
	cached, written := 0, 0
	if d := u.PromptTokensDetails; d != nil {
		cached, written = d.CachedTokens, d.CacheWriteTokens
	}
	cost := tokens.CostCached(price, u.PromptTokens, cached, written, u.CompletionTokens)
	p.o.Metrics.Tokens(provider, model, l.team, u.PromptTokens, u.CompletionTokens)
	p.o.Metrics.Cost(provider, model, l.team, cost)
	p.o.Metrics.ExperimentCost(l.experiment, l.arm, cost)
	return cost
}

// writeAnswer writes the text of a non-streamed answer the tokenizer counts: every
// choice's content and tool calls.
func writeAnswer(t *tokens.Tally, r *adapters.ChatResponse) {
	for i := range r.Choices {
		m := &r.Choices[i].Message
		t.WriteString(m.Content.String())
		for _, tc := range m.ToolCalls {
			t.WriteString(tc.Function.Name)
			t.WriteString(tc.Function.Arguments)
		}
	}
}

// usageLabels are who a request's usage is counted against.
type usageLabels struct{ team, experiment, arm string }

// countUsage counts tokens with the real tokenizer, for answers that reported no usage:
// the prompt's, and the completion's the tally kept count of as the answer arrived.
// framed adds the chat format's per-message tokens (OpenAI's 3 + 4 per message);
// embeddings inputs have none.
func (p *Pipeline) countUsage(route string, prompt []policy.Message, completion *tokens.Tally, framed bool) *adapters.Usage {
	_, model, _ := strings.Cut(route, "/")
	u := &adapters.Usage{}
	if framed {
		u.PromptTokens = 3
	}
	for _, m := range prompt {
		n, err := p.counter.Count(model, m.Text)
		if err != nil {
			n = tokens.Estimate(m.Text)
		}
		u.PromptTokens += n
		if framed {
			u.PromptTokens += 4
		}
	}
	n := completion.Total()
	u.CompletionTokens = n
	u.TotalTokens = u.PromptTokens + n
	return u
}

// experimentOf names the experiment a decision belongs to, for metrics and logs.
func experimentOf(d *decision.Decision) string {
	if e := d.Labels["experiment"]; e != "" {
		return e
	}
	if d.AB != nil {
		return d.AB.Experiment
	}
	return ""
}

// experimentOfExchange is the experiment a request belongs to ("" when none).
func experimentOfExchange(x *Exchange) string {
	if x.decision == nil {
		return ""
	}
	return experimentOf(x.decision)
}
