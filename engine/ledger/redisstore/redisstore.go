// Package redisstore is the multi-replica ledger.Store: every Reserve, Commit, Release
// and Allow is one Lua script (EVALSHA, falling back to EVAL when Redis lost its script
// cache), so each is atomic across all replicas sharing the Redis.
//
// All keys share one hash tag ("{prefix}") so the multi-key scripts also run on Redis
// Cluster (on one slot: the ledger scales up, not out). Keys carry TTLs: a budget period
// lives until Retention after it ends, a rate window two minutes, a reservation id its
// ttl (plus a minute) while live and TombstoneTTL once settled.
//
// When Redis cannot be reached (connection refused, timeout, LOADING, READONLY...), the
// FailureMode decides: FailClosed (default) returns ledger.ErrStoreUnavailable and the
// server denies; FailOpen serves the call from a local memstore (seeded with the last
// spend seen in Redis for each budget) so traffic keeps flowing, enforced per replica.
// Either way Options.OnUnavailable is called and Stats counts it, and Commits that could
// not reach Redis are queued and replayed when it is back (the reservation tombstone
// makes a replay of a commit that did land a no-op).
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/ledger/memstore"
)

// FailureMode is what happens when Redis is unavailable.
type FailureMode int

const (
	// FailClosed returns ledger.ErrStoreUnavailable (the server denies the request).
	FailClosed FailureMode = iota
	// FailOpen serves from a local in-memory fallback store.
	FailOpen
)

func (m FailureMode) String() string {
	if m == FailOpen {
		return "fail-open"
	}
	return "fail-closed"
}

// Options configure a Store. The zero value is usable.
type Options struct {
	// Now is the clock (default time.Now). It is sent to the scripts, which never read
	// Redis' own clock.
	Now func() time.Time
	// Prefix of every key (default "gavel:ledger"); keys look like "{gavel:ledger}:b:...".
	Prefix string
	// FailureMode when Redis is unavailable (default FailClosed).
	FailureMode FailureMode
	// OnUnavailable, if set, is called (synchronously; keep it cheap, e.g. a counter Inc)
	// for every operation that could not be served by Redis, with the operation name
	// ("reserve", "commit", "release", "snapshot", "spend", "allow", "add_tokens",
	// "rate_state", "replay", and for documents "put_document", "get_document",
	// "delete_document") and the cause.
	OnUnavailable func(op string, err error)
	// RetryInterval: after a failure Redis is not tried again for this long; calls in
	// between fail (or fall back) at once. Also the replay period of queued commits.
	// Default 500ms.
	RetryInterval time.Duration
	// TombstoneTTL: how long a settled reservation id is remembered (default
	// ledger.DefaultTombstoneTTL).
	TombstoneTTL time.Duration
	// Retention: how long a budget period is kept after it ends (default 35 days).
	Retention time.Duration
	// MaxPendingCommits bounds the replay queue (default 100000); beyond it the oldest
	// queued commit is dropped and counted in Stats.DroppedCommits.
	MaxPendingCommits int
}

// Client timeouts: how long one Redis call may wait to connect, to send and for its
// reply before it fails and the FailureMode applies. Short, because while Redis does not
// answer every request that needs the ledger waits this long; but under CPU overload
// (Redis or gavel starved) a reply can take longer than they allow, and that part of a
// burst is refused (fail closed) or served from the fallback (fail open). gavel.yaml's
// ledger.redis.{dial,read,write}_timeout change them.
const (
	DefaultDialTimeout  = 300 * time.Millisecond
	DefaultReadTimeout  = 300 * time.Millisecond
	DefaultWriteTimeout = 300 * time.Millisecond
)

// Timeouts are a ledger Redis client's timeouts; a zero field takes its default.
type Timeouts struct {
	Dial, Read, Write time.Duration
}

// WithDefaults fills the zero fields with DefaultDialTimeout and friends.
func (t Timeouts) WithDefaults() Timeouts {
	if t.Dial <= 0 {
		t.Dial = DefaultDialTimeout
	}
	if t.Read <= 0 {
		t.Read = DefaultReadTimeout
	}
	if t.Write <= 0 {
		t.Write = DefaultWriteTimeout
	}
	return t
}

// Apply sets o's timeouts (zero fields: the defaults) and turns off the client's own
// retries: a Redis that stops answering must trip the failure mode within one timeout,
// not hold every request for several.
func (t Timeouts) Apply(o *redis.Options) {
	t = t.WithDefaults()
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = t.Dial, t.Read, t.Write
	o.MaxRetries = -1
}

