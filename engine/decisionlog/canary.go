package decisionlog

import (
	"encoding/json"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/gavel-gw/gavel/engine/policy"
)

// CanaryPath is the "path" of a canary event, where a decision's is "gavel/decision":
// readers of the log (replays, impact reports) tell the two apart by it.
const CanaryPath = policy.CanaryEventPath

// CanaryIDSuffix makes a canary event's id from the decision it compares: the request's
// own event keeps its id, and the disagreement is found beside it
// (GET /v1/gavel/decisions/<id>-canary).
const CanaryIDSuffix = "-canary"

// Canary is a disagreement between the active bundle and a canary candidate on one live
// request (engine/canary): both results, never executed, and the decision fields that
// differ.
type Canary struct {
	DecisionID        string // the request's decision id
	Time              time.Time
	ActiveRevision    string
	CandidateRevision string
	Active            ast.Value // data.gavel.decision as the active bundle returned it
	Candidate         ast.Value // as the candidate returned it; nil when it failed (Error)
	Error             string    // why the candidate could not decide; "" when it did
	// Kinds are the decision fields that differ (policy.ChangedFields), or "error".
	Kinds []string
}

// LogCanary hands a canary disagreement to the background goroutine without blocking, as
// Log does; false means the buffer was full and the event was dropped.
//
// The event: {"decision_id": "<id>-canary", "path": "gavel/canary", "result": <the
// candidate's decision>, "bundles": {"gavel": {"revision": <candidate>}}, "timestamp",
// "labels", "custom": {"kind": "canary", "decision_id": <id>, "disagreements": [kinds],
// "active_revision", "active_result", "error"}}. Mask rules under /result apply to both
// results.
func (l *Logger) LogCanary(c Canary) bool {
	return l.Log(Record{ID: c.DecisionID + CanaryIDSuffix, Time: c.Time, Revision: c.CandidateRevision, canary: &c})
}

// encodeCanary writes a canary event. They are rare (disagreements only), so it goes
// through encoding/json, and applies the mask rules itself: to the candidate's result
// and to the active one alike.
func (l *Logger) encodeCanary(r Record) []byte {
	c := r.canary
	result, active := jsonOf(c.Candidate), jsonOf(c.Active)
	custom := map[string]any{"kind": "canary", "decision_id": c.DecisionID, "disagreements": c.Kinds,
		"active_revision": c.ActiveRevision, "active_result": active}
	if c.Error != "" {
		custom["error"] = c.Error
	}
	ev := map[string]any{"decision_id": r.ID, "path": CanaryPath, "result": result,
		"bundles":   map[string]any{"gavel": map[string]any{"revision": r.Revision}},
		"timestamp": r.Time.UTC().Format(time.RFC3339Nano), "custom": custom}
	if len(l.cfg.Labels) > 0 {
		ev["labels"] = l.cfg.Labels
	}
	var erased []string
	for _, m := range l.masks {
		if m.parts[0] != "result" {
			continue // the event carries no input
		}
		if len(m.parts) == 1 {
			// The whole result: both go.
			if result != nil || active != nil {
				delete(ev, "result")
				delete(custom, "active_result")
				erased = append(erased, m.pointer)
			}
			continue
		}
		a := erase(ev, m.parts)
		b := erase(map[string]any{"result": active}, m.parts)
		if a || b {
			erased = append(erased, m.pointer)
		}
	}
	if len(erased) > 0 {
		ev["erased"] = erased
	}
	line, err := json.Marshal(ev)
	if err != nil {
		return nil
	}
	return append(line, '\n')
}

// jsonOf is v as Go values (maps, slices, json.Number-free numbers), nil when v is nil
// or not JSON.
func jsonOf(v ast.Value) any {
	if v == nil {
		return nil
	}
	x, err := ast.JSON(v)
	if err != nil {
		return nil
	}
	return x
}
