// Package traffic keeps a bounded, in-memory summary of recent requests for the admin API
// and the console: requests, errors, latency percentiles and cost over time, per team and
// per key. It is fed from the decision log's goroutine (decisionlog.Config.Observe), never
// from the request path, and answers from fixed-size time buckets: its memory does not
// grow with traffic, and a summary costs the same at 10 or 10,000 requests a second.
package traffic

import (
	"sort"
	"sync"
	"time"

	"github.com/gavel-gw/gavel/engine/decisionlog"
)

// Defaults: one bucket per Step, History buckets (an hour).
const (
	DefaultStep    = 10 * time.Second
	DefaultHistory = 360
	// MaxGroups bounds the teams and keys counted per bucket; more are counted under
	// Other, so a flood of distinct keys cannot grow memory.
	MaxGroups = 100
	// Other names the group of teams or keys past MaxGroups in a bucket.
	Other = "(other)"
)

// latencyBounds are the upper bounds (ms) of the latency histogram's bins; percentiles
// are reported as the upper bound of the bin they fall in, within about 30%.
var latencyBounds = []int64{1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750,
	1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000, 20000, 30000, 60000, 120000, 300000, 600000}

type counts struct {
	Requests int   `json:"requests"`
	Errors   int   `json:"errors"`
	Denied   int   `json:"denied"`
	CostMUSD int64 `json:"cost_musd"`
}

func (c *counts) add(e *decisionlog.Entry) {
	c.Requests++
	if e.Status >= 400 {
		c.Errors++
	}
	if e.Denied {
		c.Denied++
	}
	c.CostMUSD += e.CostMUSD
}

type bucket struct {
	epoch int64 // bucket number since the Unix epoch; a stale bucket is reset on use
	counts
	lat   []uint32 // histogram over latencyBounds (+1 overflow bin)
	teams map[string]*counts
	keys  map[string]*counts
}

// Aggregator is safe for concurrent use: one writer (the decision log's goroutine) and
// admin readers share a mutex the request path never takes.
type Aggregator struct {
	step time.Duration
	mu   sync.Mutex
	b    []bucket
	now  func() time.Time
}

// New returns an aggregator over history buckets of step each (defaults when <= 0).
func New(step time.Duration, history int) *Aggregator {
	if step <= 0 {
		step = DefaultStep
	}
	if history <= 0 {
		history = DefaultHistory
	}
	a := &Aggregator{step: step, b: make([]bucket, history), now: time.Now}
	for i := range a.b {
		a.b[i].epoch = -1
		a.b[i].lat = make([]uint32, len(latencyBounds)+1)
	}
	return a
}

// Window is the longest span a summary can cover.
func (a *Aggregator) Window() time.Duration { return a.step * time.Duration(len(a.b)) }

// Add counts one finished request.
func (a *Aggregator) Add(e decisionlog.Entry) {
	t := e.Time.Add(time.Duration(e.LatencyMS) * time.Millisecond) // when it finished
	epoch := t.UnixNano() / int64(a.step)
	a.mu.Lock()
	defer a.mu.Unlock()
	if cur := a.now().UnixNano() / int64(a.step); epoch > cur || epoch <= cur-int64(len(a.b)) {
		epoch = cur // a clock step: count it now rather than lose it
	}
	b := &a.b[int(epoch%int64(len(a.b)))]
	if b.epoch != epoch {
		b.epoch, b.counts = epoch, counts{}
		clear(b.lat)
		b.teams, b.keys = nil, nil
	}
	b.add(&e)
	b.lat[latencyBin(e.LatencyMS)]++
	b.teams = addGroup(b.teams, e.Team, &e)
	b.keys = addGroup(b.keys, e.KeyID, &e)
}

func addGroup(m map[string]*counts, name string, e *decisionlog.Entry) map[string]*counts {
	if m == nil {
		m = map[string]*counts{}
	}
	c, ok := m[name]
	if !ok {
		if len(m) >= MaxGroups {
			name = Other
			if c = m[name]; c == nil {
				c = &counts{}
				m[name] = c
			}
		} else {
			c = &counts{}
			m[name] = c
		}
	}
	c.add(e)
	return m
}

func latencyBin(ms int64) int {
	return sort.Search(len(latencyBounds), func(i int) bool { return latencyBounds[i] >= ms })
}