// Stats are counters for metrics.
type Stats struct {
	Unavailable    uint64 // operations Redis could not serve
	FallbackOps    uint64 // operations served by the local fallback (FailOpen)
	Replayed       uint64 // queued commits later applied to Redis
	DroppedCommits uint64 // queued commits dropped because the queue was full
	PendingCommits int    // commits waiting for Redis
	// PendingReleases are reservations whose Reserve may have landed with its reply lost,
	// waiting for Redis to be given back.
	PendingReleases int
	Degraded        bool // Redis is currently considered down
}

// pendingCommit is a settle waiting for Redis: a commit of actual, or (release) the
// release of a reservation whose Reserve may have landed with its reply lost.
type pendingCommit struct {
	r       ledger.Reservation
	actual  int64
	release bool
}

// Store is the Redis-backed ledger.Store.
type Store struct {
	c    redis.UniversalClient
	opts Options
	p    string

	unavailable, fallbackOps, replayed, dropped atomic.Uint64
	replaying                                   atomic.Int64 // taken off pending, not yet applied
	releases                                    atomic.Int64 // queued releases, in pending or replaying
	downUntil                                   atomic.Int64 // unix nanos, wall clock
	down                                        atomic.Bool

	mu      sync.Mutex // fb, pending; may be held while taking fb's own lock
	fb      *memstore.Store
	pending []pendingCommit

	// seenMu guards lastSeen. It is taken by fb (seed.Load) under fb's lock, so it must
	// never be held while calling into fb.
	seenMu   sync.Mutex
	lastSeen map[string]int64 // budget key -> spent last read from Redis (seeds fb)

	stop   chan struct{}
	done   chan struct{}
	closed atomic.Bool
}

var _ ledger.Store = (*Store)(nil)

const fallbackPrefix = "fb-"

var errBackoff = errors.New("redis marked down, retry pending")

// New returns a Store on c, which the caller keeps owning (Close does not close it).
// Configure c with short timeouts (Timeouts.Apply): they bound how long a call waits
// before failing closed or open.
func New(c redis.UniversalClient, opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Prefix == "" {
		opts.Prefix = "gavel:ledger"
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = 500 * time.Millisecond
	}
	if opts.TombstoneTTL <= 0 {
		opts.TombstoneTTL = ledger.DefaultTombstoneTTL
	}
	if opts.Retention <= 0 {
		opts.Retention = 35 * 24 * time.Hour
	}
	if opts.MaxPendingCommits <= 0 {
		opts.MaxPendingCommits = 100_000
	}
	s := &Store{
		c: c, opts: opts, p: "{" + opts.Prefix + "}",
		lastSeen: make(map[string]int64),
		stop:     make(chan struct{}), done: make(chan struct{}),
	}
	go s.loop()
	return s
}

// Stats returns the current counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	n := len(s.pending) + int(s.replaying.Load())
	rel := int(s.releases.Load())
	s.mu.Unlock()
	return Stats{
		Unavailable:     s.unavailable.Load(),
		FallbackOps:     s.fallbackOps.Load(),
		Replayed:        s.replayed.Load(),
		DroppedCommits:  s.dropped.Load(),
		PendingCommits:  n - rel,
		PendingReleases: rel,
		Degraded:        s.down.Load(),
	}
}

func (s *Store) bk(key string) string        { return s.p + ":b:" + key }
func (s *Store) bz(key string) string        { return s.p + ":z:" + key }
func (s *Store) idx(scope, id string) string { return s.p + ":i:" + scope + ":" + id }
func (s *Store) res(id string) string        { return s.p + ":r:" + id }
func (s *Store) rl(key string) string        { return s.p + ":l:" + key }

func ms(d time.Duration) int64 { return d.Milliseconds() }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// keyTTL keeps a budget period until Retention after it ends.
func (s *Store) keyTTL(end, now time.Time) int64 {
	return max(ms(end.Sub(now)+s.opts.Retention), 60_000)
}

// isUnavailable tells Redis being unreachable or unable to serve (worth failing over)
// from an error in the request itself.
func isUnavailable(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := strings.TrimPrefix(rerr.Error(), "ERR ")
		for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS", "MISCONF", "OOM", "max number of clients",
			// A password or ACL that does not let gavel in leaves the store as unusable as an
			// outage: the operator fixes it, the caller can only retry later (503, not 500).
			"WRONGPASS", "NOAUTH", "NOPERM"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	return true // network errors, timeouts, pool exhaustion, closed client
}

