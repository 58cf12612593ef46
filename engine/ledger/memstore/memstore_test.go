package memstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/ledger/ledgertest"
	"github.com/gavel-gw/gavel/engine/ledger/memstore"
)

func TestConformance(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T, now func() time.Time) ledger.Store {
		return memstore.New(memstore.Options{Now: now})
	})
}

func TestClosed(t *testing.T) {
	s := memstore.New(memstore.Options{})
	_ = s.Close()
	b := ledger.Budget{Scope: ledger.ScopeKey, ID: "k", Period: ledger.PeriodDay, LimitMicroUSD: 1}
	if _, err := s.Reserve(context.Background(), []ledger.Budget{b}, 1, time.Minute); !errors.Is(err, ledger.ErrClosed) {
		t.Fatalf("Reserve after Close: %v", err)
	}
}

// Expired reservations and tombstones are dropped from memory.
func TestSweepFreesMemory(t *testing.T) {
	c := ledgertest.NewClock(ledgertest.Start)
	s := memstore.New(memstore.Options{Now: c.Now, TombstoneTTL: time.Minute})
	b := ledger.Budget{Scope: ledger.ScopeKey, ID: "k", Period: ledger.PeriodDay, LimitMicroUSD: 1 << 40}
	ctx := context.Background()
	for i := range 1000 {
		r, err := s.Reserve(ctx, []ledger.Budget{b}, 1, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := s.Commit(ctx, r, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := s.Live(); n != 500 {
		t.Fatalf("live = %d, want 500", n)
	}
	c.Advance(2 * time.Second)
	if n := s.Live(); n != 0 {
		t.Fatalf("live after expiry = %d", n)
	}
	c.Advance(2 * time.Minute)
	if n := s.Tracked(); n != 0 {
		t.Fatalf("%d reservation records kept after their tombstones expired", n)
	}
}

func BenchmarkReserveCommit(b *testing.B) {
	ledgertest.BenchReserveCommit(b, memstore.New(memstore.Options{}))
}

type flakyPersister struct {
	fail    bool
	applied int64
}

func (p *flakyPersister) Load([]string) (map[string]memstore.Record, error) { return nil, nil }
func (p *flakyPersister) List(string, string) ([]memstore.Record, error)    { return nil, nil }
func (p *flakyPersister) Apply(ds []memstore.Delta) error {
	if p.fail {
		return errors.New("disk full")
	}
	for _, d := range ds {
		p.applied += d.SpentDelta
	}
	return nil
}

// A Commit whose persistence fails is undone in memory and reported; retrying it
// charges exactly once.
func TestPersistFailure(t *testing.T) {
	p := &flakyPersister{fail: true}
	s := memstore.New(memstore.Options{Persister: p})
	ctx := context.Background()
	b := ledger.Budget{Scope: ledger.ScopeKey, ID: "k", Period: ledger.PeriodDay, LimitMicroUSD: 100, Hard: true}
	r, err := s.Reserve(ctx, []ledger.Budget{b}, 50, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, r, 40); !errors.Is(err, ledger.ErrStoreUnavailable) {
		t.Fatalf("Commit with failing persister: %v", err)
	}
	st, _ := s.Snapshot(ctx, []ledger.Budget{b})
	if st[0].Spent != 0 || st[0].Reserved != 0 {
		t.Fatalf("after failed commit: %+v", st[0])
	}
	p.fail = false
	if err := s.Commit(ctx, r, 40); err != nil {
		t.Fatalf("retried Commit: %v", err)
	}
	if err := s.Commit(ctx, r, 40); !errors.Is(err, ledger.ErrAlreadySettled) {
		t.Fatalf("third Commit: %v", err)
	}
	st, _ = s.Snapshot(ctx, []ledger.Budget{b})
	if st[0].Spent != 40 || p.applied != 40 {
		t.Fatalf("spent %d, persisted %d; want 40", st[0].Spent, p.applied)
	}
}
