package boltstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/ledger/boltstore"
	"github.com/gavel-gw/gavel/engine/ledger/ledgertest"
)

func open(t testing.TB, path string, opts boltstore.Options) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T, now func() time.Time) ledger.Store {
		return open(t, filepath.Join(t.TempDir(), "ledger.db"), boltstore.Options{Now: now})
	})
}

func TestConformanceBoltBatch(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T, now func() time.Time) ledger.Store {
		return open(t, filepath.Join(t.TempDir(), "ledger.db"), boltstore.Options{Now: now, Batching: boltstore.BoltBatch})
	})
}

func TestConformanceNoBatch(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T, now func() time.Time) ledger.Store {
		return open(t, filepath.Join(t.TempDir(), "ledger.db"), boltstore.Options{Now: now, Batching: boltstore.NoBatch})
	})
}

// A restart loses no committed spend: close, reopen, and everything committed is there.
func TestReopenKeepsSpend(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	clock := ledgertest.NewClock(ledgertest.Start)
	day := ledger.Budget{Scope: ledger.ScopeTeam, ID: "search", Period: ledger.PeriodDay, LimitMicroUSD: 1_000_000, Hard: true}
	month := ledger.Budget{Scope: ledger.ScopeTeam, ID: "search", Period: ledger.PeriodMonth, LimitMicroUSD: 5_000_000}

	s := open(t, path, boltstore.Options{Now: clock.Now})
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			r, err := s.Reserve(ctx, []ledger.Budget{day, month}, 5_000, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			if err := s.Commit(ctx, r, 4_000); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// An open reservation at shutdown is not carried over.
	if _, err := s.Reserve(ctx, []ledger.Budget{day}, 100_000, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path, boltstore.Options{Now: clock.Now})
	defer s.Close()
	st, err := s.Snapshot(ctx, []ledger.Budget{day, month})
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Spent != 400_000 || st[0].Reserved != 0 || st[1].Spent != 400_000 {
		t.Fatalf("after reopen: %+v", st)
	}
	// Enforcement resumes from the durable spend.
	if _, err := s.Reserve(ctx, []ledger.Budget{day}, 600_001, time.Minute); !errors.Is(err, ledger.ErrBudgetExceeded) {
		t.Fatalf("Reserve over the reloaded budget: %v", err)
	}
	all, err := s.Spend(ctx, ledger.ScopeTeam, "search")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Spent != 400_000 || all[0].Limit != 1_000_000 || !all[0].Budget.Hard || all[1].Limit != 5_000_000 {
		t.Fatalf("Spend after reopen: %+v", all)
	}
	// Next day: yesterday is still listed from the file (no longer in memory).
	clock.Advance(48 * time.Hour)
	r, err := s.Reserve(ctx, []ledger.Budget{day}, 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, r, 1); err != nil {
		t.Fatal(err)
	}
	all, err = s.Spend(ctx, ledger.ScopeTeam, "search")
	if err != nil {
		t.Fatal(err)
	}
	if got := ledgertest.SortedKeys(all); len(got) != 3 || got[0] != "team:search:day:2026-11-22" || got[1] != "team:search:day:2026-11-24" {
		t.Fatalf("Spend keys: %v", got)
	}
}

// Single process: a second Open of the same file fails instead of corrupting it.
func TestExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s := open(t, path, boltstore.Options{})
	defer s.Close()
	start := time.Now()
	if _, err := boltstore.Open(path, boltstore.Options{OpenTimeout: 100 * time.Millisecond}); err == nil {
		t.Fatal("second Open succeeded")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("second Open did not time out promptly")
	}
}

// Periods older than the retention are deleted from the file at Open.
func TestRetention(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	clock := ledgertest.NewClock(ledgertest.Start)
	b := ledger.Budget{Scope: ledger.ScopeKey, ID: "k", Period: ledger.PeriodDay, LimitMicroUSD: 10}
	s := open(t, path, boltstore.Options{Now: clock.Now, Retention: 24 * time.Hour})
	r, _ := s.Reserve(ctx, []ledger.Budget{b}, 1, time.Minute)
	if err := s.Commit(ctx, r, 1); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	clock.Advance(72 * time.Hour)
	s = open(t, path, boltstore.Options{Now: clock.Now, Retention: 24 * time.Hour})
	defer s.Close()
	all, err := s.Spend(ctx, ledger.ScopeKey, "k")
	if err != nil || len(all) != 0 {
		t.Fatalf("Spend after retention = %+v, %v", all, err)
	}
}

func BenchmarkReserveCommit(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts boltstore.Options
	}{
		{"group", boltstore.Options{}},
		{"boltbatch", boltstore.Options{Batching: boltstore.BoltBatch}},
		{"nobatch", boltstore.Options{Batching: boltstore.NoBatch}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := open(b, filepath.Join(b.TempDir(), "ledger.db"), bc.opts)
			defer s.Close()
			ledgertest.BenchReserveCommit(b, s)
		})
	}
}
