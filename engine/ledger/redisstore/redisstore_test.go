package redisstore

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/ledger/ledgertest"
	"github.com/gavel-gw/gavel/engine/ledger/memstore"
)

func uniquePrefix() string { return "test-" + ledger.NewID()[:12] }

func TestConformance(t *testing.T) {
	srv := startRedis(t)
	c := srv.client(t)
	ledgertest.Run(t, func(t *testing.T, now func() time.Time) ledger.Store {
		return New(c, Options{Now: now, Prefix: uniquePrefix()})
	})
}

// Two stores on the same Redis and prefix are two replicas: they share budgets and the
// guarantee holds across them.
func TestReplicasShareBudgets(t *testing.T) {
	srv := startRedis(t)
	prefix := uniquePrefix()
	a := New(srv.client(t), Options{Prefix: prefix})
	b := New(srv.client(t), Options{Prefix: prefix})
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	budget := ledger.Budget{Scope: ledger.ScopeProject, ID: "p", Period: ledger.PeriodMonth, LimitMicroUSD: 100_000, Hard: true}
	var ok atomic.Int64
	done := make(chan struct{})
	for i := range 200 {
		s := a
		if i%2 == 1 {
			s = b
		}
		go func() {
			defer func() { done <- struct{}{} }()
			r, err := s.Reserve(ctx, []ledger.Budget{budget}, 1_000, time.Minute)
			if errors.Is(err, ledger.ErrBudgetExceeded) {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			ok.Add(1)
			if err := s.Commit(ctx, r, 1_000); err != nil {
				t.Error(err)
			}
		}()
	}
	for range 200 {
		<-done
	}
	if ok.Load() != 100 {
		t.Fatalf("%d reservations across two replicas, want 100", ok.Load())
	}
	st, err := b.Snapshot(ctx, []ledger.Budget{budget})
	if err != nil || st[0].Spent != 100_000 {
		t.Fatalf("snapshot %+v %v", st, err)
	}
}

// EVALSHA falls back to EVAL when Redis lost its script cache (restart, SCRIPT FLUSH).
func TestScriptCacheFlushed(t *testing.T) {
	srv := startRedis(t)
	c := srv.client(t)
	s := New(c, Options{Prefix: uniquePrefix()})
	defer s.Close()
	ctx := context.Background()
	b := ledger.Budget{Scope: ledger.ScopeKey, ID: "k", Period: ledger.PeriodDay, LimitMicroUSD: 10, Hard: true}
	for range 3 {
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		r, err := s.Reserve(ctx, []ledger.Budget{b}, 1, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, r, 1); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := s.Snapshot(ctx, []ledger.Budget{b}); st[0].Spent != 3 {
		t.Fatalf("spent %d", st[0].Spent)
	}
	if s.Stats().Unavailable != 0 {
		t.Fatal("NOSCRIPT counted as unavailability")
	}
}

// Keys carry TTLs so old periods and idle windows disappear from Redis.
func TestKeyTTLs(t *testing.T) {
	srv := startRedis(t)
	c := srv.client(t)
	clock := ledgertest.NewClock(ledgertest.Start) // 10:00, so the day ends in 14h
	prefix := uniquePrefix()
	s := New(c, Options{Now: clock.Now, Prefix: prefix, Retention: 48 * time.Hour, TombstoneTTL: time.Hour})
	defer s.Close()
	ctx := context.Background()
	b := ledger.Budget{Scope: ledger.ScopeKey, ID: "k", Period: ledger.PeriodDay, LimitMicroUSD: 10}
	r, err := s.Reserve(ctx, []ledger.Budget{b}, 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	l := ledger.RateLimit{Scope: ledger.ScopeKey, ID: "k", RequestsPerMinute: 10}
	if _, err := s.Allow(ctx, []ledger.RateLimit{l}, 5); err != nil {
		t.Fatal(err)
	}
	check := func(key string, lo, hi time.Duration) {
		t.Helper()
		ttl, err := c.PTTL(ctx, key).Result()
		if err != nil || ttl < lo || ttl > hi {
			t.Fatalf("PTTL(%s) = %v, %v; want in [%v, %v]", key, ttl, err, lo, hi)
		}
	}
	p := "{" + prefix + "}"
	check(p+":b:key:k:day:2026-11-22", 61*time.Hour, 62*time.Hour)
	check(p+":z:key:k:day:2026-11-22", 61*time.Hour, 62*time.Hour)
	check(p+":i:key:k", 61*time.Hour, 62*time.Hour)
	check(p+":r:"+r.ID, time.Minute, 2*time.Minute)
	check(p+":l:key:k", 2*time.Minute, 2*time.Minute+5*time.Second)
	if err := s.Commit(ctx, r, 1); err != nil {
		t.Fatal(err)
	}
	check(p+":r:"+r.ID, 59*time.Minute, time.Hour)
}

func newPair(t *testing.T, srv *redisServer, mode FailureMode, calls *atomic.Int64, prefix string) *Store {
	return New(srv.client(t), Options{Prefix: prefix, FailureMode: mode, RetryInterval: 50 * time.Millisecond,
		OnUnavailable: func(op string, err error) { calls.Add(1) }})
}

// Redis killed mid-run: fail-closed returns ErrStoreUnavailable, fail-open keeps
// serving from the local fallback, seeded with the spend last seen in Redis.
func TestRedisKilled(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	prefix := uniquePrefix()
	var closedCalls, openCalls atomic.Int64
	closed := newPair(t, srv, FailClosed, &closedCalls, prefix)
	open := newPair(t, srv, FailOpen, &openCalls, prefix)
	defer closed.Close()
	defer open.Close()

	b := ledger.Budget{Scope: ledger.ScopeTeam, ID: "t", Period: ledger.PeriodDay, LimitMicroUSD: 10_000, Hard: true}
	l := ledger.RateLimit{Scope: ledger.ScopeTeam, ID: "t", RequestsPerMinute: 1000}
	for _, s := range []*Store{closed, open} {
		r, err := s.Reserve(ctx, []ledger.Budget{b}, 2_000, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, r, 2_000); err != nil {
			t.Fatal(err)
		}
	}
	inflightClosed, err := closed.Reserve(ctx, []ledger.Budget{b}, 500, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	inflightOpen, err := open.Reserve(ctx, []ledger.Budget{b}, 500, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := open.Snapshot(ctx, []ledger.Budget{b}); err != nil || st[0].Spent != 4_000 {
		t.Fatalf("before the kill: %+v %v", st, err)
	}

	srv.Kill()

	// Fail closed: every call that needs Redis says so.
	if _, err := closed.Reserve(ctx, []ledger.Budget{b}, 1, time.Minute); !errors.Is(err, ledger.ErrStoreUnavailable) {
		t.Fatalf("fail-closed Reserve: %v", err)
	}
	if _, err := closed.Allow(ctx, []ledger.RateLimit{l}, 1); !errors.Is(err, ledger.ErrStoreUnavailable) {
		t.Fatalf("fail-closed Allow: %v", err)
	}
	if _, err := closed.Snapshot(ctx, []ledger.Budget{b}); !errors.Is(err, ledger.ErrStoreUnavailable) {
		t.Fatalf("fail-closed Snapshot: %v", err)
	}
	if _, err := closed.RateState(ctx, []ledger.RateLimit{l}); !errors.Is(err, ledger.ErrStoreUnavailable) {
		t.Fatalf("fail-closed RateState: %v", err)
	}
	if err := closed.Commit(ctx, inflightClosed, 400); !errors.Is(err, ledger.ErrStoreUnavailable) {
		t.Fatalf("fail-closed Commit: %v", err)
	}
	if st := closed.Stats(); st.Unavailable < 5 || !st.Degraded || st.PendingCommits != 1 || st.FallbackOps != 0 {
		t.Fatalf("fail-closed stats: %+v", st)
	}
	if closedCalls.Load() < 5 {
		t.Fatalf("OnUnavailable called %d times", closedCalls.Load())
	}
	// Inside the backoff window calls fail at once, without waiting on the network.
	start := time.Now()
	for range 100 {
		if _, err := closed.Reserve(ctx, []ledger.Budget{b}, 1, time.Minute); !errors.Is(err, ledger.ErrStoreUnavailable) {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("100 fail-closed Reserves took %v", d)
	}

	// Fail open: served locally, budgets still enforced from the last seen spend.
	r, err := open.Reserve(ctx, []ledger.Budget{b}, 3_000, time.Minute)
	if err != nil {
		t.Fatalf("fail-open Reserve: %v", err)
	}
	if !strings.HasPrefix(r.ID, fallbackPrefix) {
		t.Fatalf("fallback reservation id %q", r.ID)
	}
	st, err := open.Snapshot(ctx, []ledger.Budget{b})
	if err != nil || st[0].Spent != 4_000 || st[0].Reserved != 3_000 {
		t.Fatalf("fail-open Snapshot: %+v %v", st, err)
	}
	if _, err := open.Reserve(ctx, []ledger.Budget{b}, 3_001, time.Minute); !errors.Is(err, ledger.ErrBudgetExceeded) {
		t.Fatalf("fail-open over budget: %v", err)
	}
	if err := open.Commit(ctx, r, 2_500); err != nil {
		t.Fatalf("fail-open Commit: %v", err)
	}
	if err := open.Commit(ctx, inflightOpen, 500); err != nil {
		t.Fatalf("fail-open Commit of a Redis reservation: %v", err)
	}
	st, err = open.Snapshot(ctx, []ledger.Budget{b})
	if err != nil || st[0].Spent != 7_000 || st[0].Reserved != 0 {
		t.Fatalf("fail-open Snapshot after commits: %+v %v", st, err)
	}
	if d, err := open.Allow(ctx, []ledger.RateLimit{l}, 10); err != nil || !d.Allowed {
		t.Fatalf("fail-open Allow: %+v %v", d, err)
	}
	if err := open.AddTokens(ctx, []ledger.RateLimit{l}, 5); err != nil {
		t.Fatalf("fail-open AddTokens: %v", err)
	}
	if rs, err := open.RateState(ctx, []ledger.RateLimit{l}); err != nil || rs[0].Tokens != 15 {
		t.Fatalf("fail-open RateState: %+v %v", rs, err)
	}
	if _, err := open.Spend(ctx, ledger.ScopeTeam, "t"); !errors.Is(err, ledger.ErrStoreUnavailable) {
		t.Fatalf("Spend needs Redis: %v", err)
	}
	if st := open.Stats(); st.Unavailable == 0 || st.FallbackOps < 6 || st.PendingCommits != 2 || !st.Degraded {
		t.Fatalf("fail-open stats: %+v", st)
	}
	if openCalls.Load() == 0 {
		t.Fatal("OnUnavailable not called in fail-open")
	}
	if err := open.Close(); !errors.Is(err, ledger.ErrStoreUnavailable) {
		t.Fatalf("Close with unreplayable commits: %v", err)
	}
}

// An outage and recovery through a proxy (Redis keeps its data): commits made during
// the outage are replayed exactly once, and Redis is used again afterwards.
func TestOutageRecoveryReplay(t *testing.T) {
	srv := startRedis(t)
	px := startProxy(t, srv.Addr)
	ctx := context.Background()
	prefix := uniquePrefix()
	var calls atomic.Int64
	s := New(newClient(t, px.Addr()), Options{Prefix: prefix, FailureMode: FailOpen, RetryInterval: 50 * time.Millisecond,
		OnUnavailable: func(string, error) { calls.Add(1) }})
	defer s.Close()
	direct := New(srv.client(t), Options{Prefix: prefix})
	defer direct.Close()

	b := ledger.Budget{Scope: ledger.ScopeKey, ID: "k", Period: ledger.PeriodDay, LimitMicroUSD: 1_000_000, Hard: true}
	r1, err := s.Reserve(ctx, []ledger.Budget{b}, 1_000, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	px.Down()
	r2, err := s.Reserve(ctx, []ledger.Budget{b}, 1_000, time.Minute) // local
	if err != nil || !strings.HasPrefix(r2.ID, fallbackPrefix) {
		t.Fatalf("Reserve during outage: %+v %v", r2, err)
	}
	if err := s.Commit(ctx, r1, 700); err != nil { // Redis reservation, queued
		t.Fatal(err)
	}
	if err := s.Commit(ctx, r2, 800); err != nil { // local reservation, queued
		t.Fatal(err)
	}
	if st := s.Stats(); st.PendingCommits != 2 {
		t.Fatalf("stats during outage: %+v", st)
	}
	px.Up()
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().PendingCommits != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queued commits not replayed: %+v", s.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := direct.Snapshot(ctx, []ledger.Budget{b})
	if err != nil || st[0].Spent != 1_500 || st[0].Reserved != 0 {
		t.Fatalf("Redis after replay: %+v %v", st, err)
	}
	if s.Stats().Replayed != 2 {
		t.Fatalf("stats: %+v", s.Stats())
	}
	// A replay of a commit that had landed (reply lost) is not charged again.
	s.enqueue(pendingCommit{r: r1, actual: 700})
	s.flush(ctx)
	if st, _ := direct.Snapshot(ctx, []ledger.Budget{b}); st[0].Spent != 1_500 {
		t.Fatalf("replayed commit charged twice: %+v", st)
	}
	// Back on Redis: new reservations are Redis ones and the fallback is gone.
	r3, err := s.Reserve(ctx, []ledger.Budget{b}, 1, time.Minute)
	if err != nil || strings.HasPrefix(r3.ID, fallbackPrefix) {
		t.Fatalf("Reserve after recovery: %+v %v", r3, err)
	}
	if st := s.Stats(); st.Degraded {
		t.Fatalf("still degraded: %+v", st)
	}
	s.mu.Lock()
	fb := s.fb
	s.mu.Unlock()
	if fb != nil {
		t.Fatal("fallback kept after recovery")
	}
}

// A retried Reserve (reply lost, client retries the same script) reserves once.
func TestReserveScriptIdempotent(t *testing.T) {
	srv := startRedis(t)
	c := srv.client(t)
	s := New(c, Options{Prefix: uniquePrefix()})
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	b := ledger.Budget{Scope: ledger.ScopeKey, ID: "k", Period: ledger.PeriodDay, LimitMicroUSD: 100, Hard: true}
	r, rbs, err := ledger.NewReservation([]ledger.Budget{b}, 60, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{s.res(r.ID), s.bk(rbs[0].Key), s.bz(rbs[0].Key), s.idx(b.Scope, b.ID)}
	args := []any{now.UnixMilli(), r.ExpiresAt.UnixMilli(), 60, r.ID, 120_000, 100, 1, 3_600_000}
	for range 2 {
		if err := reserveScript.Run(ctx, c, keys, args...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := s.Snapshot(ctx, []ledger.Budget{b})
	if st[0].Reserved != 60 {
		t.Fatalf("reserved %d after a retried script, want 60", st[0].Reserved)
	}
	if err := s.Release(ctx, r); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Snapshot(ctx, []ledger.Budget{b}); st[0].Reserved != 0 {
		t.Fatalf("reserved %d after release", st[0].Reserved)
	}
}

// The Lua rate-limit arithmetic agrees with ledger.Evaluate (used by memstore) on a
// random workload: same decisions, same states.
func TestRateLuaMatchesGo(t *testing.T) {
	srv := startRedis(t)
	clock := ledgertest.NewClock(ledgertest.Start.Add(17 * time.Second))
	rs := New(srv.client(t), Options{Now: clock.Now, Prefix: uniquePrefix()})
	defer rs.Close()
	ms := memstore.New(memstore.Options{Now: clock.Now})
	ctx := context.Background()
	limits := []ledger.RateLimit{
		{Scope: ledger.ScopeKey, ID: "a", RequestsPerMinute: 7, TokensPerMinute: 900},
		{Scope: ledger.ScopeTeam, ID: "b", RequestsPerMinute: 20},
		{Scope: ledger.ScopeGlobal, TokensPerMinute: 2_000},
	}
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 600 {
		ls := []ledger.RateLimit{limits[rng.IntN(3)]}
		if rng.IntN(2) == 0 {
			ls = append(ls, limits[rng.IntN(3)])
		}
		switch rng.IntN(10) {
		case 0:
			clock.Advance(time.Duration(rng.IntN(40_000)) * time.Millisecond)
		case 1:
			n := int64(rng.IntN(400) - 200)
			if err := rs.AddTokens(ctx, ls, n); err != nil {
				t.Fatal(err)
			}
			if err := ms.AddTokens(ctx, ls, n); err != nil {
				t.Fatal(err)
			}
		default:
			tok := int64(rng.IntN(300))
			d1, err := rs.Allow(ctx, ls, tok)
			if err != nil {
				t.Fatal(err)
			}
			d2, _ := ms.Allow(ctx, ls, tok)
			if !reflect.DeepEqual(d1, d2) {
				t.Fatalf("step %d: redis %+v\nmemory %+v", i, d1, d2)
			}
		}
		s1, err := rs.RateState(ctx, limits)
		if err != nil {
			t.Fatal(err)
		}
		s2, _ := ms.RateState(ctx, limits)
		if !reflect.DeepEqual(s1, s2) {
			t.Fatalf("step %d: redis state %+v\nmemory state %+v", i, s1, s2)
		}
	}
}

func BenchmarkReserveCommit(b *testing.B) {
	srv := startRedis(b)
	c := newClient(b, srv.Addr)
	s := New(c, Options{Prefix: uniquePrefix()})
	defer s.Close()
	ledgertest.BenchReserveCommit(b, s)
}

// Fail-open under churn: Redis comes and goes while requests run; every call succeeds
// (from Redis or the fallback), nothing deadlocks, and once Redis is back for good all
// queued commits reach it.
func TestFailOpenChurn(t *testing.T) {
	srv := startRedis(t)
	px := startProxy(t, srv.Addr)
	ctx := context.Background()
	s := New(newClient(t, px.Addr()), Options{Prefix: uniquePrefix(), FailureMode: FailOpen, RetryInterval: 10 * time.Millisecond})
	defer s.Close()
	b := ledger.Budget{Scope: ledger.ScopeTeam, ID: "t", Period: ledger.PeriodDay, LimitMicroUSD: 1 << 40, Hard: true}
	l := ledger.RateLimit{Scope: ledger.ScopeTeam, ID: "t", RequestsPerMinute: 1 << 30}
	stop := make(chan struct{})
	flipped := make(chan struct{})
	go func() {
		defer close(flipped)
		for i := 0; ; i++ {
			select {
			case <-stop:
				px.Up()
				return
			case <-time.After(15 * time.Millisecond):
			}
			if i%2 == 0 {
				px.Down()
			} else {
				px.Up()
			}
		}
	}()
	var committed atomic.Int64
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for range 150 {
				r, err := s.Reserve(ctx, []ledger.Budget{b}, 10, time.Minute)
				if err != nil {
					errs <- err
					return
				}
				if _, err := s.Allow(ctx, []ledger.RateLimit{l}, 1); err != nil {
					errs <- err
					return
				}
				if err := s.Commit(ctx, r, 10); err != nil {
					errs <- err
					return
				}
				committed.Add(10)
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatalf("fail-open call failed: %v", err)
		}
	}
	close(stop)
	<-flipped
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().PendingCommits != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("pending commits not replayed: %+v", s.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	direct := New(srv.client(t), Options{Prefix: s.opts.Prefix})
	defer direct.Close()
	st, err := direct.Snapshot(ctx, []ledger.Budget{b})
	if err != nil {
		t.Fatal(err)
	}
	// Every commit reached Redis exactly once.
	if st[0].Spent != committed.Load() {
		t.Fatalf("Redis spent %d, committed %d (stats %+v)", st[0].Spent, committed.Load(), s.Stats())
	}
	t.Logf("stats: %+v", s.Stats())
}

// A Reserve whose reply is lost (Redis busy past the client's read timeout) may still have
// reserved: the store cannot tell, so it gives the reservation back once Redis answers,
// instead of leaving the amount held until the reservation's TTL. Both failure modes.
func TestReserveReplyLostIsReleased(t *testing.T) {
	srv := startRedis(t)
	for _, mode := range []FailureMode{FailClosed, FailOpen} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := context.Background()
			prefix := uniquePrefix()
			c := redis.NewClient(&redis.Options{Addr: srv.Addr, ReadTimeout: 100 * time.Millisecond, MaxRetries: -1})
			defer c.Close()
			// A retry interval long enough that the landed reservation is seen before the
			// release is replayed.
			s := New(c, Options{Prefix: prefix, FailureMode: mode, RetryInterval: 2 * time.Second})
			defer s.Close()
			direct := New(srv.client(t), Options{Prefix: prefix})
			defer direct.Close()
			b := ledger.Budget{Scope: ledger.ScopeTeam, ID: "t", Period: ledger.PeriodDay, LimitMicroUSD: 1_000_000, Hard: true}
			// A connection and the script in Redis's cache, so the Reserve below is one
			// EVALSHA on an open connection.
			if r, err := s.Reserve(ctx, []ledger.Budget{b}, 1, time.Hour); err != nil || s.Release(ctx, r) != nil {
				t.Fatal(err)
			}
			// Keep Redis busy for 800 ms: the Reserve sent meanwhile runs after it, once the
			// client has given up on the reply.
			busy := make(chan error, 1)
			go func() {
				bc := redis.NewClient(&redis.Options{Addr: srv.Addr, ReadTimeout: 5 * time.Second})
				defer bc.Close()
				busy <- bc.Eval(ctx, `local t = redis.call('TIME'); local e = t[1]*1000000 + t[2] + 800000
					repeat t = redis.call('TIME') until t[1]*1000000 + t[2] >= e; return 1`, nil).Err()
			}()
			time.Sleep(150 * time.Millisecond)
			r, err := s.Reserve(ctx, []ledger.Budget{b}, 700, time.Hour)
			if mode == FailClosed && !errors.Is(err, ledger.ErrStoreUnavailable) {
				t.Fatalf("Reserve with the reply lost: %+v %v", r, err)
			}
			if mode == FailOpen && (err != nil || !strings.HasPrefix(r.ID, fallbackPrefix)) {
				t.Fatalf("fail-open Reserve with the reply lost: %+v %v", r, err)
			}
			if err := <-busy; err != nil {
				t.Fatal(err)
			}
			if st, err := direct.Snapshot(ctx, []ledger.Budget{b}); err != nil || st[0].Reserved != 700 {
				t.Fatalf("the Reserve whose reply was lost did not land (the test needs it to): %+v %v", st, err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				st, err := direct.Snapshot(ctx, []ledger.Budget{b})
				if err == nil && st[0].Reserved == 0 && s.Stats().PendingReleases == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the lost Reserve still holds %+v (%v), stats %+v", st, err, s.Stats())
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
