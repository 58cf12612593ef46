// Package ledgertest is the conformance suite every ledger.Store implementation passes,
// plus a fake clock and a shared benchmark.
//
//	func TestConformance(t *testing.T) {
//		ledgertest.Run(t, func(t *testing.T, now func() time.Time) ledger.Store {
//			return memstore.New(memstore.Options{Now: now})
//		})
//	}
//
// The factory receives the suite's clock: stores must read time only through it (expiry,
// period keys, rate windows). Each subtest gets a fresh store and clock; stores must be
// isolated from one another (e.g. a unique Redis key prefix).
package ledgertest

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/ledger"
)

// Clock is a settable fake clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set sets the clock.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Factory builds a fresh, isolated store reading time from now. It should register its
// own cleanup (t.Cleanup); Run closes the store too.
type Factory func(t *testing.T, now func() time.Time) ledger.Store

// Start is the suite's default instant: 2026-11-22 10:00:00 UTC.
var Start = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

type env struct {
	t     *testing.T
	ctx   context.Context
	clock *Clock
	s     ledger.Store
}

func setup(t *testing.T, f Factory) *env {
	t.Helper()
	c := NewClock(Start)
	s := f(t, c.Now)
	t.Cleanup(func() { _ = s.Close() })
	return &env{t: t, ctx: context.Background(), clock: c, s: s}
}

func (e *env) reserve(bs []ledger.Budget, amount int64, ttl time.Duration) ledger.Reservation {
	e.t.Helper()
	r, err := e.s.Reserve(e.ctx, bs, amount, ttl)
	if err != nil {
		e.t.Fatalf("Reserve(%d): %v", amount, err)
	}
	return r
}

func (e *env) snap(b ledger.Budget) ledger.BudgetState {
	e.t.Helper()
	st, err := e.s.Snapshot(e.ctx, []ledger.Budget{b})
	if err != nil {
		e.t.Fatalf("Snapshot: %v", err)
	}
	if len(st) != 1 {
		e.t.Fatalf("Snapshot returned %d states, want 1", len(st))
	}
	return st[0]
}

func (e *env) wantState(b ledger.Budget, spent, reserved int64) {
	e.t.Helper()
	st := e.snap(b)
	if st.Spent != spent || st.Reserved != reserved {
		e.t.Fatalf("%s: spent=%d reserved=%d, want spent=%d reserved=%d", st.Key, st.Spent, st.Reserved, spent, reserved)
	}
	rem := max(0, b.LimitMicroUSD-spent-reserved)
	if st.Limit != b.LimitMicroUSD || st.Remaining != rem {
		e.t.Fatalf("%s: limit=%d remaining=%d, want %d %d", st.Key, st.Limit, st.Remaining, b.LimitMicroUSD, rem)
	}
}

func hard(scope, id, period string, limit int64) ledger.Budget {
	return ledger.Budget{Scope: scope, ID: id, Period: period, LimitMicroUSD: limit, Hard: true}
}

func soft(scope, id, period string, limit int64) ledger.Budget {
	return ledger.Budget{Scope: scope, ID: id, Period: period, LimitMicroUSD: limit}
}

func wantExceeded(t *testing.T, err error, key string, spent, reserved, limit int64) {
	t.Helper()
	if !errors.Is(err, ledger.ErrBudgetExceeded) {
		t.Fatalf("err = %v, want ErrBudgetExceeded", err)
	}
	var ee *ledger.ExceededError
	if !errors.As(err, &ee) {
		t.Fatalf("err %T is not *ExceededError", err)
	}
	if ee.Key != key || ee.Spent != spent || ee.Reserved != reserved || ee.Limit != limit {
		t.Fatalf("ExceededError{key=%s spent=%d reserved=%d limit=%d}, want {%s %d %d %d}",
			ee.Key, ee.Spent, ee.Reserved, ee.Limit, key, spent, reserved, limit)
	}
}