// try reports whether Redis should be attempted now (not inside a backoff window).
func (s *Store) try() bool {
	return time.Now().UnixNano() >= s.downUntil.Load()
}

// ok records a successful round trip.
func (s *Store) ok() {
	if s.down.CompareAndSwap(true, false) {
		s.mu.Lock()
		// Outage over: drop the fallback unless it still holds live reservations, so
		// the next outage starts from freshly seeded spend. It is not closed: a call
		// that picked it up just before may still be using it (a reservation made on
		// it then is only charged to Redis at Commit, which is what matters).
		if s.fb != nil && s.fb.Live() == 0 {
			s.fb = nil
		}
		s.mu.Unlock()
	}
}

// fail classifies err from op. Unavailability is counted, reported, starts a backoff
// and comes back wrapping ledger.ErrStoreUnavailable; other errors are returned as is.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if !isUnavailable(err) {
		return fmt.Errorf("ledger: redis %s: %w", op, err)
	}
	if err != errBackoff {
		s.downUntil.Store(time.Now().Add(s.opts.RetryInterval).UnixNano())
		s.down.Store(true)
	}
	s.unavailable.Add(1)
	if s.opts.OnUnavailable != nil {
		s.opts.OnUnavailable(op, err)
	}
	return fmt.Errorf("%w: redis %s: %w", ledger.ErrStoreUnavailable, op, err)
}

// run executes one script unless inside a backoff window.
func (s *Store) run(ctx context.Context, op string, sc *redis.Script, keys []string, args ...any) ([]int64, error) {
	if op != "replay" && s.closed.Load() {
		return nil, ledger.ErrClosed
	}
	if !s.try() {
		return nil, s.fail(ctx, op, errBackoff)
	}
	v, err := sc.Run(ctx, s.c, keys, args...).Int64Slice()
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	s.ok()
	return v, nil
}

func (s *Store) failOpen(err error) bool {
	return s.opts.FailureMode == FailOpen && errors.Is(err, ledger.ErrStoreUnavailable)
}

// fallback returns the local store, creating it (seeded from lastSeen) if needed.
func (s *Store) fallback() *memstore.Store {
	s.fallbackOps.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fb == nil {
		s.fb = memstore.New(memstore.Options{Now: s.opts.Now, TombstoneTTL: s.opts.TombstoneTTL,
			Retention: s.opts.Retention, Persister: seed{s}})
	}
	return s.fb
}

// currentFallback returns the local store if one exists, without creating it.
func (s *Store) currentFallback() *memstore.Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fb != nil {
		s.fallbackOps.Add(1)
	}
	return s.fb
}

// seed is the fallback's Persister: it loads the spend last seen in Redis and persists
// nothing (commits made during the outage are replayed to Redis instead).
type seed struct{ s *Store }

func (p seed) Load(keys []string) (map[string]memstore.Record, error) {
	p.s.seenMu.Lock()
	defer p.s.seenMu.Unlock()
	out := make(map[string]memstore.Record, len(keys))
	for _, k := range keys {
		spent, ok := p.s.lastSeen[k]
		if !ok {
			continue
		}
		pk, err := ledger.ParseKey(k)
		if err != nil {
			continue
		}
		out[k] = memstore.Record{Key: k, Scope: pk.Scope, ID: pk.ID, Period: pk.Period, Start: pk.Start, Spent: spent}
	}
	return out, nil
}
func (seed) Apply([]memstore.Delta) error                     { return nil }
func (seed) List(scope, id string) ([]memstore.Record, error) { return nil, nil }

func (s *Store) remember(keys []string, spent []int64) {
	s.seenMu.Lock()
	for i, k := range keys {
		s.lastSeen[k] = spent[i]
	}
	s.seenMu.Unlock()
}

