package policy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/gavel-gw/gavel/engine/tokens"
)

// Impact is what a candidate bundle would do to logged traffic (`gavel policy diff`):
// every logged decision re-decided, its changes counted and grouped, and the spend
// re-priced with the candidate's catalog and the usage each event logged.
type Impact struct {
	Revision string `json:"revision"` // the candidate's
	Replayed int    `json:"replayed"` // events re-decided
	Skipped  int    `json:"skipped"`  // events without a decision (the request failed before the policy)
	Changed  int    `json:"changed"`  // decisions with any field changed (reasons aside)

	NewlyDenied  int `json:"newly_denied"`
	NewlyAllowed int `json:"newly_allowed"`
	Rerouted     int `json:"rerouted"` // allowed before and after, another primary target

	// Spend over the events that logged their usage: as logged, and as the candidate would
	// have spent it (its decision's target at its catalog's price; nothing when it denies).
	SpendBeforeMUSD int64 `json:"spend_before_musd"`
	SpendAfterMUSD  int64 `json:"spend_after_musd"`
	// Estimated counts newly allowed requests (they were denied, so they logged no usage)
	// priced from the token estimate their input carries: request.est_input_tokens, and
	// request.max_tokens of output (tokens.DefaultMaxOutputTokens when unset), at the
	// candidate's price of its primary target, which is what gavel would reserve for them
	// (tokens.EstimateCost): an upper bound. SpendEstimatedMUSD is that part of
	// SpendAfterMUSD.
	Estimated          int   `json:"estimated"`
	SpendEstimatedMUSD int64 `json:"spend_estimated_musd"`
	// Unpriced counts newly allowed requests that logged neither usage nor a token
	// estimate, whose spend under the candidate is unknown and not in SpendAfterMUSD.
	Unpriced int `json:"unpriced"`

	// Fields counts, per decision field, the events where it changed.
	Fields map[string]int `json:"fields"`
	// Groups are the events by team, key, alias (the model asked for), route (the target
	// that answered) and deny_code (the candidate's), largest first.
	Groups map[string][]Group `json:"groups"`
	// Moves are the changes of primary target, per alias, with each target's logged
	// latency and error rate.
	Moves   []Move   `json:"moves"`
	Changes []Change `json:"changes"`
}

// Group is one team, key, alias, route or deny code of an Impact.
type Group struct {
	Name            string `json:"name"`
	Requests        int    `json:"requests"`
	Changed         int    `json:"changed"`
	NewlyDenied     int    `json:"newly_denied"`
	NewlyAllowed    int    `json:"newly_allowed"`
	SpendBeforeMUSD int64  `json:"spend_before_musd"`
	SpendAfterMUSD  int64  `json:"spend_after_musd"`
}

// Move is a change of primary target for an alias.
type Move struct {
	Alias    string      `json:"alias"`
	From     string      `json:"from"`
	To       string      `json:"to"`
	Requests int         `json:"requests"`
	FromLog  TargetStats `json:"from_log"`
	ToLog    TargetStats `json:"to_log"`
}

// TargetStats is what the log says about a target: how often it was the primary, how often
// that failed (another target answered, or a 5xx), and its mean latency when it answered.
type TargetStats struct {
	Primary     int   `json:"primary"`
	ErrorRateBP int   `json:"error_rate_bp"` // failures per 10,000 times primary
	Answered    int   `json:"answered"`
	LatencyMS   int64 `json:"mean_latency_ms"` // over answers below 400
}

// logEvent is one decision-log line as an impact report reads it.
type logEvent struct {
	id, team, key, alias, route string
	status                      int
	latencyMS                   int64
	usage                       bool
	in, out                     int
	estIn, maxOut               int // the request's token estimate and max_tokens, as logged
	costMUSD                    int64
	old, now                    Outcome
	fields                      []string
}

type targetAcc struct {
	primary, failed, answered int
	latencySum                int64
	latencyN                  int
}

