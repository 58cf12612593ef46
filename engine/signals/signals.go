package signals

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Circuit is a breaker state as the policy sees it.
type Circuit string

// Circuit states. Open is reported only while the breaker would reject a request; once its
// delay has elapsed it is reported half_open, so policies route a probe to it.
const (
	Closed   Circuit = "closed"
	Open     Circuit = "open"
	HalfOpen Circuit = "half_open"
)

// DefaultWindow is the sliding window statistics cover.
const DefaultWindow = time.Minute

const (
	buckets = 12  // the window is split into this many buckets
	samples = 256 // latency samples kept per target for percentiles
)

// Tracker holds the statistics of every configured provider. Safe for concurrent use.
type Tracker struct {
	window  time.Duration
	mu      sync.RWMutex
	provs   map[string]*provider
	changed chan struct{}
	now     func() time.Time
	gen     atomic.Uint64 // registrations, health flips, kicks; see Version
}

type provider struct {
	name    string
	healthy atomic.Bool
	mu      sync.RWMutex
	targets map[string]*Target
}

// Target holds one provider+model's statistics.
type Target struct {
	t        *Tracker
	Provider string
	Model    string
	inFlight atomic.Int64
	circuit  atomic.Pointer[func() Circuit]
	// gen counts Begin and End calls and last is when End last ran (Unix ns): Version
	// reads them. They sit beside inFlight, which the same calls already write.
	gen  atomic.Uint64
	last atomic.Int64

	mu      sync.Mutex
	slots   [buckets]slot
	lat     [samples]uint32 // milliseconds
	latAt   [samples]int64  // when each latency sample was taken (Unix ms), so old ones age out
	latN    int
	ttft    [samples]uint32
	ttftAt  [samples]int64
	ttftN   int
	lastErr time.Time
}

type slot struct {
	epoch    int64 // bucket number since the Unix epoch; stale slots are reset on use
	requests uint32
	errors   uint32
}

// New returns a tracker over the given window (DefaultWindow when 0).
func New(window time.Duration) *Tracker {
	if window <= 0 {
		window = DefaultWindow
	}
	return &Tracker{window: window, provs: map[string]*provider{}, changed: make(chan struct{}, 1), now: time.Now}
}

// Register adds a configured provider; it appears in the snapshot, healthy, from now on.
func (t *Tracker) Register(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.provs[name]; !ok {
		p := &provider{name: name, targets: map[string]*Target{}}
		p.healthy.Store(true)
		t.provs[name] = p
	}
	t.gen.Add(1)
	t.kick()
}

// SetHealthy records an active health probe's verdict for a provider.
func (t *Tracker) SetHealthy(name string, ok bool) {
	t.mu.RLock()
	p := t.provs[name]
	t.mu.RUnlock()
	if p != nil && p.healthy.Swap(ok) != ok {
		t.gen.Add(1)
		t.kick()
	}
}