// Reserve implements ledger.Store.
func (s *Store) Reserve(ctx context.Context, budgets []ledger.Budget, amount int64, ttl time.Duration) (ledger.Reservation, error) {
	now := s.opts.Now()
	r, rbs, err := ledger.NewReservation(budgets, amount, ttl, now)
	if err != nil || len(rbs) == 0 {
		return r, err
	}
	keys := make([]string, 0, 1+3*len(rbs))
	args := make([]any, 0, 5+3*len(rbs))
	keys = append(keys, s.res(r.ID))
	args = append(args, now.UnixMilli(), r.ExpiresAt.UnixMilli(), amount, r.ID,
		ms(r.ExpiresAt.Sub(now)+time.Minute))
	for _, rb := range rbs {
		keys = append(keys, s.bk(rb.Key), s.bz(rb.Key), s.idx(rb.Scope, rb.ID))
		args = append(args, rb.LimitMicroUSD, b2i(rb.Hard), s.keyTTL(rb.End, now))
	}
	v, err := s.run(ctx, "reserve", reserveScript, keys, args...)
	if err != nil {
		if maybeRan(err) {
			// The script may have reserved with its reply lost (a timeout, the client gone):
			// give the reservation back once Redis answers, or it would hold the amount
			// until its TTL. A release of a reservation never made is harmless, and a
			// Reserve that runs after it finds the id settled and reserves nothing.
			s.enqueue(pendingCommit{r: r, release: true})
		}
		if s.failOpen(err) {
			fr, ferr := s.fallback().Reserve(ctx, budgets, amount, ttl)
			if ferr == nil {
				fr.ID = fallbackPrefix + fr.ID
			}
			return fr, ferr
		}
		return ledger.Reservation{}, err
	}
	if v[0] == 0 {
		i := int(v[1]) - 1
		rb := rbs[i]
		s.remember([]string{rb.Key}, []int64{v[2]})
		return ledger.Reservation{}, &ledger.ExceededError{Budget: rb.Budget, Key: rb.Key,
			Spent: v[2], Reserved: v[3], Limit: rb.LimitMicroUSD, Amount: amount}
	}
	if len(v) == 2+2*len(rbs) {
		spent := make([]int64, len(rbs))
		for i := range rbs {
			spent[i] = v[2+2*i]
		}
		s.remember(r.Keys, spent)
	}
	return r, nil
}

