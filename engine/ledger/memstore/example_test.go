package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/ledger/memstore"
)

// The request path: Allow and Reserve before calling the provider, then Commit (or
// Release) and AddTokens after it.
func Example() {
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC) }
	var store ledger.Store = memstore.New(memstore.Options{Now: now})
	defer store.Close()

	// From the policy decision.
	budgets := []ledger.Budget{
		{Scope: ledger.ScopeKey, ID: "key-123", Period: ledger.PeriodDay, LimitMicroUSD: 5_000_000, Hard: true},
		{Scope: ledger.ScopeTeam, ID: "search", Period: ledger.PeriodMonth, LimitMicroUSD: 100_000_000},
	}
	limits := []ledger.RateLimit{{Scope: ledger.ScopeKey, ID: "key-123", RequestsPerMinute: 60, TokensPerMinute: 90_000}}

	h := http.Header{}
	d, err := store.Allow(ctx, limits, 1_200) // estimated tokens
	if err != nil {
		panic(err) // ErrStoreUnavailable when failing closed: deny with 503
	}
	d.SetHeaders(h)
	if !d.Allowed {
		fmt.Println("429, Retry-After", h.Get("Retry-After"))
		return
	}
	r, err := store.Reserve(ctx, budgets, 30_000, 5*time.Minute) // estimated cost: $0.03
	var ee *ledger.ExceededError
	if errors.As(err, &ee) {
		fmt.Println("402/429: budget", ee.Key, "exhausted")
		return
	}

	// ... call the provider: it used 1_000 tokens and cost $0.021 ...
	_ = store.Commit(context.WithoutCancel(ctx), r, 21_000)
	_ = store.AddTokens(ctx, limits, 1_000-1_200)

	st, _ := store.Snapshot(ctx, budgets)
	fmt.Println(st[0].Key, st[0].Spent, st[0].Remaining, h.Get("x-ratelimit-remaining-requests"))
	// Output: key:key-123:day:2026-11-22 21000 4979000 59
}