// ComputeImpact re-decides every event of log with rev and reports what would change.
func ComputeImpact(ctx context.Context, rev *Revision, log io.Reader) (*Impact, error) {
	im := &Impact{Revision: rev.ID, Fields: map[string]int{}, Groups: map[string][]Group{}}
	plans := map[string]ast.Value{}
	targets := map[string]*targetAcc{}
	acc := func(id string) *targetAcc {
		a := targets[id]
		if a == nil {
			a = &targetAcc{}
			targets[id] = a
		}
		return a
	}
	groups := map[string]map[string]*Group{}
	moves := map[[3]string]int{}
	r := bufio.NewReaderSize(log, 1<<20)
	for lineNo := 1; ; lineNo++ {
		line, err := readLine(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("decision log line %d: %w", lineNo, err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		ev, err := ast.ValueFromReader(bytes.NewReader(line))
		if err != nil {
			return nil, fmt.Errorf("decision log line %d: %w", lineNo, err)
		}
		obj, ok := ev.(ast.Object)
		if !ok {
			return nil, fmt.Errorf("decision log line %d: not a JSON object", lineNo)
		}
		if isCanaryEvent(obj) {
			continue
		}
		input, _ := field(obj, "input").(ast.Object)
		result := field(obj, "result")
		if input == nil || result == nil || result.Compare(ast.Null{}) == 0 {
			im.Skipped++
			continue
		}
		e := readEvent(obj, input)
		e.old = outcomeOf(result, nil)
		var now ast.Value
		in, err := replayInput(ctx, rev, input, plans)
		if err == nil {
			now, err = rev.Evaluate(ctx, in)
		}
		e.now = outcomeOf(now, err)
		if err == nil {
			e.fields = ChangedFields(result, now)
		} else {
			e.fields = []string{"error"}
		}
		im.Replayed++

		// What the log says about the targets.
		if e.old.Allow && len(e.old.Targets) > 0 {
			a := acc(e.old.Targets[0])
			a.primary++
			if e.route != e.old.Targets[0] || e.status >= 500 {
				a.failed++
			}
		}
		if e.route != "" && e.route != "none" {
			a := acc(e.route)
			a.answered++
			if e.status < 400 {
				a.latencySum += e.latencyMS
				a.latencyN++
			}
		}

		// Spend: as logged, and re-priced with the candidate's catalog.
		before, after := int64(0), int64(0)
		if e.usage {
			before = e.costMUSD
			if e.now.Allow && len(e.now.Targets) > 0 {
				target := e.now.Targets[0]
				if len(e.old.Targets) > 0 && target == e.old.Targets[0] && e.route != "none" && e.route != "" {
					target = e.route // the same route: the target that answered is the one to re-price
				}
				after = tokens.Cost(rev.Data.Price(target), e.in, 0, e.out)
			}
		} else if e.now.Allow && !e.old.Allow {
			if e.estIn > 0 && len(e.now.Targets) > 0 {
				after = tokens.EstimateCost(rev.Data.Price(e.now.Targets[0]), e.estIn, e.maxOut)
				im.Estimated++
				im.SpendEstimatedMUSD += after
			} else {
				im.Unpriced++
			}
		}
		im.SpendBeforeMUSD += before
		im.SpendAfterMUSD += after

		changed := len(e.fields) > 0
		newlyDenied := e.old.Allow && !e.now.Allow
		newlyAllowed := !e.old.Allow && e.now.Allow
		if changed {
			im.Changed++
			for _, f := range e.fields {
				im.Fields[f]++
			}
			im.Changes = append(im.Changes, Change{DecisionID: e.id, Alias: e.alias, Old: e.old, New: e.now, Fields: e.fields})
		}
		switch {
		case newlyDenied:
			im.NewlyDenied++
		case newlyAllowed:
			im.NewlyAllowed++
		case e.old.Allow && e.now.Allow && len(e.old.Targets) > 0 && len(e.now.Targets) > 0 && e.old.Targets[0] != e.now.Targets[0]:
			im.Rerouted++
			moves[[3]string{e.alias, e.old.Targets[0], e.now.Targets[0]}]++
		}
		denyCode := ""
		if !e.now.Allow {
			denyCode = e.now.DenyCode
			if e.now.Err != "" {
				denyCode = "error"
			}
		}
		for dim, name := range map[string]string{"team": e.team, "key": e.key, "alias": e.alias, "route": e.route, "deny_code": denyCode} {
			if dim == "deny_code" && name == "" {
				continue
			}
			if groups[dim] == nil {
				groups[dim] = map[string]*Group{}
			}
			g := groups[dim][name]
			if g == nil {
				g = &Group{Name: name}
				groups[dim][name] = g
			}
			g.Requests++
			g.SpendBeforeMUSD += before
			g.SpendAfterMUSD += after
			if changed {
				g.Changed++
			}
			if newlyDenied {
				g.NewlyDenied++
			}
			if newlyAllowed {
				g.NewlyAllowed++
			}
		}
	}
	for dim, gs := range groups {
		list := make([]Group, 0, len(gs))
		for _, g := range gs {
			list = append(list, *g)
		}
		sort.Slice(list, func(i, j int) bool {
			if list[i].Requests != list[j].Requests {
				return list[i].Requests > list[j].Requests
			}
			return list[i].Name < list[j].Name
		})
		im.Groups[dim] = list
	}
	stats := func(id string) TargetStats {
		a := targets[id]
		if a == nil {
			return TargetStats{}
		}
		s := TargetStats{Primary: a.primary, Answered: a.answered}
		if a.primary > 0 {
			s.ErrorRateBP = a.failed * 10000 / a.primary
		}
		if a.latencyN > 0 {
			s.LatencyMS = a.latencySum / int64(a.latencyN)
		}
		return s
	}
	for k, n := range moves {
		im.Moves = append(im.Moves, Move{Alias: k[0], From: k[1], To: k[2], Requests: n, FromLog: stats(k[1]), ToLog: stats(k[2])})
	}
	sort.Slice(im.Moves, func(i, j int) bool {
		a, b := im.Moves[i], im.Moves[j]
		if a.Requests != b.Requests {
			return a.Requests > b.Requests
		}
		return a.Alias+a.From+a.To < b.Alias+b.From+b.To
	})
	if im.Changes == nil {
		im.Changes = []Change{}
	}
	if im.Moves == nil {
		im.Moves = []Move{}
	}
	return im, nil
}

// SpendIncreasePct is the candidate's spend change over the logged spend, in percent; 0
// when nothing was spent.
func (im *Impact) SpendIncreasePct() float64 {
	if im.SpendBeforeMUSD == 0 {
		if im.SpendAfterMUSD > 0 {
			return 100
		}
		return 0
	}
	return 100 * float64(im.SpendAfterMUSD-im.SpendBeforeMUSD) / float64(im.SpendBeforeMUSD)
}

// RouteChanges counts the requests for alias whose route the candidate changes: another
// primary target, or allowed one way and denied the other.
func (im *Impact) RouteChanges(alias string) int {
	n := 0
	for _, c := range im.Changes {
		if c.Alias == alias && c.RouteChanged() {
			n++
		}
	}
	return n
}

func readEvent(obj, input ast.Object) logEvent {
	var e logEvent
	e.id = str(field(obj, "decision_id"))
	if c, ok := field(input, "caller").(ast.Object); ok {
		e.team, e.key = str(field(c, "team")), str(field(c, "key_id"))
	}
	if rq, ok := field(input, "request").(ast.Object); ok {
		e.alias = str(field(rq, "model"))
		e.estIn, e.maxOut = num(field(rq, "est_input_tokens")), num(field(rq, "max_tokens"))
	}
	if c, ok := field(obj, "custom").(ast.Object); ok {
		e.route = str(field(c, "route"))
		e.status = num(field(c, "status"))
		e.latencyMS = int64(num(field(c, "latency_ms")))
		if u, ok := field(c, "usage").(ast.Object); ok {
			e.usage = true
			e.in, e.out = num(field(u, "input_tokens")), num(field(u, "output_tokens"))
			e.costMUSD = int64(num(field(c, "cost_musd")))
		}
	}
	return e
}

func str(v ast.Value) string {
	s, _ := v.(ast.String)
	return string(s)
}

func num(v ast.Value) int {
	n, ok := v.(ast.Number)
	if !ok {
		return 0
	}
	i, _ := n.Int()
	return i
}

// ChangedFields lists the decision fields whose values differ between two results of
// data.gavel.decision, sorted, reasons aside (they explain, they do not act): "decision"
// when either is not an object. It is the one comparison of decisions: replays, impact
// reports and the live canary (engine/canary) all use it.
func ChangedFields(old, now ast.Value) []string {
	o, _ := old.(ast.Object)
	n, _ := now.(ast.Object)
	if o == nil || n == nil {
		if old.Compare(now) != 0 {
			return []string{"decision"}
		}
		return nil
	}
	keys := map[string]bool{}
	for _, k := range o.Keys() {
		keys[keyOf(k)] = true
	}
	for _, k := range n.Keys() {
		keys[keyOf(k)] = true
	}
	var out []string
	for k := range keys {
		if k == "reasons" {
			continue
		}
		a, b := field(o, k), field(n, k)
		if (a == nil) != (b == nil) || (a != nil && a.Compare(b) != 0) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// Summary is a one-line account of an impact.
func (im *Impact) Summary() string {
	s := fmt.Sprintf("replayed %d decisions against revision %s: %d would change (%d newly denied, %d newly allowed, %d rerouted), %d skipped; spend %s -> %s (%+.1f%%)",
		im.Replayed, im.Revision, im.Changed, im.NewlyDenied, im.NewlyAllowed, im.Rerouted, im.Skipped,
		usd(im.SpendBeforeMUSD), usd(im.SpendAfterMUSD), im.SpendIncreasePct())
	if im.Estimated > 0 {
		s += fmt.Sprintf(", of which %s estimated for %d newly allowed requests", usd(im.SpendEstimatedMUSD), im.Estimated)
	}
	if im.Unpriced > 0 {
		s += fmt.Sprintf("; %d newly allowed requests not priced (no usage or estimate logged)", im.Unpriced)
	}
	return s
}

func usd(musd int64) string {
	s := fmt.Sprintf("%d.%06d", musd/1_000_000, abs(musd%1_000_000))
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if musd < 0 && !strings.HasPrefix(s, "-") {
		s = "-" + s
	}
	return "$" + s
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// USD formats micro-USD as dollars without trailing zeros ($0.0042).
func USD(musd int64) string { return usd(musd) }