// maybeRan reports whether a failed call may still have run in Redis: it was sent (not
// refused inside a backoff window) and no answer came back.
func maybeRan(err error) bool {
	if errors.Is(err, errBackoff) || errors.Is(err, ledger.ErrClosed) {
		return false
	}
	return errors.Is(err, ledger.ErrStoreUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// settle runs the settle script: a commit of actual, or (op "release", or a replayed
// release) a release. op also names the operation for OnUnavailable ("commit", "release"
// or "replay").
func (s *Store) settle(ctx context.Context, op string, r ledger.Reservation, actual int64) (settled bool, err error) {
	return s.settleAs(ctx, op, op == "release", r, actual)
}

func (s *Store) settleAs(ctx context.Context, op string, release bool, r ledger.Reservation, actual int64) (settled bool, err error) {
	mode := "commit"
	if release {
		mode = "release"
	}
	now := s.opts.Now()
	keys := make([]string, 0, 1+3*len(r.Keys))
	args := make([]any, 0, 4+3*len(r.Keys))
	keys = append(keys, s.res(r.ID))
	args = append(args, r.ID, actual, ms(s.opts.TombstoneTTL), mode)
	for i, k := range r.Keys {
		pk, err := ledger.ParseKey(k)
		if err != nil {
			return false, err
		}
		b := r.Budgets[i]
		keys = append(keys, s.bk(k), s.bz(k), s.idx(pk.Scope, pk.ID))
		args = append(args, b.LimitMicroUSD, b2i(b.Hard), s.keyTTL(pk.End, now))
	}
	v, err := s.run(ctx, op, settleScript, keys, args...)
	if err != nil {
		return false, err
	}
	return len(v) == 0 || v[0] == 0, nil
}

// Commit implements ledger.Store. A commit that cannot reach Redis is queued and
// replayed later; FailOpen also charges the local fallback and returns nil, FailClosed
// returns ledger.ErrStoreUnavailable (the charge is still queued: just log it).
// Cancellation of ctx is ignored (a client hanging up must not lose the charge); the
// client's timeouts bound the call.
func (s *Store) Commit(ctx context.Context, r ledger.Reservation, actual int64) error {
	ctx = context.WithoutCancel(ctx)
	if actual < 0 {
		return fmt.Errorf("%w: negative actual %d", ledger.ErrInvalid, actual)
	}
	if err := ledger.CheckReservation(r); err != nil {
		return err
	}
	if len(r.Keys) == 0 {
		return nil
	}
	if s.closed.Load() {
		return ledger.ErrClosed
	}
	if strings.HasPrefix(r.ID, fallbackPrefix) {
		// Reserved locally during an outage: settle locally, charge Redis (now or later).
		local := r
		local.ID = strings.TrimPrefix(r.ID, fallbackPrefix)
		if fb := s.currentFallback(); fb != nil {
			if err := fb.Commit(ctx, local, actual); err != nil {
				return err
			}
		}
		if _, err := s.settle(ctx, "commit", r, actual); err != nil {
			if errors.Is(err, ledger.ErrStoreUnavailable) {
				s.enqueue(pendingCommit{r: r, actual: actual})
				return nil
			}
			return err
		}
		return nil
	}
	settled, err := s.settle(ctx, "commit", r, actual)
	switch {
	case err == nil && settled:
		return ledger.ErrAlreadySettled
	case err == nil:
		return nil
	case errors.Is(err, ledger.ErrStoreUnavailable):
		s.enqueue(pendingCommit{r: r, actual: actual})
		if s.opts.FailureMode == FailOpen {
			_ = s.fallback().Commit(ctx, r, actual) // unknown id locally: charged
			return nil
		}
		return fmt.Errorf("%w (commit queued for replay)", err)
	}
	return err
}

// Release implements ledger.Store. If Redis is unavailable the reservation simply
// expires at its ttl (FailOpen returns nil, FailClosed the error). Cancellation of ctx
// is ignored, as for Commit.
func (s *Store) Release(ctx context.Context, r ledger.Reservation) error {
	ctx = context.WithoutCancel(ctx)
	if err := ledger.CheckReservation(r); err != nil {
		return err
	}
	if len(r.Keys) == 0 {
		return nil
	}
	if strings.HasPrefix(r.ID, fallbackPrefix) {
		local := r
		local.ID = strings.TrimPrefix(r.ID, fallbackPrefix)
		if fb := s.currentFallback(); fb != nil {
			return fb.Release(ctx, local)
		}
		return nil // the fallback was dropped: the reservation had expired
	}
	_, err := s.settle(ctx, "release", r, 0)
	if s.failOpen(err) {
		return nil
	}
	return err
}

func (s *Store) enqueue(pc pendingCommit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) >= s.opts.MaxPendingCommits {
		if s.pending[0].release {
			s.releases.Add(-1) // the reservation expires at its TTL instead
		} else {
			s.dropped.Add(1)
		}
		s.pending = s.pending[1:]
	}
	if pc.release {
		s.releases.Add(1)
	}
	s.pending = append(s.pending, pc)
}

// flush replays queued commits until the queue is empty or Redis fails again.
func (s *Store) flush(ctx context.Context) {
	s.mu.Lock()
	batch := s.pending
	s.pending = nil
	s.replaying.Store(int64(len(batch)))
	s.mu.Unlock()
	for i, pc := range batch {
		if _, err := s.settleAs(ctx, "replay", pc.release, pc.r, pc.actual); err != nil && errors.Is(err, ledger.ErrStoreUnavailable) {
			s.mu.Lock()
			s.pending = append(batch[i:len(batch):len(batch)], s.pending...)
			s.replaying.Store(0)
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		s.replaying.Add(-1)
		if pc.release {
			s.releases.Add(-1)
		} else {
			s.replayed.Add(1) // applied, or already applied before the failure was seen
		}
		s.mu.Unlock()
	}
}

// loop replays queued commits and forgets stale lastSeen entries.
func (s *Store) loop() {
	defer close(s.done)
	t := time.NewTicker(s.opts.RetryInterval)
	defer t.Stop()
	lastClean := time.Now()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		n := len(s.pending)
		s.mu.Unlock()
		if n > 0 && s.try() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			s.flush(ctx)
			cancel()
		}
		if time.Since(lastClean) > time.Minute {
			lastClean = time.Now()
			now := s.opts.Now()
			s.seenMu.Lock()
			for k := range s.lastSeen {
				if pk, err := ledger.ParseKey(k); err != nil || now.After(pk.End.Add(time.Hour)) {
					delete(s.lastSeen, k)
				}
			}
			s.seenMu.Unlock()
		}
	}
}

type snap struct {
	exists          bool
	spent, reserved int64
	limit           int64 // -1 unknown
	hard            bool
}

