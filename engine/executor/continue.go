package executor

import (
	"context"
	"errors"
	"strings"
	"unicode"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/decision"
)

// ContinueInstruction is the user message that asks a target without prefill
// (adapters.Prefiller) to go on with an answer another target was cut in: it follows the
// cut answer, sent as a finished assistant turn.
const ContinueInstruction = "Your previous answer was cut off. Continue it from exactly where it stops: " +
	"do not repeat any of it, do not add a preamble or comment, and keep its language and format."

// ErrNoContinuation is ContinueStream's answer when the decision has no target after the
// one whose stream failed.
var ErrNoContinuation = errors.New("no target left to continue the stream on")

var attrContinued = attribute.Key("gavel.continued")

// continuedKey marks the context of a continuation's attempts, so that their spans carry
// gavel.continued=true.
type continuedKey struct{}

// Continuation is an answer a stream was cut in, to be continued on another target.
type Continuation struct {
	// After is the target whose stream failed: the continuation walks the decision's
	// targets after it.
	After decision.Target
	// Text is the assistant text the client has received so far.
	Text string
}

// ContinueStream opens a stream that continues an answer whose stream failed after bytes
// reached the client (decision limits.midstream "continue"). It walks the decision's
// targets after c.After as OpenStream walks them all — each through its pipeline, open
// breakers skipped, retries and failover as usual — asking each for the rest of the
// answer: req plus c.Text as an assistant prefill where the provider continues one
// (adapters.Prefiller), else as an assistant turn followed by ContinueInstruction. The
// decision's fault (a drill names an attempt of the first walk) and hedge do not apply.
// The request's span and the attempts' spans carry gavel.continued=true.
func (e *Executor) ContinueStream(ctx context.Context, req *adapters.ChatRequest, d *decision.Decision, c Continuation) (*StreamResult, error) {
	rest := remainingTargets(d.Targets, c.After)
	if len(rest) == 0 {
		return nil, ErrNoContinuation
	}
	trace.SpanFromContext(ctx).SetAttributes(attrContinued.Bool(true))
	ctx = context.WithValue(ctx, continuedKey{}, true)
	walkOn := &decision.Decision{Allow: true, Targets: rest, Limits: d.Limits}
	return e.streamOver(ctx, walkOn, d, req, &c)
}

// remainingTargets are the targets after the last occurrence of after; none when after
// is not among them.
func remainingTargets(targets []decision.Target, after decision.Target) []decision.Target {
	for i := len(targets) - 1; i >= 0; i-- {
		if targets[i] == after {
			return targets[i+1:]
		}
	}
	return nil
}

// continuationRequest is req asking prov for the rest of an answer that begins with text.
// An empty text (the cut came before any text: in a tool call) asks the question again.
func continuationRequest(req *adapters.ChatRequest, prov adapters.Provider, text string) *adapters.ChatRequest {
	if text == "" {
		return req
	}
	r := *req
	msgs := make([]adapters.Message, len(req.Messages), len(req.Messages)+2)
	copy(msgs, req.Messages)
	if pf, ok := prov.(adapters.Prefiller); ok && pf.Prefills() {
		// A prefill must not end in whitespace (Anthropic refuses it); what the trim
		// leaves out, the continuation repeats and the pipeline strips.
		if t := strings.TrimRightFunc(text, unicode.IsSpace); t != "" {
			msgs = append(msgs, adapters.Message{Role: "assistant", Content: adapters.TextContent(t)})
		}
	} else {
		msgs = append(msgs,
			adapters.Message{Role: "assistant", Content: adapters.TextContent(text)},
			adapters.Message{Role: "user", Content: adapters.TextContent(ContinueInstruction)})
	}
	r.Messages = msgs
	return &r
}

// continued reports whether ctx is a continuation's (ContinueStream).
func continued(ctx context.Context) bool { return ctx.Value(continuedKey{}) != nil }