// Group is one team's or key's counts over a summary's window.
type Group struct {
	Name string `json:"name"`
	counts
}

// Point is one bucket of a summary's series.
type Point struct {
	Time time.Time `json:"t"` // the bucket's start
	counts
	P95MS int64            `json:"p95_ms"`
	Teams map[string]int64 `json:"cost_by_team_musd,omitempty"` // cost per team in this bucket
}

// Summary is the traffic over a window ending now.
type Summary struct {
	WindowS int64 `json:"window_s"`
	StepS   int64 `json:"step_s"`
	counts
	ErrorRateBP int     `json:"error_rate_bp"` // errors per 10,000 requests
	P50MS       int64   `json:"p50_ms"`
	P95MS       int64   `json:"p95_ms"`
	Teams       []Group `json:"teams"` // by cost, then requests
	Keys        []Group `json:"keys"`
	Series      []Point `json:"series"` // oldest first, one per step, empty buckets included
}

// Summary sums the buckets of the last window (capped at Window).
func (a *Aggregator) Summary(window time.Duration) Summary {
	n := int(min(max(window, a.step), a.Window()) / a.step)
	s := Summary{WindowS: int64(a.step*time.Duration(n)) / int64(time.Second), StepS: int64(a.step / time.Second),
		Series: make([]Point, 0, n), Teams: []Group{}, Keys: []Group{}}
	lat := make([]uint64, len(latencyBounds)+1)
	teams, keys := map[string]*counts{}, map[string]*counts{}
	a.mu.Lock()
	cur := a.now().UnixNano() / int64(a.step)
	for epoch := cur - int64(n) + 1; epoch <= cur; epoch++ {
		p := Point{Time: time.Unix(0, epoch*int64(a.step)).UTC()}
		b := &a.b[int(epoch%int64(len(a.b)))]
		if b.epoch == epoch {
			p.counts = b.counts
			p.P95MS = percentile32(b.lat, 95)
			s.counts.Requests += b.Requests
			s.counts.Errors += b.Errors
			s.counts.Denied += b.Denied
			s.counts.CostMUSD += b.CostMUSD
			for i, v := range b.lat {
				lat[i] += uint64(v)
			}
			merge(teams, b.teams)
			merge(keys, b.keys)
			for name, c := range b.teams {
				if c.CostMUSD > 0 {
					if p.Teams == nil {
						p.Teams = map[string]int64{}
					}
					p.Teams[name] = c.CostMUSD
				}
			}
		}
		s.Series = append(s.Series, p)
	}
	a.mu.Unlock()
	if s.Requests > 0 {
		s.ErrorRateBP = s.Errors * 10000 / s.Requests
	}
	s.P50MS, s.P95MS = percentile(lat, 50), percentile(lat, 95)
	s.Teams, s.Keys = groups(teams), groups(keys)
	return s
}

func merge(dst, src map[string]*counts) {
	for name, c := range src {
		d := dst[name]
		if d == nil {
			d = &counts{}
			dst[name] = d
		}
		d.Requests += c.Requests
		d.Errors += c.Errors
		d.Denied += c.Denied
		d.CostMUSD += c.CostMUSD
	}
}

func groups(m map[string]*counts) []Group {
	out := make([]Group, 0, len(m))
	for name, c := range m {
		out = append(out, Group{Name: name, counts: *c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].CostMUSD != out[j].CostMUSD {
			return out[i].CostMUSD > out[j].CostMUSD
		}
		if out[i].Requests != out[j].Requests {
			return out[i].Requests > out[j].Requests
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func percentile32(h []uint32, p int) int64 {
	w := make([]uint64, len(h))
	for i, v := range h {
		w[i] = uint64(v)
	}
	return percentile(w, p)
}

// percentile is the upper bound of the histogram bin holding the p-th percentile; the
// overflow bin reports the last bound.
func percentile(h []uint64, p int) int64 {
	var total uint64
	for _, v := range h {
		total += v
	}
	if total == 0 {
		return 0
	}
	rank := (total*uint64(p) + 99) / 100
	var seen uint64
	for i, v := range h {
		seen += v
		if seen >= rank {
			return latencyBounds[min(i, len(latencyBounds)-1)]
		}
	}
	return latencyBounds[len(latencyBounds)-1]
}