func (s *Store) snapshot(ctx context.Context, op string, keys []string) ([]snap, error) {
	rk := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		rk = append(rk, s.bk(k), s.bz(k))
	}
	v, err := s.run(ctx, op, snapshotScript, rk, s.opts.Now().UnixMilli())
	if err != nil {
		return nil, err
	}
	if len(v) != 5*len(keys) {
		return nil, fmt.Errorf("ledger: redis %s: %d values for %d budgets", op, len(v), len(keys))
	}
	out := make([]snap, len(keys))
	for i := range keys {
		out[i] = snap{exists: v[5*i] == 1, spent: v[5*i+1], reserved: v[5*i+2], limit: v[5*i+3], hard: v[5*i+4] == 1}
	}
	return out, nil
}

// Snapshot implements ledger.Store.
func (s *Store) Snapshot(ctx context.Context, budgets []ledger.Budget) ([]ledger.BudgetState, error) {
	now := s.opts.Now()
	rbs, err := ledger.ResolveBudgets(budgets, now)
	if err != nil {
		return nil, err
	}
	if len(rbs) == 0 {
		return []ledger.BudgetState{}, nil
	}
	keys := make([]string, len(rbs))
	for i, rb := range rbs {
		keys[i] = rb.Key
	}
	sn, err := s.snapshot(ctx, "snapshot", keys)
	if err != nil {
		if s.failOpen(err) {
			return s.fallback().Snapshot(ctx, budgets)
		}
		return nil, err
	}
	out := make([]ledger.BudgetState, len(rbs))
	spent := make([]int64, len(rbs))
	for i, rb := range rbs {
		out[i] = ledger.State(rb.Budget, rb.Key, rb.Start, rb.End, sn[i].spent, sn[i].reserved, rb.LimitMicroUSD)
		spent[i] = sn[i].spent
	}
	s.remember(keys, spent)
	return out, nil
}

// Spend implements ledger.Store. It needs Redis in both failure modes.
func (s *Store) Spend(ctx context.Context, scope, id string) ([]ledger.BudgetState, error) {
	if err := ledger.ValidateOwner(scope, id); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, ledger.ErrClosed
	}
	if !s.try() {
		return nil, s.fail(ctx, "spend", errBackoff)
	}
	idx := s.idx(scope, id)
	members, err := s.c.SMembers(ctx, idx).Result()
	if err != nil {
		return nil, s.fail(ctx, "spend", err)
	}
	s.ok()
	prefix := s.p + ":b:"
	var keys []string
	var parsed []ledger.ParsedKey
	for _, m := range members {
		k := strings.TrimPrefix(m, prefix)
		pk, err := ledger.ParseKey(k)
		if err != nil || pk.Scope != scope || pk.ID != id {
			continue
		}
		keys = append(keys, k)
		parsed = append(parsed, pk)
	}
	if len(keys) == 0 {
		return []ledger.BudgetState{}, nil
	}
	sn, err := s.snapshot(ctx, "spend", keys)
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]ledger.BudgetState, len(keys))
	var gone []any
	for i, k := range keys {
		if !sn[i].exists {
			gone = append(gone, s.bk(k))
			continue
		}
		pk := parsed[i]
		limit := max(sn[i].limit, 0)
		b := ledger.Budget{Scope: pk.Scope, ID: pk.ID, Period: pk.Period, LimitMicroUSD: limit, Hard: sn[i].hard}
		byKey[k] = ledger.State(b, k, pk.Start, pk.End, sn[i].spent, sn[i].reserved, limit)
	}
	if len(gone) > 0 {
		_ = s.c.SRem(ctx, idx, gone...).Err() // expired periods; best effort
	}
	return memstore.SortStates(byKey), nil
}

