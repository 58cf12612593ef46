package decisionlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The ring lists newest first across its wrap, pages by cursor, filters on the index it
// keeps (not the JSON), and leaves masked fields out of the index.
func TestListFiltersAndPages(t *testing.T) {
	var observed []Entry
	l := New(Config{Keep: 5, Mask: []string{"/input/caller/team"}, Observe: func(e Entry) { observed = append(observed, e) }})
	base := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for i := range 12 { // 12 into a ring of 5: wrapped twice
		team, model, allow := "search", "smart", "true"
		if i%2 == 1 {
			team, model = "ads", "fast"
		}
		if i == 10 {
			allow = `false, "deny": {"code": "pii_blocked", "status": 400}`
		}
		in := ast.MustParseTerm(fmt.Sprintf(`{"caller": {"key_id": "k%d", "team": %q}, "request": {"model": %q, "endpoint": "chat"}}`, i%3, team, model)).Value
		res := ast.MustParseTerm(`{"allow": ` + allow + `, "ab": {"experiment": "e", "arm": "b"}}`).Value
		status := 200
		if i == 10 {
			status = 400
		}
		l.Log(Record{ID: fmt.Sprint("d", i), Time: base.Add(time.Duration(i) * time.Minute), Input: in, Result: res, Route: "a/m", Status: status, LatencyMS: int64(i)})
	}
	l.Close(context.Background())
	if len(observed) != 12 || observed[10].Code != "pii_blocked" || !observed[10].Denied || observed[3].Arm != "b" || observed[3].Model != "fast" {
		t.Fatalf("observed entries: %+v", observed)
	}
	if observed[0].Team != "" {
		t.Errorf("a masked field is in the index: %+v", observed[0])
	}
	list := func(f Filter) ([]string, string) {
		t.Helper()
		events, next, err := l.List(f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range events {
			var ev struct {
				ID string `json:"decision_id"`
			}
			if err := json.Unmarshal(e, &ev); err != nil {
				t.Fatal(err)
			}
			out = append(out, ev.ID)
		}
		return out, next
	}
	denied := func(_ int, d bool) bool { return d }
	for _, c := range []struct {
		name string
		f    Filter
		want string
		next string
	}{
		{"all", Filter{}, "d11,d10,d9,d8,d7", ""},
		{"limit", Filter{Limit: 2}, "d11,d10", "d10"},
		{"page 2", Filter{Limit: 2, Before: "d10"}, "d9,d8", "d8"},
		{"last page", Filter{Limit: 2, Before: "d8"}, "d7", ""},
		{"model", Filter{Model: "fast"}, "d11,d9,d7", ""},
		{"key", Filter{Key: "k1"}, "d10,d7", ""},
		{"masked team matches nothing", Filter{Team: "search"}, "", ""},
		{"code", Filter{Code: "pii_blocked"}, "d10", ""},
		{"denied", Filter{Status: denied}, "d10", ""},
		{"since", Filter{Since: base.Add(9 * time.Minute)}, "d11,d10,d9", ""},
		{"until", Filter{Until: base.Add(9 * time.Minute)}, "d8,d7", ""},
		{"exact last page", Filter{Model: "fast", Limit: 3}, "d11,d9,d7", ""},
	} {
		got, next := list(c.f)
		if strings.Join(got, ",") != c.want || next != c.next {
			t.Errorf("%s: got %v next %q, want %s next %q", c.name, got, next, c.want, c.next)
		}
	}
	var cur *ErrUnknownCursor
	if _, _, err := l.List(Filter{Before: "d1"}); !errors.As(err, &cur) {
		t.Errorf("an evicted cursor: %v", err)
	}
	if r := l.Recent(3); len(r) != 3 || !strings.Contains(string(r[0]), `"d9"`) || !strings.Contains(string(r[2]), `"d11"`) {
		t.Errorf("recent: %q", r)
	}
	n := 0
	l.Entries(func(e *Entry) bool { n++; return e.ID != "d9" })
	if n != 3 {
		t.Errorf("entries stopped after %d", n)
	}
}

// A ring that is not full lists only what it holds.
func TestListPartialRing(t *testing.T) {
	l := New(Config{Keep: 10})
	for i := range 3 {
		l.Log(Record{ID: fmt.Sprint("p", i), Route: "a/m", Status: 200})
	}
	l.Close(context.Background())
	events, next, err := l.List(Filter{})
	if err != nil || len(events) != 3 || next != "" {
		t.Fatalf("%d events, next %q, %v", len(events), next, err)
	}
	if r := l.Recent(50); len(r) != 3 {
		t.Errorf("recent: %d", len(r))
	}
}