// Run runs the whole conformance suite against stores built by f.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"ReserveCommit", testReserveCommit},
		{"Release", testRelease},
		{"HardLimit", testHardLimit},
		{"SoftBudget", testSoftBudget},
		{"MultiBudgetAtomic", testMultiBudgetAtomic},
		{"DuplicateBudgets", testDuplicateBudgets},
		{"Expiry", testExpiry},
		{"ExpiryOnSnapshot", testExpiryOnSnapshot},
		{"PeriodRollover", testPeriodRollover},
		{"SnapshotShape", testSnapshotShape},
		{"Spend", testSpend},
		{"Validation", testValidation},
		{"NoBudgets", testNoBudgets},
		{"RateRequests", testRateRequests},
		{"RateTokens", testRateTokens},
		{"RateMultiLimit", testRateMultiLimit},
		{"RateSlidingWindow", testRateSlidingWindow},
		{"RateRetryAfter", testRateRetryAfter},
		{"RateTokenCorrection", testRateTokenCorrection},
		{"RateConcurrent", testRateConcurrent},
		{"GuaranteeExactCount", testGuaranteeExact},
		{"GuaranteeActualBelowEstimate", testGuaranteeBelow},
		{"GuaranteeActualAboveEstimate", testGuaranteeAbove},
		{"GuaranteeMultiBudget", testGuaranteeMulti},
		{"Documents", testDocuments},
		{"Records", testRecords},
		{"Journal", testJournal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

func testReserveCommit(t *testing.T, f Factory) {
	e := setup(t, f)
	b := hard(ledger.ScopeTeam, "search", ledger.PeriodDay, 1000)
	r := e.reserve([]ledger.Budget{b}, 300, time.Minute)
	if r.ID == "" || r.AmountMicroUSD != 300 || len(r.Keys) != 1 || r.Keys[0] != "team:search:day:2026-11-22" {
		t.Fatalf("reservation = %+v", r)
	}
	if !r.ExpiresAt.Equal(Start.Add(time.Minute)) {
		t.Fatalf("ExpiresAt = %v", r.ExpiresAt)
	}
	e.wantState(b, 0, 300)
	if err := e.s.Commit(e.ctx, r, 250); err != nil {
		t.Fatal(err)
	}
	e.wantState(b, 250, 0)
	// A second Commit must not charge again.
	if err := e.s.Commit(e.ctx, r, 250); !errors.Is(err, ledger.ErrAlreadySettled) {
		t.Fatalf("second Commit: %v, want ErrAlreadySettled", err)
	}
	e.wantState(b, 250, 0)
	// Actual above the reservation is recorded in full.
	r2 := e.reserve([]ledger.Budget{b}, 100, time.Minute)
	if err := e.s.Commit(e.ctx, r2, 400); err != nil {
		t.Fatal(err)
	}
	e.wantState(b, 650, 0)
	// Release after Commit changes nothing.
	if err := e.s.Release(e.ctx, r2); err != nil {
		t.Fatal(err)
	}
	e.wantState(b, 650, 0)
}

func testRelease(t *testing.T, f Factory) {
	e := setup(t, f)
	b := hard(ledger.ScopeKey, "k1", ledger.PeriodDay, 1000)
	r := e.reserve([]ledger.Budget{b}, 400, time.Minute)
	e.wantState(b, 0, 400)
	if err := e.s.Release(e.ctx, r); err != nil {
		t.Fatal(err)
	}
	e.wantState(b, 0, 0)
	if err := e.s.Release(e.ctx, r); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if err := e.s.Commit(e.ctx, r, 10); !errors.Is(err, ledger.ErrAlreadySettled) {
		t.Fatalf("Commit after Release: %v, want ErrAlreadySettled", err)
	}
	e.wantState(b, 0, 0)
	// The whole limit is available again.
	e.reserve([]ledger.Budget{b}, 1000, time.Minute)
	e.wantState(b, 0, 1000)
}

func testHardLimit(t *testing.T, f Factory) {
	e := setup(t, f)
	b := hard(ledger.ScopeUser, "u1", ledger.PeriodDay, 1000)
	r1 := e.reserve([]ledger.Budget{b}, 600, time.Minute)
	_, err := e.s.Reserve(e.ctx, []ledger.Budget{b}, 500, time.Minute)
	wantExceeded(t, err, "user:u1:day:2026-11-22", 0, 600, 1000)
	e.wantState(b, 0, 600)
	// Exactly up to the limit is allowed.
	r2 := e.reserve([]ledger.Budget{b}, 400, time.Minute)
	e.wantState(b, 0, 1000)
	if err := e.s.Commit(e.ctx, r1, 600); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Commit(e.ctx, r2, 300); err != nil {
		t.Fatal(err)
	}
	e.wantState(b, 900, 0)
	_, err = e.s.Reserve(e.ctx, []ledger.Budget{b}, 101, time.Minute)
	wantExceeded(t, err, "user:u1:day:2026-11-22", 900, 0, 1000)
	e.reserve([]ledger.Budget{b}, 100, time.Minute)
	// A zero limit blocks any positive amount.
	z := hard(ledger.ScopeUser, "u2", ledger.PeriodDay, 0)
	_, err = e.s.Reserve(e.ctx, []ledger.Budget{z}, 1, time.Minute)
	wantExceeded(t, err, "user:u2:day:2026-11-22", 0, 0, 0)
}

func testSoftBudget(t *testing.T, f Factory) {
	e := setup(t, f)
	b := soft(ledger.ScopeProject, "p1", ledger.PeriodMonth, 100)
	r := e.reserve([]ledger.Budget{b}, 500, time.Minute)
	e.wantState(b, 0, 500)
	if err := e.s.Commit(e.ctx, r, 700); err != nil {
		t.Fatal(err)
	}
	e.wantState(b, 700, 0)
	if st := e.snap(b); st.Remaining != 0 || st.Key != "project:p1:month:2026-11" {
		t.Fatalf("state = %+v", st)
	}
	e.reserve([]ledger.Budget{b}, 500, time.Minute) // still never blocks
}

func testMultiBudgetAtomic(t *testing.T, f Factory) {
	e := setup(t, f)
	a := hard(ledger.ScopeKey, "k1", ledger.PeriodDay, 10_000)
	b := hard(ledger.ScopeTeam, "t1", ledger.PeriodDay, 100)
	c := hard(ledger.ScopeGlobal, "", ledger.PeriodMonth, 50)
	s := soft(ledger.ScopeUser, "u1", ledger.PeriodDay, 1)
	_, err := e.s.Reserve(e.ctx, []ledger.Budget{a, s, b, c}, 200, time.Minute)
	// b is the first (in order) that fires even though c fires too.
	wantExceeded(t, err, "team:t1:day:2026-11-22", 0, 0, 100)
	for _, x := range []ledger.Budget{a, b, c, s} {
		e.wantState(x, 0, 0)
	}
	r := e.reserve([]ledger.Budget{a, s, b, c}, 40, time.Minute)
	for _, x := range []ledger.Budget{a, b, c, s} {
		e.wantState(x, 0, 40)
	}
	_, err = e.s.Reserve(e.ctx, []ledger.Budget{a, c}, 20, time.Minute)
	wantExceeded(t, err, "global::month:2026-11", 0, 40, 50)
	e.wantState(a, 0, 40)
	if err := e.s.Commit(e.ctx, r, 30); err != nil {
		t.Fatal(err)
	}
	for _, x := range []ledger.Budget{a, b, c, s} {
		e.wantState(x, 30, 0)
	}
	// Snapshot of several budgets keeps the caller's order.
	st, err := e.s.Snapshot(e.ctx, []ledger.Budget{c, a, b})
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 3 || st[0].Key != "global::month:2026-11" || st[1].Key != "key:k1:day:2026-11-22" || st[2].Key != "team:t1:day:2026-11-22" {
		t.Fatalf("snapshot order: %+v", st)
	}
}

func testDuplicateBudgets(t *testing.T, f Factory) {
	e := setup(t, f)
	loose := hard(ledger.ScopeTeam, "t1", ledger.PeriodDay, 1000)
	tight := hard(ledger.ScopeTeam, "t1", ledger.PeriodDay, 100)
	r := e.reserve([]ledger.Budget{loose, tight}, 60, time.Minute)
	if len(r.Keys) != 1 {
		t.Fatalf("duplicate budget not merged: %+v", r)
	}
	e.wantState(loose, 0, 60) // reserved once, not twice
	_, err := e.s.Reserve(e.ctx, []ledger.Budget{loose, tight}, 60, time.Minute)
	wantExceeded(t, err, "team:t1:day:2026-11-22", 0, 60, 100)
	if err := e.s.Commit(e.ctx, r, 60); err != nil {
		t.Fatal(err)
	}
	e.wantState(loose, 60, 0)
}

func testExpiry(t *testing.T, f Factory) {
	e := setup(t, f)
	b := hard(ledger.ScopeKey, "k1", ledger.PeriodDay, 1000)
	r1 := e.reserve([]ledger.Budget{b}, 800, time.Minute)
	if _, err := e.s.Reserve(e.ctx, []ledger.Budget{b}, 300, time.Minute); !errors.Is(err, ledger.ErrBudgetExceeded) {
		t.Fatalf("want exceeded, got %v", err)
	}
	e.clock.Advance(59 * time.Second)
	if _, err := e.s.Reserve(e.ctx, []ledger.Budget{b}, 300, time.Minute); !errors.Is(err, ledger.ErrBudgetExceeded) {
		t.Fatalf("before expiry: want exceeded, got %v", err)
	}
	e.clock.Advance(time.Second) // exactly at ExpiresAt the reservation stops counting
	r2 := e.reserve([]ledger.Budget{b}, 300, time.Minute)
	e.wantState(b, 0, 300)
	// Releasing an expired reservation changes nothing.
	if err := e.s.Release(e.ctx, r1); err != nil {
		t.Fatal(err)
	}
	e.wantState(b, 0, 300)
	// Committing an expired reservation still records the spend, and only once.
	r3 := e.reserve([]ledger.Budget{b}, 100, time.Second)
	e.clock.Advance(2 * time.Second)
	if err := e.s.Commit(e.ctx, r3, 90); err != nil {
		t.Fatal(err)
	}
	e.wantState(b, 90, 300)
	if err := e.s.Commit(e.ctx, r3, 90); !errors.Is(err, ledger.ErrAlreadySettled) {
		t.Fatalf("second Commit of expired: %v", err)
	}
	if err := e.s.Commit(e.ctx, r2, 300); err != nil {
		t.Fatal(err)
	}
	e.wantState(b, 390, 0)
	// Expired-but-unswept reservation committed directly (no Reserve in between).
	r4 := e.reserve([]ledger.Budget{b}, 200, time.Second)
	e.clock.Advance(time.Hour)
	if err := e.s.Commit(e.ctx, r4, 50); err != nil {
		t.Fatal(err)
	}
	e.wantState(b, 440, 0)
}

func testExpiryOnSnapshot(t *testing.T, f Factory) {
	e := setup(t, f)
	b := soft(ledger.ScopeKey, "k1", ledger.PeriodDay, 1000)
	for range 5 {
		e.reserve([]ledger.Budget{b}, 10, 30*time.Second)
	}
	e.wantState(b, 0, 50)
	e.clock.Advance(30 * time.Second)
	e.wantState(b, 0, 0) // nothing but Snapshot ran
	// Default TTL when ttl <= 0.
	r := e.reserve([]ledger.Budget{b}, 10, 0)
	if !r.ExpiresAt.Equal(e.clock.Now().Add(ledger.DefaultReservationTTL)) {
		t.Fatalf("default ttl: ExpiresAt %v", r.ExpiresAt)
	}
}

func testPeriodRollover(t *testing.T, f Factory) {
	e := setup(t, f)
	e.clock.Set(time.Date(2026, 11, 30, 23, 59, 0, 0, time.UTC))
	day := hard(ledger.ScopeTeam, "t1", ledger.PeriodDay, 1000)
	month := hard(ledger.ScopeTeam, "t1", ledger.PeriodMonth, 5000)
	r := e.reserve([]ledger.Budget{day, month}, 900, time.Hour)
	if err := e.s.Commit(e.ctx, r, 900); err != nil {
		t.Fatal(err)
	}
	e.wantState(day, 900, 0)
	_, err := e.s.Reserve(e.ctx, []ledger.Budget{day, month}, 200, time.Hour)
	wantExceeded(t, err, "team:t1:day:2026-11-30", 900, 0, 1000)
	// A reservation made before midnight and committed after it charges its own period.
	late := e.reserve([]ledger.Budget{day}, 50, time.Hour)

	e.clock.Advance(time.Minute) // 2026-12-01 00:00: new day and new month
	st := e.snap(day)
	if st.Key != "team:t1:day:2026-12-01" || st.Spent != 0 || st.Reserved != 0 ||
		!st.PeriodStart.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) ||
		!st.PeriodEnd.Equal(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("after rollover: %+v", st)
	}
	if st := e.snap(month); st.Key != "team:t1:month:2026-12" || st.Spent != 0 {
		t.Fatalf("month after rollover: %+v", st)
	}
	r2 := e.reserve([]ledger.Budget{day, month}, 1000, time.Hour)
	if err := e.s.Commit(e.ctx, late, 40); err != nil {
		t.Fatal(err)
	}
	e.wantState(day, 0, 1000) // the late commit went to 2026-11-30
	all, err := e.s.Spend(e.ctx, ledger.ScopeTeam, "t1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]int64{}
	for _, s := range all {
		got[s.Key] = [2]int64{s.Spent, s.Reserved}
	}
	want := map[string][2]int64{
		"team:t1:day:2026-11-30": {940, 0},
		"team:t1:day:2026-12-01": {0, 1000},
		"team:t1:month:2026-11":  {900, 0},
		"team:t1:month:2026-12":  {0, 1000},
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("Spend %s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	_ = r2
	// Mid-month day rollover keeps the month's spend.
	e.clock.Set(time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC))
	if err := e.s.Commit(e.ctx, r2, 1000); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour)
	e.wantState(day, 0, 0)
	e.wantState(month, 1000, 0)
}

func testSnapshotShape(t *testing.T, f Factory) {
	e := setup(t, f)
	g := hard(ledger.ScopeGlobal, "", ledger.PeriodDay, 1_000_000)
	st := e.snap(g)
	if st.Key != "global::day:2026-11-22" || st.Spent != 0 || st.Reserved != 0 || st.Limit != 1_000_000 ||
		st.Remaining != 1_000_000 || st.Budget != g {
		t.Fatalf("fresh snapshot: %+v", st)
	}
	r := e.reserve([]ledger.Budget{g}, 250_000, time.Minute)
	if err := e.s.Commit(e.ctx, r, 100_000); err != nil {
		t.Fatal(err)
	}
	e.reserve([]ledger.Budget{g}, 300_000, time.Minute)
	st = e.snap(g)
	if st.Spent != 100_000 || st.Reserved != 300_000 || st.Remaining != 600_000 {
		t.Fatalf("snapshot: %+v", st)
	}
	// Snapshot reports the limit given now, even if it changed since.
	g2 := g
	g2.LimitMicroUSD = 200_000
	st = e.snap(g2)
	if st.Limit != 200_000 || st.Remaining != 0 {
		t.Fatalf("snapshot with lowered limit: %+v", st)
	}
}

func testSpend(t *testing.T, f Factory) {
	e := setup(t, f)
	mk := func(id, period string) ledger.Budget { return hard(ledger.ScopeKey, id, period, 1_000_000) }
	charge := func(amount int64, bs ...ledger.Budget) {
		r := e.reserve(bs, amount, time.Minute)
		if err := e.s.Commit(e.ctx, r, amount); err != nil {
			t.Fatal(err)
		}
	}
	charge(10, mk("abc", ledger.PeriodDay), mk("abc", ledger.PeriodMonth))
	charge(1, mk("abcd", ledger.PeriodDay), mk("abc:x", ledger.PeriodDay))
	e.clock.Advance(24 * time.Hour)
	charge(20, mk("abc", ledger.PeriodDay), mk("abc", ledger.PeriodMonth))
	e.reserve([]ledger.Budget{mk("abc", ledger.PeriodDay)}, 5, time.Minute)

	all, err := e.s.Spend(e.ctx, ledger.ScopeKey, "abc")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range all {
		keys = append(keys, s.Key)
	}
	want := []string{"key:abc:day:2026-11-22", "key:abc:day:2026-11-23", "key:abc:month:2026-11"}
	if len(keys) != len(want) {
		t.Fatalf("Spend keys = %v, want %v", keys, want)
	}
	for i := range want {
		if keys[i] != want[i] {
			t.Fatalf("Spend keys = %v, want %v", keys, want)
		}
	}
	if all[0].Spent != 10 || all[1].Spent != 20 || all[1].Reserved != 5 || all[2].Spent != 30 {
		t.Fatalf("Spend = %+v", all)
	}
	if all[2].Limit != 1_000_000 || !all[2].Budget.Hard || all[2].Budget.Period != ledger.PeriodMonth || all[2].Budget.ID != "abc" {
		t.Fatalf("Spend metadata = %+v", all[2])
	}
	other, err := e.s.Spend(e.ctx, ledger.ScopeKey, "abc:x")
	if err != nil {
		t.Fatal(err)
	}
	if len(other) != 1 || other[0].Spent != 1 || other[0].Budget.ID != "abc:x" {
		t.Fatalf("Spend(abc:x) = %+v", other)
	}
	none, err := e.s.Spend(e.ctx, ledger.ScopeTeam, "nobody")
	if err != nil || len(none) != 0 {
		t.Fatalf("Spend(unknown) = %v, %v", none, err)
	}
	if _, err := e.s.Spend(e.ctx, "org", "x"); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("Spend(bad scope): %v", err)
	}
}