// Allow implements ledger.Store.
func (s *Store) Allow(ctx context.Context, limits []ledger.RateLimit, tokens int64) (ledger.RateDecision, error) {
	if tokens < 0 {
		return ledger.RateDecision{}, fmt.Errorf("%w: negative tokens %d", ledger.ErrInvalid, tokens)
	}
	ls, err := ledger.ResolveRateLimits(limits)
	if err != nil {
		return ledger.RateDecision{}, err
	}
	nowMs := s.opts.Now().UnixMilli()
	if len(ls) == 0 {
		d, _ := ledger.Evaluate(nil, nil, tokens, nowMs)
		return d, nil
	}
	keys := make([]string, len(ls))
	args := make([]any, 0, 3+2*len(ls))
	args = append(args, nowMs, tokens, 2*ledger.WindowMillis+5_000)
	for i, l := range ls {
		keys[i] = s.rl(l.Key())
		args = append(args, l.RequestsPerMinute, l.TokensPerMinute)
	}
	v, err := s.run(ctx, "allow", allowScript, keys, args...)
	if err != nil {
		if s.failOpen(err) {
			return s.fallback().Allow(ctx, limits, tokens)
		}
		return ledger.RateDecision{}, err
	}
	if len(v) != 1+5*len(ls) {
		return ledger.RateDecision{}, fmt.Errorf("ledger: redis allow: %d values for %d limits", len(v), len(ls))
	}
	pre := make([]ledger.Window, len(ls))
	for i := range ls {
		o := 1 + 5*i
		pre[i] = ledger.Window{Start: v[o], PrevRequests: v[o+1], PrevTokens: v[o+2], Requests: v[o+3], Tokens: v[o+4]}
	}
	d, _ := ledger.Evaluate(ls, pre, tokens, nowMs)
	if d.Allowed != (v[0] == 1) {
		// Cannot happen while the script mirrors ledger.Evaluate; the script is the truth.
		return ledger.RateDecision{}, fmt.Errorf("ledger: redis allow: script and Evaluate disagree (script allowed=%d)", v[0])
	}
	return d, nil
}

// AddTokens implements ledger.Store. Under FailOpen a failure is applied locally and
// not reported.
func (s *Store) AddTokens(ctx context.Context, limits []ledger.RateLimit, n int64) error {
	ls, err := ledger.ResolveRateLimits(limits)
	if err != nil || n == 0 || len(ls) == 0 {
		return err
	}
	keys := make([]string, len(ls))
	for i, l := range ls {
		keys[i] = s.rl(l.Key())
	}
	_, err = s.run(ctx, "add_tokens", addTokensScript, keys, s.opts.Now().UnixMilli(), n, 2*ledger.WindowMillis+5_000)
	if s.failOpen(err) {
		return s.fallback().AddTokens(ctx, limits, n)
	}
	return err
}

// RateState implements ledger.Store (one pipelined read, no script).
func (s *Store) RateState(ctx context.Context, limits []ledger.RateLimit) ([]ledger.RateLimitState, error) {
	ls, err := ledger.ResolveRateLimits(limits)
	if err != nil {
		return nil, err
	}
	if len(ls) == 0 {
		return []ledger.RateLimitState{}, nil
	}
	if s.closed.Load() {
		return nil, ledger.ErrClosed
	}
	nowMs := s.opts.Now().UnixMilli()
	var cmds []*redis.SliceCmd
	if s.try() {
		_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, l := range ls {
				cmds = append(cmds, p.HMGet(ctx, s.rl(l.Key()), "ws", "pr", "pt", "cr", "ct"))
			}
			return nil
		})
	} else {
		err = errBackoff
	}
	if err != nil {
		err = s.fail(ctx, "rate_state", err)
		if s.failOpen(err) {
			return s.fallback().RateState(ctx, limits)
		}
		return nil, err
	}
	s.ok()
	out := make([]ledger.RateLimitState, len(ls))
	for i, l := range ls {
		var f [5]int64
		for j, x := range cmds[i].Val() {
			if str, ok := x.(string); ok {
				f[j], _ = strconv.ParseInt(str, 10, 64)
			}
		}
		w := ledger.Window{Start: f[0], PrevRequests: f[1], PrevTokens: f[2], Requests: f[3], Tokens: f[4]}
		out[i] = ledger.StateOf(l, w.Roll(nowMs), nowMs)
	}
	return out, nil
}

// Close stops the replay loop after one last attempt to replay queued commits (bounded
// by a few seconds). It does not close the Redis client. It returns an error wrapping
// ledger.ErrStoreUnavailable if commits are still queued (their spend is lost).
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.stop)
	<-s.done
	s.mu.Lock()
	n := len(s.pending)
	s.mu.Unlock()
	if n > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		s.downUntil.Store(0)
		s.flush(ctx)
		cancel()
	}
	s.mu.Lock()
	n = len(s.pending)
	if s.fb != nil {
		_ = s.fb.Close()
	}
	s.mu.Unlock()
	if n > 0 {
		return fmt.Errorf("%w: %d queued commits could not be replayed", ledger.ErrStoreUnavailable, n)
	}
	return nil
}