// Target returns the statistics of provider+model, creating them on first use.
func (t *Tracker) Target(providerName, model string) *Target {
	t.mu.RLock()
	p := t.provs[providerName]
	t.mu.RUnlock()
	if p == nil {
		t.Register(providerName)
		t.mu.RLock()
		p = t.provs[providerName]
		t.mu.RUnlock()
	}
	p.mu.RLock()
	tg := p.targets[model]
	p.mu.RUnlock()
	if tg != nil {
		return tg
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if tg = p.targets[model]; tg == nil {
		tg = &Target{t: t, Provider: providerName, Model: model}
		p.targets[model] = tg
	}
	return tg
}

// Changed is signalled (coalesced) whenever something the policy reads changed abruptly:
// a breaker moved, a provider's health flipped, a provider was registered.
func (t *Tracker) Changed() <-chan struct{} { return t.changed }

func (t *Tracker) kick() {
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// Kick signals Changed; breakers call it on every state change.
func (t *Tracker) Kick() {
	t.gen.Add(1)
	t.kick()
}

// Version is a number that changes whenever Snapshot may have changed: an attempt began
// or ended, a provider was registered or its health flipped, a breaker moved (Kick), and,
// while recorded samples are still ageing out of the window, at every bucket boundary.
// Once the window has passed since the last attempt it stays put, so a reader that
// rebuilds on change (the policy planner) does nothing while gavel is idle. A breaker
// whose delay elapses turns half-open without an event; readers that care re-read while
// a breaker is not closed.
func (t *Tracker) Version() uint64 {
	v, last := t.activity()
	if last > 0 {
		width := int64(t.window / buckets)
		// Every sample recorded by last is out of the window one bucket after last+window.
		aged := last + int64(t.window) + width
		v += uint64(min(t.now().UnixNano(), aged) / width)
	}
	return v
}

// Activity is Version without the window's ageing: it moves when an attempt begins or
// ends, a provider is registered or its health flips, or a breaker moves, but not as
// samples age out. A reader tells traffic from mere ageing by it (the planner refreshes
// the latter less often).
func (t *Tracker) Activity() uint64 {
	v, _ := t.activity()
	return v
}

// activity sums the event counters and returns when an attempt last ended (Unix ns).
func (t *Tracker) activity() (v uint64, last int64) {
	v = t.gen.Load()
	t.mu.RLock()
	for _, p := range t.provs {
		p.mu.RLock()
		for _, tg := range p.targets {
			v += tg.gen.Load()
			last = max(last, tg.last.Load())
		}
		p.mu.RUnlock()
	}
	t.mu.RUnlock()
	return v, last
}

// SetCircuit installs the function reading this target's breaker state.
func (tg *Target) SetCircuit(fn func() Circuit) { tg.circuit.Store(&fn) }

// Circuit returns the breaker state, closed when no breaker is installed.
func (tg *Target) Circuit() Circuit {
	if fn := tg.circuit.Load(); fn != nil {
		return (*fn)()
	}
	return Closed
}

// Begin marks a request in flight; call End with its outcome.
func (tg *Target) Begin() {
	tg.inFlight.Add(1)
	tg.gen.Add(1)
}

// Abandon ends an attempt that says nothing about the target (the client went away, a
// hedge won elsewhere): it leaves the in-flight count and nothing else, so neither the
// error rate nor the latencies move.
func (tg *Target) Abandon() { tg.inFlight.Add(-1) }

// End records one attempt: its latency, time to first token (0 when not streamed) and
// whether it failed.
func (tg *Target) End(latency, ttft time.Duration, failed bool) {
	tg.inFlight.Add(-1)
	now := tg.t.now()
	tg.last.Store(now.UnixNano())
	tg.gen.Add(1)
	epoch := now.UnixNano() / int64(tg.t.window/buckets)
	tg.mu.Lock()
	s := &tg.slots[epoch%buckets]
	if s.epoch != epoch {
		*s = slot{epoch: epoch}
	}
	s.requests++
	if failed {
		s.errors++
		tg.lastErr = now
	} else {
		ms := now.UnixMilli()
		tg.lat[tg.latN%samples], tg.latAt[tg.latN%samples] = clampMS(latency), ms
		tg.latN++
		if ttft > 0 {
			tg.ttft[tg.ttftN%samples], tg.ttftAt[tg.ttftN%samples] = clampMS(ttft), ms
			tg.ttftN++
		}
	}
	tg.mu.Unlock()
}

func clampMS(d time.Duration) uint32 {
	ms := d.Milliseconds()
	if ms < 0 {
		return 0
	}
	if ms > 1<<31 {
		return 1 << 31
	}
	return uint32(ms)
}

// Stats is a target's window in integer units (the policy never does float arithmetic).
type Stats struct {
	Requests    int
	Errors      int
	ErrorRateBP int // errors per 10,000 requests
	P50MS       int
	P95MS       int
	TTFTP95MS   int
	InFlight    int
	Circuit     Circuit
}

// Stats computes the target's current window.
func (tg *Target) Stats() Stats {
	now := tg.t.now()
	minEpoch := now.UnixNano()/int64(tg.t.window/buckets) - buckets + 1
	var s Stats
	var lat, ttft []uint32
	tg.mu.Lock()
	for i := range tg.slots {
		if tg.slots[i].epoch >= minEpoch {
			s.Requests += int(tg.slots[i].requests)
			s.Errors += int(tg.slots[i].errors)
		}
	}
	// Latency percentiles cover the same window as the counts: a slow spell must not mark
	// a target slow forever after its traffic stopped.
	oldest := now.Add(-tg.t.window).UnixMilli()
	for i := 0; i < min(tg.latN, samples); i++ {
		if tg.latAt[i] >= oldest {
			lat = append(lat, tg.lat[i])
		}
	}
	for i := 0; i < min(tg.ttftN, samples); i++ {
		if tg.ttftAt[i] >= oldest {
			ttft = append(ttft, tg.ttft[i])
		}
	}
	tg.mu.Unlock()
	if s.Requests > 0 {
		s.ErrorRateBP = s.Errors * 10000 / s.Requests
	}
	s.P50MS = percentile(lat, 50)
	s.P95MS = percentile(lat, 95)
	s.TTFTP95MS = percentile(ttft, 95)
	s.InFlight = int(tg.inFlight.Load())
	s.Circuit = tg.Circuit()
	return s
}

func percentile(v []uint32, p int) int {
	if len(v) == 0 {
		return 0
	}
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	idx := (len(v)*p + 99) / 100
	if idx > 0 {
		idx--
	}
	return int(v[idx])
}

// ProviderStats aggregates a provider's targets for input.providers.<name>.
type ProviderStats struct {
	Name    string
	Healthy bool
	Stats   Stats // summed counts; latencies are the worst target's; circuit is open only if all are
	Models  map[string]Stats
}

// Snapshot returns every provider's statistics.
func (t *Tracker) Snapshot() []ProviderStats {
	t.mu.RLock()
	provs := make([]*provider, 0, len(t.provs))
	for _, p := range t.provs {
		provs = append(provs, p)
	}
	t.mu.RUnlock()
	sort.Slice(provs, func(i, j int) bool { return provs[i].name < provs[j].name })
	out := make([]ProviderStats, 0, len(provs))
	for _, p := range provs {
		ps := ProviderStats{Name: p.name, Healthy: p.healthy.Load(), Models: map[string]Stats{}}
		p.mu.RLock()
		targets := make([]*Target, 0, len(p.targets))
		for _, tg := range p.targets {
			targets = append(targets, tg)
		}
		p.mu.RUnlock()
		open, n := 0, 0
		for _, tg := range targets {
			s := tg.Stats()
			ps.Models[tg.Model] = s
			ps.Stats.Requests += s.Requests
			ps.Stats.Errors += s.Errors
			ps.Stats.InFlight += s.InFlight
			ps.Stats.P50MS = max(ps.Stats.P50MS, s.P50MS)
			ps.Stats.P95MS = max(ps.Stats.P95MS, s.P95MS)
			ps.Stats.TTFTP95MS = max(ps.Stats.TTFTP95MS, s.TTFTP95MS)
			n++
			if s.Circuit == Open {
				open++
			}
		}
		if ps.Stats.Requests > 0 {
			ps.Stats.ErrorRateBP = ps.Stats.Errors * 10000 / ps.Stats.Requests
		}
		ps.Stats.Circuit = Closed
		if n > 0 && open == n {
			ps.Stats.Circuit = Open
		}
		out = append(out, ps)
	}
	return out
}