func testValidation(t *testing.T, f Factory) {
	e := setup(t, f)
	ok := hard(ledger.ScopeKey, "k", ledger.PeriodDay, 10)
	bad := []ledger.Budget{
		{Scope: "org", ID: "x", Period: ledger.PeriodDay},
		{Scope: ledger.ScopeGlobal, ID: "x", Period: ledger.PeriodDay},
		{Scope: ledger.ScopeTeam, ID: "", Period: ledger.PeriodDay},
		{Scope: ledger.ScopeTeam, ID: "t", Period: "week"},
		{Scope: ledger.ScopeTeam, ID: "t", Period: ledger.PeriodDay, LimitMicroUSD: -1},
	}
	for _, b := range bad {
		if _, err := e.s.Reserve(e.ctx, []ledger.Budget{ok, b}, 1, time.Minute); !errors.Is(err, ledger.ErrInvalid) {
			t.Fatalf("Reserve(%+v): %v, want ErrInvalid", b, err)
		}
		if _, err := e.s.Snapshot(e.ctx, []ledger.Budget{b}); !errors.Is(err, ledger.ErrInvalid) {
			t.Fatalf("Snapshot(%+v): %v, want ErrInvalid", b, err)
		}
	}
	e.wantState(ok, 0, 0)
	if _, err := e.s.Reserve(e.ctx, []ledger.Budget{ok}, -1, time.Minute); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("negative amount: %v", err)
	}
	r := e.reserve([]ledger.Budget{ok}, 1, time.Minute)
	if err := e.s.Commit(e.ctx, r, -5); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("negative actual: %v", err)
	}
	if _, err := e.s.Allow(e.ctx, []ledger.RateLimit{{Scope: "org", ID: "x", RequestsPerMinute: 1}}, 1); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("Allow bad scope: %v", err)
	}
	if _, err := e.s.Allow(e.ctx, []ledger.RateLimit{{Scope: ledger.ScopeKey, ID: "k", RequestsPerMinute: -1}}, 1); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("Allow negative limit: %v", err)
	}
	if _, err := e.s.Allow(e.ctx, []ledger.RateLimit{{Scope: ledger.ScopeKey, ID: "k", RequestsPerMinute: 1}}, -1); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("Allow negative tokens: %v", err)
	}
}

