package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/executor"
	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/ledger/memstore"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/tokens"
)

func TestShadowBudgets(t *testing.T) {
	budget := func(name, scope, id, period string, limit int64) decision.Budget {
		return decision.Budget{Name: name, Budget: ledger.Budget{Scope: scope, ID: id, Period: period, LimitMicroUSD: limit, Hard: true}}
	}
	rev := &policy.Revision{Data: &policy.Data{Budgets: []decision.Budget{
		budget("team", "team", "", "day", 10),
		budget("e1", "shadow", "e1", "day", 50),
		budget("rest", "shadow", "*", "month", 70),
	}}}
	d := &decision.Decision{Budgets: []decision.Budget{budget("team", "team", "search", "day", 10)}}
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
			s := New(Options{Ledger: store, ShadowCharge: tc.scope})
			if tc.noLedger {
				s.o.Ledger = nil
			}
			got := s.shadowBudgets(rev.Data, d, tc.experiment)
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
		s := New(Options{Ledger: store})
		got := s.shadowBudgets(&policy.Data{}, d, "")
		if len(got) != 1 || got[0].Scope != "shadow" || got[0].ID != shadowUntagged || got[0].Hard {
			t.Errorf("budgets = %+v", got)
		}
	})
}

func TestShadowBudgetReserve(t *testing.T) {
	store := memstore.New(memstore.Options{})
	defer store.Close()
	s := New(Options{Ledger: store, Log: slog.New(slog.DiscardHandler)})
	b := &shadowBudget{p: s, budgets: []ledger.Budget{{Scope: "shadow", ID: "e1", Period: "day", LimitMicroUSD: 100, Hard: true}},
		data:  &policy.Data{Catalog: map[string]policy.CatalogEntry{"p/m": {Price: tokens.Price{InputMicroUSDPerMTok: 1_000_000, OutputMicroUSDPerMTok: 1_000_000}}}},
		estIn: 10, maxOut: 20}
	target := decision.Target{Provider: "p", Model: "m"}
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
