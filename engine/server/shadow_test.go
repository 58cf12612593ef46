package server

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/gavel-gw/gavel/engine/executor"
	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/ledger/memstore"
	"github.com/gavel-gw/gavel/engine/policy"
)

func TestShadowBudgets(t *testing.T) {
	hard := true
	rev := &policy.Revision{Data: &policy.Data{Budgets: []policy.BudgetSpec{
		{Name: "team", Scope: "team", Period: "day", LimitMUSD: 10},
		{Name: "e1", Scope: "shadow", ID: "e1", Period: "day", LimitMUSD: 50, Hard: &hard},
		{Name: "rest", Scope: "shadow", ID: "*", Period: "month", LimitMUSD: 70},
	}}}
	d := &policy.Decision{Budgets: []policy.Budget{{Name: "team", Scope: "team", ID: "search", Period: "day", LimitMUSD: 10, Hard: true}}}
	store := memstore.New(memstore.Options{})
	defer store.Close()
	tests := []struct {
		name       string
		scope      string
		noLedger   bool
		experiment string
		want       []ledger.Budget
	}{
		{"own experiment budget", "", false, "e1", []ledger.Budget{{Scope: "shadow", ID: "e1", Period: "day", LimitMicroUSD: 50, Hard: true}}},
		{"the * budget, under the experiment's id", "shadow", false, "e2", []ledger.Budget{{Scope: "shadow", ID: "e2", Period: "month", LimitMicroUSD: 70, Hard: true}}},
		{"caller", "caller", false, "e1", []ledger.Budget{{Scope: "team", ID: "search", Period: "day", LimitMicroUSD: 10, Hard: true}}},
		{"none", "none", false, "e1", nil},
		{"no ledger", "", true, "e1", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{o: Options{Ledger: store, ShadowBudgetScope: tc.scope}}
			if tc.noLedger {
				s.o.Ledger = nil
			}
			got := s.shadowBudgets(rev, d, tc.experiment)
			if len(got) != len(tc.want) {
				t.Fatalf("budgets = %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("budget %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
	t.Run("untracked experiment is still charged", func(t *testing.T) {
		s := &Server{o: Options{Ledger: store}}
		got := s.shadowBudgets(&policy.Revision{Data: &policy.Data{}}, d, "")
		if len(got) != 1 || got[0].Scope != "shadow" || got[0].ID != shadowUntagged || got[0].Hard {
			t.Errorf("budgets = %+v", got)
		}
	})
}

func TestShadowBudgetReserve(t *testing.T) {
	store := memstore.New(memstore.Options{})
	defer store.Close()
	s := &Server{o: Options{Ledger: store}, log: slog.New(slog.DiscardHandler)}
	b := &shadowBudget{s: s, budgets: []ledger.Budget{{Scope: "shadow", ID: "e1", Period: "day", LimitMicroUSD: 100, Hard: true}},
		catalog: map[string]policy.CatalogEntry{"p/m": {Price: policy.Price{InputMicroUSDPerMTok: 1_000_000, OutputMicroUSDPerMTok: 1_000_000}}},
		estIn:   10, maxOut: 20}
	target := policy.Target{Provider: "p", Model: "m"}
	settle, err := b.Reserve(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	settle(90)
	if _, err := b.Reserve(context.Background(), target); !errors.Is(err, executor.ErrShadowBudget) {
		t.Fatalf("err = %v, want ErrShadowBudget once 90 of 100 are spent and a shadow may cost 30", err)
	}
	st, _ := store.Snapshot(context.Background(), b.budgets)
	if st[0].Spent != 90 || st[0].Reserved != 0 {
		t.Errorf("standing = %+v", st[0])
	}
}