func testNoBudgets(t *testing.T, f Factory) {
	e := setup(t, f)
	r, err := e.s.Reserve(e.ctx, nil, 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s.Commit(e.ctx, r, 100); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Release(e.ctx, r); err != nil {
		t.Fatal(err)
	}
	st, err := e.s.Snapshot(e.ctx, nil)
	if err != nil || len(st) != 0 {
		t.Fatalf("Snapshot(nil) = %v, %v", st, err)
	}
	d, err := e.s.Allow(e.ctx, nil, 100)
	if err != nil || !d.Allowed {
		t.Fatalf("Allow(nil) = %+v, %v", d, err)
	}
}

func (e *env) allow(ls []ledger.RateLimit, tokens int64) ledger.RateDecision {
	e.t.Helper()
	d, err := e.s.Allow(e.ctx, ls, tokens)
	if err != nil {
		e.t.Fatalf("Allow: %v", err)
	}
	return d
}

func (e *env) rate(l ledger.RateLimit) ledger.RateLimitState {
	e.t.Helper()
	st, err := e.s.RateState(e.ctx, []ledger.RateLimit{l})
	if err != nil {
		e.t.Fatalf("RateState: %v", err)
	}
	return st[0]
}

func testRateRequests(t *testing.T, f Factory) {
	e := setup(t, f)
	l := ledger.RateLimit{Scope: ledger.ScopeKey, ID: "k1", RequestsPerMinute: 3}
	for i := range 3 {
		d := e.allow([]ledger.RateLimit{l}, 0)
		if !d.Allowed || d.Index != -1 || d.States[0].RemainingRequests != int64(2-i) {
			t.Fatalf("request %d: %+v", i, d)
		}
	}
	d := e.allow([]ledger.RateLimit{l}, 0)
	if d.Allowed || d.Index != 0 || d.DeniedBy != ledger.DimRequests || d.Denied != l ||
		d.States[0].RemainingRequests != 0 || d.RetryAfter <= 0 || d.RetryAfter > 2*time.Minute {
		t.Fatalf("4th request: %+v", d)
	}
	if st := e.rate(l); st.Requests != 3 || st.CurrentRequests != 3 || st.RemainingTokens != -1 ||
		st.ResetRequests != 2*time.Minute {
		t.Fatalf("RateState: %+v", st)
	}
	e.clock.Advance(2 * time.Minute) // the previous minute has fully decayed
	if st := e.rate(l); st.Requests != 0 || st.RemainingRequests != 3 || st.ResetRequests != 0 {
		t.Fatalf("RateState after reset: %+v", st)
	}
	for range 3 {
		if d := e.allow([]ledger.RateLimit{l}, 0); !d.Allowed {
			t.Fatalf("after reset: %+v", d)
		}
	}
}

func testRateTokens(t *testing.T, f Factory) {
	e := setup(t, f)
	l := ledger.RateLimit{Scope: ledger.ScopeUser, ID: "u1", TokensPerMinute: 1000}
	if d := e.allow([]ledger.RateLimit{l}, 600); !d.Allowed || d.States[0].RemainingTokens != 400 || d.States[0].RemainingRequests != -1 {
		t.Fatalf("first: %+v", d)
	}
	d := e.allow([]ledger.RateLimit{l}, 600)
	if d.Allowed || d.DeniedBy != ledger.DimTokens || d.Unsatisfiable || d.States[0].RemainingTokens != 400 {
		t.Fatalf("second: %+v", d)
	}
	if st := e.rate(l); st.Requests != 1 || st.Tokens != 600 {
		t.Fatalf("denied request consumed something: %+v", st)
	}
	d = e.allow([]ledger.RateLimit{l}, 1500)
	if d.Allowed || !d.Unsatisfiable {
		t.Fatalf("too large: %+v", d)
	}
	if d := e.allow([]ledger.RateLimit{l}, 400); !d.Allowed || d.States[0].RemainingTokens != 0 {
		t.Fatalf("exact fit: %+v", d)
	}
}

func testRateMultiLimit(t *testing.T, f Factory) {
	e := setup(t, f)
	a := ledger.RateLimit{Scope: ledger.ScopeKey, ID: "k1", RequestsPerMinute: 100, TokensPerMinute: 100_000}
	b := ledger.RateLimit{Scope: ledger.ScopeTeam, ID: "t1", RequestsPerMinute: 1}
	g := ledger.RateLimit{Scope: ledger.ScopeGlobal, TokensPerMinute: 50}
	if d := e.allow([]ledger.RateLimit{a, b}, 10); !d.Allowed || len(d.States) != 2 {
		t.Fatalf("first: %+v", d)
	}
	d := e.allow([]ledger.RateLimit{a, b, g}, 60)
	if d.Allowed || d.Index != 1 || d.Denied != b || d.DeniedBy != ledger.DimRequests {
		t.Fatalf("second: %+v", d)
	}
	if st := e.rate(a); st.Requests != 1 || st.Tokens != 10 {
		t.Fatalf("a consumed by a denied request: %+v", st)
	}
	if st := e.rate(g); st.Requests != 0 || st.Tokens != 0 {
		t.Fatalf("g consumed by a denied request: %+v", st)
	}
	d = e.allow([]ledger.RateLimit{a, g}, 60)
	if d.Allowed || d.Index != 1 || d.DeniedBy != ledger.DimTokens || !d.Unsatisfiable {
		t.Fatalf("third: %+v", d)
	}
	// Duplicate limits merge: the smaller non-zero value of each dimension wins.
	a2 := a
	a2.RequestsPerMinute = 2
	d = e.allow([]ledger.RateLimit{a, a2}, 0)
	if !d.Allowed || len(d.States) != 1 || d.States[0].Limit.RequestsPerMinute != 2 || d.States[0].RemainingRequests != 0 {
		t.Fatalf("merged: %+v", d)
	}
	if d := e.allow([]ledger.RateLimit{a2}, 0); d.Allowed {
		t.Fatalf("merged limit not enforced: %+v", d)
	}
	// Headers name the most constrained limit.
	h := make(map[string][]string)
	d = e.allow([]ledger.RateLimit{a, b}, 0)
	d.SetHeaders(h)
	if h["X-Ratelimit-Limit-Requests"][0] != "1" || h["X-Ratelimit-Remaining-Requests"][0] != "0" ||
		h["X-Ratelimit-Limit-Tokens"][0] != "100000" || len(h["Retry-After"]) != 1 {
		t.Fatalf("headers: %v", h)
	}
}

func testRateSlidingWindow(t *testing.T, f Factory) {
	e := setup(t, f)
	e.clock.Set(Start.Add(10 * time.Second)) // 10s into a minute
	l := ledger.RateLimit{Scope: ledger.ScopeKey, ID: "k1", RequestsPerMinute: 10, TokensPerMinute: 1000}
	for range 10 {
		if d := e.allow([]ledger.RateLimit{l}, 100); !d.Allowed {
			t.Fatalf("fill: %+v", d)
		}
	}
	if d := e.allow([]ledger.RateLimit{l}, 0); d.Allowed {
		t.Fatal("11th request in the minute allowed")
	}
	// Half-way through the next minute half the previous minute still counts: 5 requests
	// and 500 tokens of room.
	e.clock.Set(Start.Add(90 * time.Second))
	st := e.rate(l)
	if st.Requests != 5 || st.Tokens != 500 || st.CurrentRequests != 0 || st.RemainingRequests != 5 ||
		!st.WindowStart.Equal(Start.Add(time.Minute)) || st.ResetRequests != 30*time.Second {
		t.Fatalf("half-way state: %+v", st)
	}
	if d := e.allow([]ledger.RateLimit{l}, 501); d.Allowed || d.DeniedBy != ledger.DimTokens {
		t.Fatalf("501 tokens allowed half-way: %+v", d)
	}
	for i := range 5 {
		if d := e.allow([]ledger.RateLimit{l}, 100); !d.Allowed {
			t.Fatalf("half-way request %d denied: %+v", i, d)
		}
	}
	if d := e.allow([]ledger.RateLimit{l}, 0); d.Allowed {
		t.Fatal("6th request half-way allowed")
	}
	// Skipping more than a whole minute forgets everything.
	e.clock.Set(Start.Add(5 * time.Minute))
	if st := e.rate(l); st.Requests != 0 || st.Tokens != 0 {
		t.Fatalf("after idle: %+v", st)
	}
}

func testRateRetryAfter(t *testing.T, f Factory) {
	e := setup(t, f)
	e.clock.Set(Start.Add(20 * time.Second))
	l := ledger.RateLimit{Scope: ledger.ScopeKey, ID: "k1", RequestsPerMinute: 4}
	for range 4 {
		e.allow([]ledger.RateLimit{l}, 0)
	}
	d := e.allow([]ledger.RateLimit{l}, 0)
	if d.Allowed {
		t.Fatal("5th allowed")
	}
	// Full at 0:20 of minute 0: room for one appears in minute 1 once 4*(1-f) <= 3,
	// i.e. f >= 1/4: at 1:15, which is 55s away.
	if d.RetryAfter != 55*time.Second {
		t.Fatalf("RetryAfter = %v, want 55s", d.RetryAfter)
	}
	e.clock.Advance(d.RetryAfter - time.Millisecond)
	if d := e.allow([]ledger.RateLimit{l}, 0); d.Allowed {
		t.Fatal("allowed before RetryAfter")
	}
	e.clock.Advance(time.Millisecond)
	if d := e.allow([]ledger.RateLimit{l}, 0); !d.Allowed {
		t.Fatalf("denied at RetryAfter: %+v", d)
	}
}

func testRateTokenCorrection(t *testing.T, f Factory) {
	e := setup(t, f)
	l := ledger.RateLimit{Scope: ledger.ScopeProject, ID: "p1", TokensPerMinute: 1000}
	ls := []ledger.RateLimit{l}
	e.allow(ls, 900)
	if d := e.allow(ls, 200); d.Allowed {
		t.Fatal("over the token limit")
	}
	if err := e.s.AddTokens(e.ctx, ls, -500); err != nil { // actual usage was 400
		t.Fatal(err)
	}
	if st := e.rate(l); st.Tokens != 400 || st.Requests != 1 {
		t.Fatalf("after correction: %+v", st)
	}
	if d := e.allow(ls, 200); !d.Allowed {
		t.Fatalf("after correction: %+v", d)
	}
	if err := e.s.AddTokens(e.ctx, ls, 300); err != nil { // actual was 500, not 200
		t.Fatal(err)
	}
	if st := e.rate(l); st.Tokens != 900 {
		t.Fatalf("after upward correction: %+v", st)
	}
	// A correction never drives counts negative; it spills into the previous minute.
	e.clock.Advance(time.Minute)
	if err := e.s.AddTokens(e.ctx, ls, -10_000); err != nil {
		t.Fatal(err)
	}
	if st := e.rate(l); st.Tokens != 0 || st.CurrentTokens != 0 {
		t.Fatalf("after big negative correction: %+v", st)
	}
}

func testRateConcurrent(t *testing.T, f Factory) {
	e := setup(t, f)
	l := ledger.RateLimit{Scope: ledger.ScopeKey, ID: "k1", RequestsPerMinute: 100, TokensPerMinute: 1_000_000}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 300 {
		wg.Go(func() {
			d, err := e.s.Allow(e.ctx, []ledger.RateLimit{l}, 10)
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 100 {
		t.Fatalf("allowed %d, want exactly 100", allowed.Load())
	}
	if st := e.rate(l); st.Requests != 100 || st.Tokens != 1000 {
		t.Fatalf("state: %+v", st)
	}
}

// guarantee runs n goroutines that each Reserve estimate and, on success, Commit
// actual(i). It returns the number of successful reservations and the peak number of
// goroutines between "about to Reserve" and "Commit returned": an upper bound of the
// reservations live in the store at any instant.
func guarantee(t *testing.T, e *env, bs []ledger.Budget, n int, estimate int64, actual func(i int) int64) (ok int64, peakInflight int64) {
	t.Helper()
	var succeeded, inflight, peak atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			cur := inflight.Add(1)
			defer inflight.Add(-1)
			for {
				p := peak.Load()
				if cur <= p || peak.CompareAndSwap(p, cur) {
					break
				}
			}
			r, err := e.s.Reserve(e.ctx, bs, estimate, time.Minute)
			if errors.Is(err, ledger.ErrBudgetExceeded) {
				return
			}
			if err != nil {
				t.Errorf("Reserve: %v", err)
				return
			}
			succeeded.Add(1)
			if err := e.s.Commit(e.ctx, r, actual(i)); err != nil {
				t.Errorf("Commit: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	return succeeded.Load(), peak.Load()
}

const (
	guaranteeN     = 500
	guaranteeLimit = 1_000_000 // $1
	guaranteeEst   = 7_000     // floor(1e6/7e3) = 142 fit
)

func testGuaranteeExact(t *testing.T, f Factory) {
	e := setup(t, f)
	b := hard(ledger.ScopeTeam, "small", ledger.PeriodDay, guaranteeLimit)
	ok, _ := guarantee(t, e, []ledger.Budget{b}, guaranteeN, guaranteeEst, func(int) int64 { return guaranteeEst })
	want := int64(guaranteeLimit / guaranteeEst)
	if ok != want {
		t.Fatalf("%d reservations succeeded, want exactly floor(limit/estimate) = %d", ok, want)
	}
	st := e.snap(b)
	if st.Spent != want*guaranteeEst || st.Reserved != 0 || st.Spent > guaranteeLimit {
		t.Fatalf("final state %+v", st)
	}
}

func testGuaranteeBelow(t *testing.T, f Factory) {
	e := setup(t, f)
	b := hard(ledger.ScopeTeam, "small", ledger.PeriodDay, guaranteeLimit)
	actuals := make([]int64, guaranteeN)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range actuals {
		actuals[i] = rng.Int64N(guaranteeEst + 1)
	}
	ok, _ := guarantee(t, e, []ledger.Budget{b}, guaranteeN, guaranteeEst, func(i int) int64 { return actuals[i] })
	st := e.snap(b)
	if st.Spent > guaranteeLimit {
		t.Fatalf("spent %d > limit %d with actual <= estimate", st.Spent, guaranteeLimit)
	}
	if st.Reserved != 0 {
		t.Fatalf("reserved %d left over", st.Reserved)
	}
	if ok < guaranteeLimit/guaranteeEst {
		t.Fatalf("only %d succeeded, want at least %d", ok, guaranteeLimit/guaranteeEst)
	}
	// Whatever is left cannot take another estimate... unless it can, and then it must.
	_, err := e.s.Reserve(e.ctx, []ledger.Budget{b}, guaranteeEst, time.Minute)
	if fits := st.Spent+guaranteeEst <= guaranteeLimit; fits != (err == nil) {
		t.Fatalf("after the run: spent %d, Reserve(%d) err=%v", st.Spent, guaranteeEst, err)
	}
}

func testGuaranteeAbove(t *testing.T, f Factory) {
	const over = guaranteeEst / 2 // every request costs 1.5x its estimate
	want := int64(guaranteeLimit / guaranteeEst)

	t.Run("AllInFlight", func(t *testing.T) {
		// Every goroutine reserves, all wait, then all commit: everything that succeeded
		// was in flight at once, so the overspend is exactly in-flight x overrun.
		e := setup(t, f)
		b := hard(ledger.ScopeTeam, "small", ledger.PeriodDay, guaranteeLimit)
		var (
			mu  sync.Mutex
			rs  []ledger.Reservation
			wg  sync.WaitGroup
			bar = make(chan struct{})
		)
		for range guaranteeN {
			wg.Go(func() {
				<-bar
				r, err := e.s.Reserve(e.ctx, []ledger.Budget{b}, guaranteeEst, time.Minute)
				if err == nil {
					mu.Lock()
					rs = append(rs, r)
					mu.Unlock()
				} else if !errors.Is(err, ledger.ErrBudgetExceeded) {
					t.Errorf("Reserve: %v", err)
				}
			})
		}
		close(bar)
		wg.Wait()
		if int64(len(rs)) != want {
			t.Fatalf("%d reservations, want %d", len(rs), want)
		}
		for _, r := range rs {
			wg.Go(func() {
				if err := e.s.Commit(e.ctx, r, guaranteeEst+over); err != nil {
					t.Errorf("Commit: %v", err)
				}
			})
		}
		wg.Wait()
		st := e.snap(b)
		if inflight := int64(len(rs)); st.Spent != want*(guaranteeEst+over) || st.Spent > guaranteeLimit+inflight*over {
			t.Fatalf("spent %d, want %d = limit-bounded reservations + %d in flight x %d overrun", st.Spent, want*(guaranteeEst+over), inflight, over)
		}
	})

	t.Run("Interleaved", func(t *testing.T) {
		e := setup(t, f)
		b := hard(ledger.ScopeTeam, "small", ledger.PeriodDay, guaranteeLimit)
		ok, peak := guarantee(t, e, []ledger.Budget{b}, guaranteeN, guaranteeEst, func(int) int64 { return guaranteeEst + over })
		st := e.snap(b)
		// Actual >= estimate never frees room, so no more than floor(limit/estimate) can
		// succeed, and the overspend is at most the overrun of what was in flight.
		if ok > want {
			t.Fatalf("%d succeeded, want at most %d", ok, want)
		}
		if st.Spent != ok*(guaranteeEst+over) || st.Reserved != 0 {
			t.Fatalf("final state %+v after %d successes", st, ok)
		}
		if bound := int64(guaranteeLimit) + min(peak, ok)*over; st.Spent > bound {
			t.Fatalf("spent %d > limit + in-flight overrun %d (peak in flight %d)", st.Spent, bound, peak)
		}
		if _, err := e.s.Reserve(e.ctx, []ledger.Budget{b}, guaranteeEst, time.Minute); !errors.Is(err, ledger.ErrBudgetExceeded) {
			t.Fatalf("Reserve after the budget is spent: %v", err)
		}
		t.Logf("%d succeeded, spent %d of %d, peak in flight %d", ok, st.Spent, guaranteeLimit, peak)
	})
}

func testGuaranteeMulti(t *testing.T, f Factory) {
	e := setup(t, f)
	// Each goroutine uses its own key budget plus a shared team and global budget.
	team := hard(ledger.ScopeTeam, "t", ledger.PeriodDay, 300_000)
	global := hard(ledger.ScopeGlobal, "", ledger.PeriodMonth, 500_000)
	var wg sync.WaitGroup
	var ok atomic.Int64
	start := make(chan struct{})
	for i := range guaranteeN {
		key := hard(ledger.ScopeKey, "k"+string(rune('a'+i%5)), ledger.PeriodDay, 50_000)
		wg.Go(func() {
			<-start
			r, err := e.s.Reserve(e.ctx, []ledger.Budget{key, team, global}, 1_000, time.Minute)
			if errors.Is(err, ledger.ErrBudgetExceeded) {
				return
			}
			if err != nil {
				t.Errorf("Reserve: %v", err)
				return
			}
			ok.Add(1)
			if err := e.s.Commit(e.ctx, r, 1_000); err != nil {
				t.Errorf("Commit: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	// 5 keys x 50 fit per key = 250 <= team's 300: the key budgets bind.
	if ok.Load() != 250 {
		t.Fatalf("%d succeeded, want 250", ok.Load())
	}
	var keys []ledger.Budget
	for i := range 5 {
		keys = append(keys, hard(ledger.ScopeKey, "k"+string(rune('a'+i)), ledger.PeriodDay, 50_000))
	}
	sts, err := e.s.Snapshot(e.ctx, append(keys, team, global))
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, st := range sts[:5] {
		if st.Spent != 50_000 || st.Reserved != 0 {
			t.Fatalf("key %+v", st)
		}
		sum += st.Spent
	}
	if sts[5].Spent != sum || sts[6].Spent != sum {
		t.Fatalf("team %+v global %+v, want spent %d", sts[5], sts[6], sum)
	}
}

// SortedKeys returns the keys of states, sorted (a test helper for store packages).
func SortedKeys(sts []ledger.BudgetState) []string {
	out := make([]string, len(sts))
	for i, s := range sts {
		out[i] = s.Key
	}
	sort.Strings(out)
	return out
}
