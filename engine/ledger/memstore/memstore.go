// Package memstore is the in-process ledger.Store: every decision is made in memory
// under one mutex. It is used on its own (unit tests, single replica without
// durability), as the fail-open fallback of redisstore, and as the engine of boltstore,
// which plugs in a Persister that makes committed spend durable.
package memstore

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gavel-gw/gavel/engine/ledger"
)

// Record is the durable part of one budget period: what a Persister stores.
type Record struct {
	Key    string    `json:"key"`
	Scope  string    `json:"scope"`
	ID     string    `json:"id"`
	Period string    `json:"period"`
	Start  time.Time `json:"start"`
	Spent  int64     `json:"spent"`
	Limit  int64     `json:"limit"`
	Hard   bool      `json:"hard"`
}

// Delta is one committed charge to make durable: SpentDelta added to Key's spent, and
// the record's metadata (limit, hard) refreshed.
type Delta struct {
	Record
	SpentDelta int64
}

// Persister makes committed spend durable. Reservations and rate windows are never
// persisted: they only matter while this process is alive.
type Persister interface {
	// Load returns the stored records of keys (absent keys are simply missing).
	Load(keys []string) (map[string]Record, error)
	// Apply adds every delta in one atomic, durable transaction; it returns once durable.
	// It is called without the store's lock, concurrently.
	Apply(deltas []Delta) error
	// List returns every stored record of scope/id.
	List(scope, id string) ([]Record, error)
}

// Options configure a Store. The zero value is usable.
type Options struct {
	// Now is the clock (default time.Now). Tests inject a fake one.
	Now func() time.Time
	// TombstoneTTL: how long settled reservation ids are remembered (default
	// ledger.DefaultTombstoneTTL).
	TombstoneTTL time.Duration
	// Retention: how long a budget period is kept after it ends (default 35 days). With a
	// Persister, periods that ended more than an hour ago are dropped from memory (they
	// stay durable and are still listed by Spend).
	Retention time.Duration
	// Persister, if set, receives every commit before Commit returns.
	Persister Persister
}

type budget struct {
	rec      Record
	end      time.Time
	reserved int64
}

// A reservation is live until it expires (then it is forgotten: for Commit an expired
// reservation and an unknown one are the same, charged and nothing released) or is
// settled (then only its tombstone is kept, for TombstoneTTL, so a second Commit is
// detected). Live reservations are few (requests in flight, and abandoned ones until
// their TTL); tombstones are one per request settled in the last TombstoneTTL, so they
// are kept apart and small (tombstones.go).
type reservation struct {
	id       string
	keys     []string
	amount   int64
	deadline time.Time // expiry
	index    int       // in Store.expiries
}

// expiryHeap orders live reservations by deadline. Each knows its index, so one that is
// settled leaves the heap at once instead of lingering until its (longer) TTL.
type expiryHeap []*reservation

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	r := x.(*reservation)
	r.index = len(*h)
	*h = append(*h, r)
}
func (h *expiryHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	r.index = -1
	return r
}

// Store is the in-memory ledger.Store.
type Store struct {
	opts Options

	mu        sync.Mutex
	closed    bool
	budgets   map[string]*budget
	owners    map[string]map[string]struct{} // scope:id -> keys
	live      map[string]*reservation        // reservations neither settled nor expired
	expiries  expiryHeap                     // the live ones by deadline
	settled   tombstones                     // settled reservation ids, until TombstoneTTL
	rates     map[string]ledger.Window
	lastPrune time.Time

	docs docs // documents (ledger.Documents), under their own lock
	recs recs // records and journals (ledger.Records, ledger.Journal), under their own lock
}

var _ ledger.Store = (*Store)(nil)

// New returns an empty in-memory store.
func New(opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TombstoneTTL <= 0 {
		opts.TombstoneTTL = ledger.DefaultTombstoneTTL
	}
	if opts.Retention <= 0 {
		opts.Retention = 35 * 24 * time.Hour
	}
	return &Store{
		opts:    opts,
		budgets: make(map[string]*budget),
		owners:  make(map[string]map[string]struct{}),
		live:    make(map[string]*reservation),
		settled: newTombstones(),
		rates:   make(map[string]ledger.Window),
	}
}

func ownerKey(scope, id string) string { return scope + ":" + id }

