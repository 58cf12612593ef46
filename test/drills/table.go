// Package drills runs gavel, the real binary, through the failures it promises to survive
// (a dead primary, a 429 storm, latency spikes, dropped and corrupted upstream
// connections, slow and stalled clients, SIGTERM and kill -9, Redis and bundle-server
// outages, a soak, and a fleet of replicas behind a load balancer) and records one table
// row per drill. The drills are Go tests in this package; see docs/reliability.md for what
// each one promises and `make drill` for the long form that prints the table.
package drills

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Row is one drill's outcome: the load it sent, how the requests ended, and the gateway's
// goroutines, resident memory and recorded spend before and after.
type Row struct {
	Drill                   string
	Requests                int
	OK                      int            // 2xx (streams: 200 and [DONE])
	Errors                  map[string]int // by HTTP status, or "stream_error", "cut", "conn"
	Hung                    int            // requests that outlived the drill's bound
	GorBefore, GorAfter     int
	RSSBefore, RSSAfter     int64 // bytes
	SpendBefore, SpendAfter int64 // µUSD
	Took                    time.Duration
	Status                  string // "ok" or "FAIL"
}

// Table collects rows from concurrent tests.
type Table struct {
	mu   sync.Mutex
	rows []Row
}

// Add appends a row.
func (t *Table) Add(r Row) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows = append(t.rows, r)
}

// Len is how many rows were added.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.rows)
}

// Print writes the rows as a markdown table.
func (t *Table) Print(w io.Writer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintln(w, "| drill | requests | 2xx | errors by status | hung | goroutines before → after | RSS MB before → after | spend µUSD before → after | took | result |")
	fmt.Fprintln(w, "|---|---:|---:|---|---:|---|---|---|---:|---|")
	for _, r := range t.rows {
		fmt.Fprintf(w, "| %s | %d | %d | %s | %d | %s | %s | %s | %s | %s |\n",
			r.Drill, r.Requests, r.OK, errorsCell(r.Errors), r.Hung,
			pair(int64(r.GorBefore), int64(r.GorAfter), 1), pair(r.RSSBefore, r.RSSAfter, 1<<20),
			pair(r.SpendBefore, r.SpendAfter, 1), r.Took.Round(100*time.Millisecond), r.Status)
	}
}

func errorsCell(m map[string]int) string {
	if len(m) == 0 {
		return "–"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// pair renders "before → after" in units of div; a negative value is unknown.
func pair(before, after, div int64) string {
	f := func(v int64) string {
		if v < 0 {
			return "?"
		}
		if div == 1 {
			return fmt.Sprint(v)
		}
		return fmt.Sprintf("%.0f", float64(v)/float64(div))
	}
	return f(before) + " → " + f(after)
}
