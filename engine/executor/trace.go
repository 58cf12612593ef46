package executor

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
)

// Span attribute keys of gavel's own (the gen_ai.* ones come from semconv).
const (
	attrRetry      = attribute.Key("gavel.retry")
	attrOutcome    = attribute.Key("gavel.outcome")
	attrShadow     = attribute.Key("gavel.shadow")
	attrExperiment = attribute.Key("gavel.experiment")
	attrProvider   = attribute.Key("gavel.provider")
	// gen_ai.system predates gen_ai.provider.name (semconv ≤ 1.36); backends that have
	// not moved on still group by it.
	attrGenAISystem = attribute.Key("gen_ai.system")
	attrTTFC        = attribute.Key("gen_ai.response.time_to_first_chunk")
)

// operation is what an attempt asks of the upstream, as GenAI semconv names it.
type operation int

const (
	opChat operation = iota
	opEmbeddings
)

// pipelineSpans is what every attempt span of one provider+model shares, built once with
// the pipeline so an attempt allocates only for its own values.
type pipelineSpans struct {
	name  [2]string               // by operation: "chat {model}", "embeddings {model}"
	attrs [2][]attribute.KeyValue // by operation
}

// spansFor precomputes a pipeline's span names and attributes; nil when tracing is off.
func (e *Executor) spansFor(t decision.Target, prov adapters.Provider) *pipelineSpans {
	if e.tracer == nil {
		return nil
	}
	system := t.Provider
	if g, ok := prov.(adapters.GenAIProvider); ok {
		system = g.GenAIProvider()
	}
	ps := &pipelineSpans{name: [2]string{"chat " + t.Model, "embeddings " + t.Model}}
	for op, name := range [2]attribute.KeyValue{semconv.GenAIOperationNameChat, semconv.GenAIOperationNameEmbeddings} {
		ps.attrs[op] = []attribute.KeyValue{name, semconv.GenAIProviderNameKey.String(system), attrGenAISystem.String(system),
			attrProvider.String(t.Provider), semconv.GenAIRequestModel(t.Model)}
	}
	return ps
}

// attemptTrace is one attempt's span and what its attributes need; the zero value
// (tracing off) does nothing.
type attemptTrace struct {
	span  trace.Span
	spans *pipelineSpans
	op    operation
	retry int
	req   *adapters.ChatRequest
	cont  bool // a mid-stream continuation's attempt (ContinueStream)
}

// startAttempt starts the span of one upstream attempt, a child of the request's span,
// and returns the context the provider call must use (it carries the span to the
// transport, which sends its traceparent upstream). Tracing off: the attempt's context
// and an inert attemptTrace.
func (e *Executor) startAttempt(exec *try, p *pipeline, op operation, req *adapters.ChatRequest) (context.Context, attemptTrace) {
	ctx := exec.Context()
	if e.tracer == nil || p.spans == nil {
		return ctx, attemptTrace{}
	}
	// Attributes go in once, at the end: the SDK then grows and de-duplicates the span's
	// attribute slice once instead of at Start and again at End.
	ctx, span := e.tracer.Start(ctx, p.spans.name[op], clientKind)
	return ctx, attemptTrace{span: span, spans: p.spans, op: op, retry: exec.Retries(), req: req, cont: continued(ctx)}
}

var clientKind = trace.WithSpanKind(trace.SpanKindClient)

// end records what the attempt produced and ends its span.
func (a attemptTrace) end(out *outcome, err error) {
	if a.span == nil {
		return
	}
	if !a.span.IsRecording() {
		a.span.End() // not sampled: nothing to record
		return
	}
	base := a.spans.attrs[a.op]
	attrs := make([]attribute.KeyValue, len(base), len(base)+8)
	copy(attrs, base)
	attrs = append(attrs, attrRetry.Int(a.retry))
	if a.cont {
		attrs = append(attrs, attrContinued.Bool(true))
	}
	if r := a.req; r != nil {
		if m := r.MaxCompletionTokens; m != nil {
			attrs = append(attrs, semconv.GenAIRequestMaxTokens(*m))
		} else if m := r.MaxTokens; m != nil {
			attrs = append(attrs, semconv.GenAIRequestMaxTokens(*m))
		}
		if t := r.Temperature; t != nil {
			attrs = append(attrs, semconv.GenAIRequestTemperature(*t))
		}
	}
	if err != nil {
		kind := outcomeLabel(err)
		a.span.SetAttributes(append(attrs, attrOutcome.String(kind), semconv.ErrorTypeKey.String(kind))...)
		// The kind, not the message: an upstream error may quote the request.
		a.span.SetStatus(codes.Error, kind)
		a.span.End()
		return
	}
	attrs = append(attrs, attrOutcome.String("ok"))
	switch {
	case out == nil:
	case out.resp != nil:
		attrs = append(attrs, semconv.GenAIResponseModel(out.resp.Model))
		if u := out.resp.Usage; u != nil {
			attrs = append(attrs, semconv.GenAIUsageInputTokens(u.PromptTokens), semconv.GenAIUsageOutputTokens(u.CompletionTokens))
		}
	case out.emb != nil:
		attrs = append(attrs, semconv.GenAIResponseModel(out.emb.Model))
		if u := out.emb.Usage; u != nil {
			attrs = append(attrs, semconv.GenAIUsageInputTokens(u.PromptTokens))
		}
	case out.raw != nil:
		if out.raw.Model != "" {
			attrs = append(attrs, semconv.GenAIResponseModel(out.raw.Model))
		}
		if u := out.raw.Usage; u != nil {
			attrs = append(attrs, semconv.GenAIUsageInputTokens(u.PromptTokens), semconv.GenAIUsageOutputTokens(u.CompletionTokens))
		}
	case out.rawStream != nil:
		attrs = append(attrs, attrTTFC.Float64(out.ttft.Seconds()))
	case out.first != nil:
		// A stream's attempt ends at its first chunk; usage arrives with the last one.
		attrs = append(attrs, semconv.GenAIResponseModel(out.first.Model), attrTTFC.Float64(out.ttft.Seconds()))
	}
	a.span.SetAttributes(attrs...)
	a.span.End()
}

// startShadow starts a shadow call's span: a root of its own (a shadow outlives the
// client's request and never shares its context) linked to the request that queued it.
func (e *Executor) startShadow(ctx context.Context, j shadowJob) (context.Context, trace.Span) {
	if e.tracer == nil {
		return ctx, nil
	}
	opts := []trace.SpanStartOption{trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attrShadow.Bool(true), attrExperiment.String(j.sr.Experiment),
			attrProvider.String(j.target.Provider), semconv.GenAIRequestModel(j.target.Model))}
	if j.sr.Link.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: j.sr.Link}))
	}
	return e.tracer.Start(ctx, "shadow "+j.target.String(), opts...)
}

// endShadow ends a shadow span; nil-safe.
func endShadow(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		kind := outcomeLabel(err)
		span.SetAttributes(attrOutcome.String(kind), semconv.ErrorTypeKey.String(kind))
		span.SetStatus(codes.Error, kind)
	} else {
		span.SetAttributes(attrOutcome.String("ok"))
	}
	span.End()
}
