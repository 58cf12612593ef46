package memstore_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/ledger/ledgertest"
	"github.com/gavel-gw/gavel/engine/ledger/memstore"
)

// heapAlloc is the live heap after a full collection.
func heapAlloc() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// settle reserves and commits n requests the way the pipeline does (one team budget,
// the default reservation TTL), the clock moving 1 ms a request.
func settle(t testing.TB, s *memstore.Store, c *ledgertest.Clock, n int) {
	t.Helper()
	ctx := context.Background()
	b := []ledger.Budget{{Scope: ledger.ScopeTeam, ID: "drill", Period: ledger.PeriodDay, LimitMicroUSD: 1 << 50, Hard: true}}
	for range n {
		r, err := s.Reserve(ctx, b, 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, r, 90); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Millisecond)
	}
}

// maxSettledBytes bounds what one settled reservation may keep in memory while its
// tombstone lives (ledger.DefaultTombstoneTTL): a store under steady load holds rate x TTL
// of them (600,000 at 1,000 req/s), so each must be a few words, not a reservation record.
const maxSettledBytes = 128

// A settled reservation keeps only its tombstone: its id and when to forget it. The
// drills' soak found the store holding ~570 bytes per request (the whole reservation,
// its key strings, and two deadline-heap entries, one of them for the 15-minute
// reservation TTL, longer than the tombstone itself), enough to climb by hundreds of MB
// for a quarter of an hour under load.
func TestSettledReservationIsSmall(t *testing.T) {
	const n = 50_000
	c := ledgertest.NewClock(ledgertest.Start)
	s := memstore.New(memstore.Options{Now: c.Now})
	settle(t, s, c, 100) // the budget's own record, allocated once
	before := heapAlloc()
	settle(t, s, c, n)
	after := heapAlloc()
	if got := s.Tracked(); got != n+100 {
		t.Fatalf("tracked %d reservations, want %d tombstones", got, n+100)
	}
	per := (float64(after) - float64(before)) / n
	t.Logf("%.0f bytes per settled reservation", per)
	if per > maxSettledBytes {
		t.Errorf("each settled reservation keeps %.0f bytes of heap, want at most %d", per, maxSettledBytes)
	}
	runtime.KeepAlive(s)
}

// Under steady load the store's memory plateaus once the oldest tombstones expire, at
// rate x TombstoneTTL, and nothing waits for the longer reservation TTL: with tombstones
// kept 1 minute and reservations made for 15, the heap after 3 minutes and after 6
// minutes of load is the same.
func TestSteadyLoadPlateaus(t *testing.T) {
	c := ledgertest.NewClock(ledgertest.Start)
	s := memstore.New(memstore.Options{Now: c.Now, TombstoneTTL: time.Minute})
	const perMinute = 60_000 // 1,000 req/s, the clock moving 1 ms a request
	settle(t, s, c, 3*perMinute)
	mid, midTracked := heapAlloc(), s.Tracked()
	settle(t, s, c, 3*perMinute)
	end, endTracked := heapAlloc(), s.Tracked()
	t.Logf("tracked %d → %d, heap %.1f → %.1f MB", midTracked, endTracked, float64(mid)/(1<<20), float64(end)/(1<<20))
	if endTracked > perMinute+1000 {
		t.Errorf("%d reservation records after 6 minutes with a 1-minute tombstone TTL, want at most %d", endTracked, perMinute+1000)
	}
	if grow := float64(end) - float64(mid); grow > 1<<20 {
		t.Errorf("heap grew %.1f MB from minute 3 to minute 6 of steady load: not a plateau", grow/(1<<20))
	}
	runtime.KeepAlive(s)
}

// A burst's tombstones give their memory back once they expire: Go maps never shrink,
// so without a rebuild the store would keep a peak's worth of buckets for good.
func TestBurstMemoryReturned(t *testing.T) {
	c := ledgertest.NewClock(ledgertest.Start)
	s := memstore.New(memstore.Options{Now: c.Now}) // tombstones kept 10 minutes
	settle(t, s, c, 100)
	base := heapAlloc()
	settle(t, s, c, 200_000) // 200 s of a 1,000 req/s burst
	peak := heapAlloc()
	if got := s.Tracked(); got != 200_100 {
		t.Fatalf("tracked %d at the burst's peak, want 200100", got)
	}
	c.Advance(11 * time.Minute) // past every tombstone, and past the once-a-minute prune
	settle(t, s, c, 100)
	after := heapAlloc()
	t.Logf("heap %.1f MB → %.1f MB at the burst's peak → %.1f MB after it expired", float64(base)/(1<<20), float64(peak)/(1<<20), float64(after)/(1<<20))
	if got := s.Tracked(); got != 100 {
		t.Fatalf("tracked %d after the burst expired, want the last 100", got)
	}
	if kept := float64(after) - float64(base); kept > 1<<20 {
		t.Errorf("%.1f MB still held after the burst's tombstones expired", kept/(1<<20))
	}
	runtime.KeepAlive(s)
}

// A Commit that could not be made durable leaves no tombstone, and the tombstone of the
// retry that succeeded is not forgotten when the first attempt's deadline passes.
func TestRetriedCommitKeepsItsTombstone(t *testing.T) {
	c := ledgertest.NewClock(ledgertest.Start)
	p := &flakyPersister{fail: true}
	s := memstore.New(memstore.Options{Now: c.Now, TombstoneTTL: time.Minute, Persister: p})
	ctx := context.Background()
	b := []ledger.Budget{{Scope: ledger.ScopeKey, ID: "k", Period: ledger.PeriodDay, LimitMicroUSD: 100}}
	r, err := s.Reserve(ctx, b, 50, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, r, 40); err == nil {
		t.Fatal("Commit with a failing persister succeeded")
	}
	c.Advance(30 * time.Second)
	p.fail = false
	if err := s.Commit(ctx, r, 40); err != nil {
		t.Fatalf("retried Commit: %v", err)
	}
	c.Advance(45 * time.Second) // past the first attempt's deadline, not the retry's
	if err := s.Commit(ctx, r, 40); !errors.Is(err, ledger.ErrAlreadySettled) {
		t.Fatalf("Commit 75 s after the first attempt, 45 s after the retry: %v, want ErrAlreadySettled", err)
	}
	if p.applied != 40 {
		t.Fatalf("persisted %d, want 40", p.applied)
	}
}