// sweep expires reservations and tombstones whose deadline passed; prunes old periods
// and idle rate windows at most once a minute. Caller holds mu.
func (s *Store) sweep(now time.Time) {
	for len(s.expiries) > 0 && !now.Before(s.expiries[0].deadline) {
		r := heap.Pop(&s.expiries).(*reservation)
		s.unreserve(r)
		delete(s.live, r.id)
	}
	s.settled.expire(now)
	if now.Sub(s.lastPrune) < time.Minute && !now.Before(s.lastPrune) {
		return
	}
	s.lastPrune = now
	for k, b := range s.budgets {
		if b.reserved != 0 {
			continue
		}
		drop := now.After(b.end.Add(s.opts.Retention))
		if s.opts.Persister != nil && now.After(b.end.Add(time.Hour)) {
			drop = true
		}
		if drop {
			delete(s.budgets, k)
			ok := ownerKey(b.rec.Scope, b.rec.ID)
			delete(s.owners[ok], k)
			if len(s.owners[ok]) == 0 {
				delete(s.owners, ok)
			}
		}
	}
	nowMs := now.UnixMilli()
	for k, w := range s.rates {
		if w.Start < nowMs-2*ledger.WindowMillis {
			delete(s.rates, k)
		}
	}
	s.settled.compact()
}

// settle ends a live reservation (if r is one) and remembers id as settled until
// TombstoneTTL. Caller holds mu.
func (s *Store) settle(id string, r *reservation, now time.Time) {
	if r != nil {
		heap.Remove(&s.expiries, r.index)
		delete(s.live, id)
	}
	s.settled.add(id, now.Add(s.opts.TombstoneTTL))
}

func (s *Store) unreserve(r *reservation) {
	for _, k := range r.keys {
		if b := s.budgets[k]; b != nil {
			b.reserved -= r.amount
		}
	}
}

// load makes sure every key in keys has an in-memory budget, reading missing ones from
// the Persister. Caller holds mu.
func (s *Store) load(keys []string, metas []ledger.Budget) error {
	var missing []string
	for _, k := range keys {
		if s.budgets[k] == nil {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var stored map[string]Record
	if s.opts.Persister != nil {
		var err error
		if stored, err = s.opts.Persister.Load(missing); err != nil {
			return fmt.Errorf("%w: %v", ledger.ErrStoreUnavailable, err)
		}
	}
	for i, k := range keys {
		if s.budgets[k] != nil {
			continue
		}
		pk, err := ledger.ParseKey(k)
		if err != nil {
			return err
		}
		rec, ok := stored[k]
		if !ok {
			rec = Record{Key: k, Scope: pk.Scope, ID: pk.ID, Period: pk.Period, Start: pk.Start,
				Limit: metas[i].LimitMicroUSD, Hard: metas[i].Hard}
		}
		s.budgets[k] = &budget{rec: rec, end: pk.End}
		ok2 := ownerKey(pk.Scope, pk.ID)
		if s.owners[ok2] == nil {
			s.owners[ok2] = make(map[string]struct{})
		}
		s.owners[ok2][k] = struct{}{}
	}
	return nil
}

func (s *Store) lock() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ledger.ErrClosed
	}
	return nil
}

// Reserve implements ledger.Store.
func (s *Store) Reserve(ctx context.Context, budgets []ledger.Budget, amount int64, ttl time.Duration) (ledger.Reservation, error) {
	if err := ctx.Err(); err != nil {
		return ledger.Reservation{}, err
	}
	now := s.opts.Now()
	r, rbs, err := ledger.NewReservation(budgets, amount, ttl, now)
	if err != nil {
		return ledger.Reservation{}, err
	}
	if len(rbs) == 0 {
		return r, nil
	}
	if err := s.lock(); err != nil {
		return ledger.Reservation{}, err
	}
	defer s.mu.Unlock()
	s.sweep(now)
	if err := s.load(r.Keys, r.Budgets); err != nil {
		return ledger.Reservation{}, err
	}
	for _, rb := range rbs {
		b := s.budgets[rb.Key]
		if ledger.Exceeds(rb.Hard, b.rec.Spent, b.reserved, amount, rb.LimitMicroUSD) {
			return ledger.Reservation{}, &ledger.ExceededError{Budget: rb.Budget, Key: rb.Key,
				Spent: b.rec.Spent, Reserved: b.reserved, Limit: rb.LimitMicroUSD, Amount: amount}
		}
	}
	for _, rb := range rbs {
		b := s.budgets[rb.Key]
		b.reserved += amount
		b.rec.Limit, b.rec.Hard = rb.LimitMicroUSD, rb.Hard
	}
	res := &reservation{id: r.ID, keys: r.Keys, amount: amount, deadline: r.ExpiresAt}
	s.live[r.ID] = res
	heap.Push(&s.expiries, res)
	return r, nil
}

