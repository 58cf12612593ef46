package ledgertest

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/ledger"
)

// BenchReserveCommit measures one request's ledger work, Reserve then Commit over three
// budgets (key, team, global), in two sub-benchmarks: "conc=1" (one goroutine) and
// "conc=64" (64 goroutines, like a loaded gateway). It reports ops/s (one op =
// Reserve+Commit) and the p50/p99 latency of an op in µs, computed from every recorded
// latency.
func BenchReserveCommit(b *testing.B, s ledger.Store) {
	b.Helper()
	b.Run("conc=1", func(b *testing.B) { benchReserveCommit(b, s, 1) })
	b.Run("conc=64", func(b *testing.B) { benchReserveCommit(b, s, 64) })
}

func benchReserveCommit(b *testing.B, s ledger.Store, conc int) {
	ctx := context.Background()
	const big = int64(1) << 50
	budgets := []ledger.Budget{
		{Scope: ledger.ScopeKey, ID: "bench-key", Period: ledger.PeriodDay, LimitMicroUSD: big, Hard: true},
		{Scope: ledger.ScopeTeam, ID: "bench-team", Period: ledger.PeriodMonth, LimitMicroUSD: big, Hard: true},
		{Scope: ledger.ScopeGlobal, Period: ledger.PeriodDay, LimitMicroUSD: big},
	}
	var (
		mu  sync.Mutex
		all []time.Duration
	)
	b.ReportAllocs()
	var wg sync.WaitGroup
	var next atomic.Int64
	b.ResetTimer()
	for range conc {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1024)
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				r, err := s.Reserve(ctx, budgets, 1_000, time.Minute)
				if err != nil {
					b.Error(err)
					return
				}
				if err := s.Commit(ctx, r, 900); err != nil {
					b.Error(err)
					return
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	b.StopTimer()
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		i := int(p * float64(len(all)-1))
		return float64(all[i].Nanoseconds()) / 1e3
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
