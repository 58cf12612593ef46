package traffic

import (
	"fmt"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/decisionlog"
)

// Requests land in the bucket of the time they finished; a summary sums its window's
// buckets, reports percentiles to the histogram bin, groups teams and keys (past
// MaxGroups as Other), and forgets buckets older than the history.
func TestSummary(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 5, 0, time.UTC)
	a := New(10*time.Second, 6) // one minute
	a.now = func() time.Time { return now }
	add := func(ago time.Duration, team, key string, status int, latency, cost int64, denied bool) {
		a.Add(decisionlog.Entry{Time: now.Add(-ago - time.Duration(latency)*time.Millisecond), Team: team, KeyID: key,
			Status: status, LatencyMS: latency, CostMUSD: cost, Denied: denied})
	}
	for range 90 {
		add(time.Second, "search", "k1", 200, 40, 10, false)
	}
	for range 10 {
		add(25*time.Second, "ads", "k2", 429, 900, 0, false)
	}
	add(2*time.Second, "ads", "k2", 403, 3, 0, true)
	add(10*time.Minute, "old", "k9", 200, 5, 1000, false) // outside the history: counted now
	for _, c := range []struct {
		window                   time.Duration
		requests, errors, denied int
		cost, p50, p95           int64
		series                   int
	}{
		{time.Minute, 102, 11, 1, 1900, 50, 1000, 6},
		{10 * time.Second, 92, 1, 1, 1900, 50, 50, 1},
		{time.Hour, 102, 11, 1, 1900, 50, 1000, 6}, // capped at the history
	} {
		s := a.Summary(c.window)
		if s.Requests != c.requests || s.Errors != c.errors || s.Denied != c.denied || s.CostMUSD != c.cost ||
			s.P50MS != c.p50 || s.P95MS != c.p95 || len(s.Series) != c.series {
			t.Errorf("%v: %+v", c.window, s)
		}
	}
	s := a.Summary(time.Minute)
	if len(s.Teams) != 3 || s.Teams[0].Name != "old" || s.Teams[1].Name != "search" || s.Teams[1].CostMUSD != 900 || s.Teams[1].Requests != 90 { // by cost
		t.Errorf("teams: %+v", s.Teams)
	}
	if last := s.Series[len(s.Series)-1]; last.Teams["search"] != 900 || last.Requests != 92 {
		t.Errorf("last bucket: %+v", last)
	}
	if s.ErrorRateBP != 11*10000/102 {
		t.Errorf("error rate %d", s.ErrorRateBP)
	}
}

func TestGroupsAreBounded(t *testing.T) {
	a := New(0, 0)
	for i := range MaxGroups + 50 {
		a.Add(decisionlog.Entry{Time: time.Now(), KeyID: fmt.Sprint("k", i), Team: "t", Status: 200})
	}
	s := a.Summary(time.Minute)
	var other int
	for _, g := range s.Keys {
		if g.Name == Other {
			other = g.Requests
		}
	}
	if len(s.Keys) != MaxGroups+1 || other != 50 {
		t.Errorf("%d key groups, other %d", len(s.Keys), other)
	}
}