// Commit implements ledger.Store. With a Persister the charge is applied in memory
// first (so concurrent Reserves already see it) and made durable before Commit returns;
// if that fails the in-memory charge is undone and a retried Commit charges again.
func (s *Store) Commit(ctx context.Context, r ledger.Reservation, actual int64) error {
	if actual < 0 {
		return fmt.Errorf("%w: negative actual %d", ledger.ErrInvalid, actual)
	}
	if err := ledger.CheckReservation(r); err != nil {
		return err
	}
	if len(r.Keys) == 0 {
		return nil
	}
	now := s.opts.Now()
	if err := s.lock(); err != nil {
		return err
	}
	s.sweep(now)
	if s.settled.has(r.ID) {
		s.mu.Unlock()
		return ledger.ErrAlreadySettled
	}
	if err := s.load(r.Keys, r.Budgets); err != nil {
		s.mu.Unlock()
		return err
	}
	rec := s.live[r.ID]
	if rec != nil {
		s.unreserve(rec)
	}
	var deltas []Delta
	for _, k := range r.Keys {
		b := s.budgets[k]
		b.rec.Spent += actual
		if s.opts.Persister != nil {
			deltas = append(deltas, Delta{Record: b.rec, SpentDelta: actual})
		}
	}
	s.settle(r.ID, rec, now)
	s.mu.Unlock()

	if s.opts.Persister == nil {
		return nil
	}
	if err := s.opts.Persister.Apply(deltas); err != nil {
		s.mu.Lock()
		for _, k := range r.Keys {
			if b := s.budgets[k]; b != nil {
				b.rec.Spent -= actual
			}
		}
		s.settled.remove(r.ID) // a retried Commit charges (and releases nothing)
		s.mu.Unlock()
		return fmt.Errorf("%w: commit not persisted: %v", ledger.ErrStoreUnavailable, err)
	}
	return nil
}

// Release implements ledger.Store.
func (s *Store) Release(ctx context.Context, r ledger.Reservation) error {
	if err := ledger.CheckReservation(r); err != nil {
		return err
	}
	if len(r.Keys) == 0 {
		return nil
	}
	now := s.opts.Now()
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.sweep(now)
	rec := s.live[r.ID]
	if rec == nil {
		return nil // unknown, expired or settled: nothing held
	}
	s.unreserve(rec)
	s.settle(r.ID, rec, now)
	return nil
}

// Snapshot implements ledger.Store.
func (s *Store) Snapshot(ctx context.Context, budgets []ledger.Budget) ([]ledger.BudgetState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := s.opts.Now()
	rbs, err := ledger.ResolveBudgets(budgets, now)
	if err != nil {
		return nil, err
	}
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	s.sweep(now)
	out := make([]ledger.BudgetState, len(rbs))
	var missing []string
	for _, rb := range rbs {
		if s.budgets[rb.Key] == nil {
			missing = append(missing, rb.Key)
		}
	}
	var stored map[string]Record
	if len(missing) > 0 && s.opts.Persister != nil {
		if stored, err = s.opts.Persister.Load(missing); err != nil {
			return nil, fmt.Errorf("%w: %v", ledger.ErrStoreUnavailable, err)
		}
	}
	for i, rb := range rbs {
		var spent, reserved int64
		if b := s.budgets[rb.Key]; b != nil {
			spent, reserved = b.rec.Spent, b.reserved
		} else if rec, ok := stored[rb.Key]; ok {
			spent = rec.Spent
		}
		out[i] = ledger.State(rb.Budget, rb.Key, rb.Start, rb.End, spent, reserved, rb.LimitMicroUSD)
	}
	return out, nil
}

