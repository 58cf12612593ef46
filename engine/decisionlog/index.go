package decisionlog

import (
	"slices"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Entry is what a search of recent decisions filters on. The logger builds it from the
// record on its goroutine and keeps it beside the event's encoded bytes, so that a search
// over the whole ring never parses JSON. Fields a mask rule erases from events are left
// empty here too: a filter must not reveal what the event hides.
type Entry struct {
	ID       string
	Time     time.Time
	Revision string
	// The caller's key id, user, team and project (input.caller).
	KeyID, User, Team, Project string
	Model                      string // as the client asked (input.request.model)
	Endpoint                   string // input.request.endpoint
	Route                      string // provider/model that answered, or "none"
	Status                     int    // HTTP status the client got
	Code                       string // error code the client got ("" on success); a denial's deny code
	// Denied says the policy refused the request (result.allow was false).
	Denied bool
	// Experiment and Arm are the decision's A/B arm (result.ab), "" when none; Shadows
	// counts the shadow copies it asked for.
	Experiment, Arm string
	Shadows         int
	LatencyMS       int64
	Usage           bool // tokens and cost were counted by the time the request finished
	InputTokens     int
	OutputTokens    int
	CostMUSD        int64
}

type slot struct {
	e    Entry
	line []byte
}

// indexMask says which index fields mask rules erase from events.
type indexMask struct {
	keyID, user, team, project, model, endpoint, allow, deny, ab, shadow bool
}

// maskedFields finds the index fields an event's mask rules erase: a rule naming the
// field or anything above it.
func maskedFields(rules []mask) indexMask {
	covered := func(path ...string) bool {
		for _, r := range rules {
			if len(r.parts) <= len(path) && slices.Equal(r.parts, path[:len(r.parts)]) {
				return true
			}
		}
		return false
	}
	return indexMask{
		keyID: covered("input", "caller", "key_id"), user: covered("input", "caller", "user"),
		team: covered("input", "caller", "team"), project: covered("input", "caller", "project"),
		model: covered("input", "request", "model"), endpoint: covered("input", "request", "endpoint"),
		allow: covered("result", "allow"), deny: covered("result", "deny", "code"),
		ab: covered("result", "ab"), shadow: covered("result", "shadow"),
	}
}

var (
	kCaller, kRequest = ast.StringTerm("caller"), ast.StringTerm("request")
	kKeyID, kUser     = ast.StringTerm("key_id"), ast.StringTerm("user")
	kTeam, kProject   = ast.StringTerm("team"), ast.StringTerm("project")
	kModel, kEndpoint = ast.StringTerm("model"), ast.StringTerm("endpoint")
	kAllow, kDeny     = ast.StringTerm("allow"), ast.StringTerm("deny")
	kCode, kAB        = ast.StringTerm("code"), ast.StringTerm("ab")
	kExperiment       = ast.StringTerm("experiment")
	kArm, kShadow     = ast.StringTerm("arm"), ast.StringTerm("shadow")
)

// index builds r's entry (on the logger's goroutine).
func (l *Logger) index(r *Record) Entry {
	e := Entry{ID: r.ID, Time: r.Time, Revision: r.Revision, Route: r.Route, Status: r.Status, Code: r.Error,
		LatencyMS: r.LatencyMS, Usage: r.Usage, InputTokens: r.InputTokens, OutputTokens: r.OutputTokens, CostMUSD: r.CostMUSD}
	m := l.blank
	in, _ := r.Input.(ast.Object)
	if in != nil {
		if c, ok := get(in, kCaller).(ast.Object); ok {
			e.KeyID, e.User, e.Team, e.Project = str(c, kKeyID, m.keyID), str(c, kUser, m.user), str(c, kTeam, m.team), str(c, kProject, m.project)
		}
	}
	switch {
	case r.Request != nil:
		if !m.model {
			e.Model = r.Request.Model
		}
		if !m.endpoint {
			e.Endpoint = r.Request.Endpoint
		}
	case in != nil:
		if req, ok := get(in, kRequest).(ast.Object); ok {
			e.Model, e.Endpoint = str(req, kModel, m.model), str(req, kEndpoint, m.endpoint)
		}
	}
	if res, ok := r.Result.(ast.Object); ok {
		if a, ok := get(res, kAllow).(ast.Boolean); ok && !bool(a) && !m.allow {
			e.Denied = true
			if d, ok := get(res, kDeny).(ast.Object); ok && e.Code == "" {
				e.Code = str(d, kCode, m.deny)
			}
		}
		if ab, ok := get(res, kAB).(ast.Object); ok && !m.ab {
			e.Experiment, e.Arm = str(ab, kExperiment, false), str(ab, kArm, false)
		}
		if sh, ok := get(res, kShadow).(*ast.Array); ok && !m.shadow {
			e.Shadows = sh.Len()
		}
	}
	return e
}

func get(o ast.Object, k *ast.Term) ast.Value {
	if t := o.Get(k); t != nil {
		return t.Value
	}
	return nil
}

func str(o ast.Object, k *ast.Term, masked bool) string {
	if masked {
		return ""
	}
	s, _ := get(o, k).(ast.String)
	return string(s)
}

// Filter selects recent decisions (GET /v1/gavel/decisions). Empty fields match
// everything.
type Filter struct {
	Key, Team, Model, Route string // exact matches: the caller's key id, team, the model asked for, the route taken
	// Code matches the error code the client got (a denial's deny code).
	Code string
	// Status matches when it returns true; nil matches every status.
	Status func(status int, denied bool) bool
	Since  time.Time // inclusive; zero: no bound
	Until  time.Time // exclusive; zero: no bound
	// Before is a decision id: only decisions kept before it are listed (the next page).
	Before string
	Limit  int // at most this many; <= 0: DefaultListLimit
}

// DefaultListLimit is a page of decisions when a Filter sets no limit.
const DefaultListLimit = 100

func (f *Filter) match(e *Entry) bool {
	return (f.Key == "" || e.KeyID == f.Key) && (f.Team == "" || e.Team == f.Team) &&
		(f.Model == "" || e.Model == f.Model) && (f.Route == "" || e.Route == f.Route) &&
		(f.Code == "" || e.Code == f.Code) && (f.Status == nil || f.Status(e.Status, e.Denied)) &&
		(f.Since.IsZero() || !e.Time.Before(f.Since)) && (f.Until.IsZero() || e.Time.Before(f.Until))
}

// ErrUnknownCursor means a Filter's Before names no decision the ring still holds.
type ErrUnknownCursor struct{ ID string }

func (e *ErrUnknownCursor) Error() string {
	return "decision " + e.ID + " is no longer among the recent decisions kept in memory"
}

// List returns the encoded events of the recent decisions f selects, newest first, and
// the id to pass as Before for the next page ("" when there is none). It scans the
// ring's entries under a read lock and copies nothing but slice headers: the events are
// never modified once kept.
func (l *Logger) List(f Filter) (events [][]byte, next string, err error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := len(l.ring)
	newest := (l.next - 1 + n) % n
	from := 0 // age of the first slot to look at: 0 is the newest event, n-1 the oldest
	if f.Before != "" {
		i, ok := l.byID[f.Before]
		if !ok {
			return nil, "", &ErrUnknownCursor{ID: f.Before}
		}
		from = (newest-i+n)%n + 1
	}
	last := ""
	for age := from; age < n; age++ {
		s := &l.ring[(newest-age+n)%n]
		if s.e.ID == "" {
			break // the ring is not full yet: nothing older
		}
		if !f.match(&s.e) {
			continue
		}
		if len(events) == limit {
			return events, last, nil // another one matches: there is a next page
		}
		events = append(events, s.line)
		last = s.e.ID
	}
	return events, "", nil
}

// Entries calls fn with every kept entry, newest first, until fn returns false. It holds
// the ring's read lock meanwhile: fn must be quick and must not call the logger.
func (l *Logger) Entries(fn func(*Entry) bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := len(l.ring)
	newest := (l.next - 1 + n) % n
	for age := range n {
		s := &l.ring[(newest-age+n)%n]
		if s.e.ID == "" || !fn(&s.e) {
			return
		}
	}
}

// Recent returns the encoded events of the newest n decisions, oldest first (a replay
// reads them in the order they happened).
func (l *Logger) Recent(n int) [][]byte {
	l.mu.RLock()
	defer l.mu.RUnlock()
	size := len(l.ring)
	n = min(n, size)
	out := make([][]byte, 0, n)
	newest := (l.next - 1 + size) % size
	for age := range n {
		s := &l.ring[(newest-age+size)%size]
		if s.e.ID == "" {
			break
		}
		out = append(out, s.line)
	}
	slices.Reverse(out)
	return out
}

// Keep is how many recent events the logger holds.
func (l *Logger) Keep() int { return len(l.ring) }
