package policy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Outcome is the part of a decision a replay compares: what the client would have seen
// and where the request would have gone.
type Outcome struct {
	Allow    bool     `json:"allow"`
	DenyCode string   `json:"deny_code,omitempty"`
	Targets  []string `json:"targets,omitempty"` // provider/model, primary first
	Err      string   `json:"error,omitempty"`   // the decision could not be evaluated or parsed
}

func (o Outcome) String() string {
	switch {
	case o.Err != "":
		return "error (" + o.Err + ")"
	case !o.Allow:
		return "deny " + o.DenyCode
	}
	return "allow " + strings.Join(o.Targets, ",")
}

// Equal reports whether two outcomes would have treated the request the same.
func (o Outcome) Equal(p Outcome) bool {
	return o.Allow == p.Allow && o.DenyCode == p.DenyCode && o.Err == p.Err && slices.Equal(o.Targets, p.Targets)
}

func outcomeOf(v ast.Value, err error) Outcome {
	if err != nil {
		return Outcome{Err: err.Error()}
	}
	d, err := ParseDecision(v)
	if err != nil {
		return Outcome{Err: err.Error()}
	}
	o := Outcome{Allow: d.Allow}
	if d.Deny != nil {
		o.DenyCode = d.Deny.Code
	}
	for _, t := range d.Targets {
		o.Targets = append(o.Targets, t.String())
	}
	return o
}

// Change is a logged decision the candidate would decide differently.
type Change struct {
	DecisionID string   `json:"decision_id"`
	Alias      string   `json:"alias"` // the model the request asked for
	Old        Outcome  `json:"old"`
	New        Outcome  `json:"new"`
	Fields     []string `json:"fields"` // the decision fields that differ (reasons aside)
}

// RouteChanged reports a change of where the request goes: allowed one way and denied
// the other, or another primary target.
func (c Change) RouteChanged() bool {
	if c.Old.Allow != c.New.Allow {
		return true
	}
	return c.Old.Allow && len(c.Old.Targets) > 0 && len(c.New.Targets) > 0 && c.Old.Targets[0] != c.New.Targets[0]
}

// ReplaySummary counts a replay.
type ReplaySummary struct {
	Replayed  int // events evaluated
	Changed   int
	Unchanged int
	Skipped   int // events without an input or a result (the request never reached the policy)
}

// CanaryEventPath is the "path" of a canary disagreement in the decision log (see
// engine/canary): not a decision, so replays and impact reports pass over it.
const CanaryEventPath = "gavel/canary"

// isCanaryEvent reports a canary disagreement event.
func isCanaryEvent(obj ast.Object) bool {
	p, _ := field(obj, "path").(ast.String)
	return p == CanaryEventPath
}

// MaxEventBytes bounds one decision-log line a replay reads.
const MaxEventBytes = 64 << 20

// Replay re-decides logged decisions with rev: it reads decision-log events (JSON lines,
// as the file sink writes them), rebuilds each input, recomputes input.plan with rev over
// the logged input.providers (events leave the plan out), evaluates data.gavel.decision
// and compares it with the logged result, every field of it (ab, shadow, limits, budgets,
// hedge, …) but the reasons. onChange sees each decision that would change,
// in log order. Message texts masked in the log are replayed as masked: a policy that
// routes on content may decide differently for that reason alone.
func Replay(ctx context.Context, rev *Revision, log io.Reader, onChange func(Change)) (ReplaySummary, error) {
	var sum ReplaySummary
	plans := map[string]ast.Value{} // by the providers snapshot: events share a few of them
	r := bufio.NewReaderSize(log, 1<<20)
	for lineNo := 1; ; lineNo++ {
		line, err := readLine(r)
		if errors.Is(err, io.EOF) {
			return sum, nil
		}
		if err != nil {
			return sum, fmt.Errorf("decision log line %d: %w", lineNo, err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		ev, err := ast.ValueFromReader(bytes.NewReader(line))
		if err != nil {
			return sum, fmt.Errorf("decision log line %d: %w", lineNo, err)
		}
		obj, ok := ev.(ast.Object)
		if !ok {
			return sum, fmt.Errorf("decision log line %d: not a JSON object", lineNo)
		}
		if isCanaryEvent(obj) {
			continue
		}
		id, _ := field(obj, "decision_id").(ast.String)
		input, _ := field(obj, "input").(ast.Object)
		result := field(obj, "result")
		if input == nil || result == nil || result.Compare(ast.Null{}) == 0 {
			sum.Skipped++
			continue
		}
		old := outcomeOf(result, nil)
		in, err := replayInput(ctx, rev, input, plans)
		var now Outcome
		var fields []string
		if err != nil {
			now = Outcome{Err: err.Error()}
		} else {
			v, err := rev.Evaluate(ctx, in)
			now = outcomeOf(v, err)
			if err == nil {
				fields = ChangedFields(result, v)
			}
		}
		sum.Replayed++
		if old.Equal(now) && len(fields) == 0 {
			sum.Unchanged++
			continue
		}
		sum.Changed++
		if onChange != nil {
			alias := ""
			if rq, ok := field(input, "request").(ast.Object); ok {
				alias = str(field(rq, "model"))
			}
			onChange(Change{DecisionID: string(id), Alias: alias, Old: old, New: now, Fields: fields})
		}
	}
}

// replayInput is the logged input with input.plan as rev computes it for the logged
// provider snapshot.
func replayInput(ctx context.Context, rev *Revision, input ast.Object, plans map[string]ast.Value) (ast.Value, error) {
	providers := field(input, "providers")
	key := ""
	if providers != nil {
		key = providers.String()
	}
	plan, ok := plans[key]
	if !ok {
		var err error
		if plan, err = rev.Plan(ctx, providers); err != nil {
			return nil, err
		}
		plans[key] = plan
	}
	return WithPlan(input, plan), nil
}

// WithPlan is input with its input.plan replaced by plan (removed when plan is nil): the
// input another revision decides, since a plan belongs to the revision that made it. A
// plan in a logged input (events leave it out, hand-made ones may not) is the old
// policy's, and so is the one in a live request's input.
func WithPlan(input ast.Object, plan ast.Value) ast.Object {
	in := ast.NewObject()
	input.Foreach(func(k, v *ast.Term) {
		if k.Value.Compare(kPlan.Value) != 0 {
			in.Insert(k, v)
		}
	})
	if plan != nil {
		in.Insert(kPlan, ast.NewTerm(plan))
	}
	return in
}

func field(obj ast.Object, name string) ast.Value {
	if t := obj.Get(ast.StringTerm(name)); t != nil {
		return t.Value
	}
	return nil
}

// readLine reads one line of any length up to MaxEventBytes.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxEventBytes {
			return nil, fmt.Errorf("event longer than %d bytes", MaxEventBytes)
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil
		default:
			return nil, err
		}
	}
}