// Spend implements ledger.Store.
func (s *Store) Spend(ctx context.Context, scope, id string) ([]ledger.BudgetState, error) {
	if err := ledger.ValidateOwner(scope, id); err != nil {
		return nil, err
	}
	now := s.opts.Now()
	var stored []Record
	if s.opts.Persister != nil {
		var err error
		if stored, err = s.opts.Persister.List(scope, id); err != nil {
			return nil, fmt.Errorf("%w: %v", ledger.ErrStoreUnavailable, err)
		}
	}
	if err := s.lock(); err != nil {
		return nil, err
	}
	s.sweep(now)
	byKey := make(map[string]ledger.BudgetState)
	for _, rec := range stored {
		byKey[rec.Key] = stateOfRecord(rec, 0)
	}
	for k := range s.owners[ownerKey(scope, id)] {
		b := s.budgets[k]
		byKey[k] = stateOfRecord(b.rec, b.reserved)
	}
	s.mu.Unlock()
	return SortStates(byKey), nil
}

func stateOfRecord(rec Record, reserved int64) ledger.BudgetState {
	b := ledger.Budget{Scope: rec.Scope, ID: rec.ID, Period: rec.Period, LimitMicroUSD: rec.Limit, Hard: rec.Hard}
	return ledger.State(b, rec.Key, rec.Start, ledger.PeriodEnd(rec.Period, rec.Start), rec.Spent, reserved, rec.Limit)
}

// SortStates returns the states ordered by period ("day" before "month") then start.
func SortStates(m map[string]ledger.BudgetState) []ledger.BudgetState {
	out := make([]ledger.BudgetState, 0, len(m))
	for _, st := range m {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b ledger.BudgetState) int {
		if a.Budget.Period != b.Budget.Period {
			if a.Budget.Period < b.Budget.Period {
				return -1
			}
			return 1
		}
		return a.PeriodStart.Compare(b.PeriodStart)
	})
	return out
}

// Allow implements ledger.Store.
func (s *Store) Allow(ctx context.Context, limits []ledger.RateLimit, tokens int64) (ledger.RateDecision, error) {
	if err := ctx.Err(); err != nil {
		return ledger.RateDecision{}, err
	}
	if tokens < 0 {
		return ledger.RateDecision{}, fmt.Errorf("%w: negative tokens %d", ledger.ErrInvalid, tokens)
	}
	ls, err := ledger.ResolveRateLimits(limits)
	if err != nil {
		return ledger.RateDecision{}, err
	}
	nowMs := s.opts.Now().UnixMilli()
	if err := s.lock(); err != nil {
		return ledger.RateDecision{}, err
	}
	defer s.mu.Unlock()
	pre := make([]ledger.Window, len(ls))
	for i, l := range ls {
		pre[i] = s.rates[l.Key()].Roll(nowMs)
	}
	d, post := ledger.Evaluate(ls, pre, tokens, nowMs)
	if d.Allowed {
		for i, l := range ls {
			s.rates[l.Key()] = post[i]
		}
	}
	return d, nil
}

// AddTokens implements ledger.Store.
func (s *Store) AddTokens(ctx context.Context, limits []ledger.RateLimit, n int64) error {
	ls, err := ledger.ResolveRateLimits(limits)
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	nowMs := s.opts.Now().UnixMilli()
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, l := range ls {
		s.rates[l.Key()] = ledger.AddTokensTo(s.rates[l.Key()].Roll(nowMs), n)
	}
	return nil
}

// RateState implements ledger.Store.
func (s *Store) RateState(ctx context.Context, limits []ledger.RateLimit) ([]ledger.RateLimitState, error) {
	ls, err := ledger.ResolveRateLimits(limits)
	if err != nil {
		return nil, err
	}
	nowMs := s.opts.Now().UnixMilli()
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := make([]ledger.RateLimitState, len(ls))
	for i, l := range ls {
		out[i] = ledger.StateOf(l, s.rates[l.Key()].Roll(nowMs), nowMs)
	}
	return out, nil
}

// Live returns the number of live (neither settled nor expired) reservations.
func (s *Store) Live() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(s.opts.Now())
	return len(s.live)
}

// Close implements ledger.Store. Later calls fail with ledger.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// Tracked returns the number of reservation records held (live ones and tombstones).
func (s *Store) Tracked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(s.opts.Now())
	return len(s.live) + s.settled.len()
}
