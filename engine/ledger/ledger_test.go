package ledger

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"
)

func TestKeys(t *testing.T) {
	at := time.Date(2026, 11, 22, 23, 59, 59, 0, time.FixedZone("X", -5*3600)) // 2026-11-23 04:59:59 UTC
	for _, tc := range []struct {
		b    Budget
		want string
	}{
		{Budget{Scope: ScopeTeam, ID: "search", Period: PeriodDay}, "team:search:day:2026-11-23"},
		{Budget{Scope: ScopeGlobal, Period: PeriodMonth}, "global::month:2026-11"},
		{Budget{Scope: ScopeKey, ID: "a:b:day:x", Period: PeriodDay}, "key:a:b:day:x:day:2026-11-23"},
	} {
		k, err := tc.b.Key(at)
		if err != nil || k != tc.want {
			t.Fatalf("Key(%+v) = %q, %v; want %q", tc.b, k, err, tc.want)
		}
		pk, err := ParseKey(k)
		if err != nil || pk.Scope != tc.b.Scope || pk.ID != tc.b.ID || pk.Period != tc.b.Period {
			t.Fatalf("ParseKey(%q) = %+v, %v", k, pk, err)
		}
		start, _ := PeriodStart(tc.b.Period, at)
		if !pk.Start.Equal(start) || !pk.End.Equal(PeriodEnd(tc.b.Period, start)) {
			t.Fatalf("ParseKey(%q) period %v-%v", k, pk.Start, pk.End)
		}
	}
	for _, bad := range []string{"", "team", "team:x", "team:day:2026-11-22", "team:x:week:2026-11-22", "team:x:day:2026-13-01", "team:x:month:2026-11-01"} {
		if _, err := ParseKey(bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("ParseKey(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	end := PeriodEnd(PeriodMonth, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if !end.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("December ends %v", end)
	}
}

func TestExceededError(t *testing.T) {
	var err error = &ExceededError{Key: "team:t:day:2026-11-22", Spent: 1, Reserved: 2, Amount: 3, Limit: 5}
	wrapped := fmt.Errorf("request: %w", err)
	if !errors.Is(wrapped, ErrBudgetExceeded) || errors.Is(wrapped, ErrStoreUnavailable) {
		t.Fatal("errors.Is")
	}
	var ee *ExceededError
	if !errors.As(wrapped, &ee) || ee.Limit != 5 {
		t.Fatal("errors.As")
	}
	want := "ledger: budget team:t:day:2026-11-22 exceeded: spent 1 + reserved 2 + amount 3 > limit 5 micro-USD"
	if err.Error() != want {
		t.Fatalf("Error() = %q", err.Error())
	}
}

// RetryAfter is exact: at now+RetryAfter the request fits, one millisecond earlier it
// does not (brute force over random windows).
func TestRetryAfterIsMinimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixMilli()
	for i := range 3000 {
		limit := RateLimit{Scope: ScopeKey, ID: "k", RequestsPerMinute: int64(1 + rng.IntN(20)), TokensPerMinute: int64(rng.IntN(3)) * int64(100+rng.IntN(1000))}
		now := base + int64(rng.IntN(60_000))
		w := Window{Start: base, PrevRequests: int64(rng.IntN(25)), PrevTokens: int64(rng.IntN(1500)),
			Requests: int64(rng.IntN(25)), Tokens: int64(rng.IntN(1500))}
		tokens := int64(rng.IntN(600))
		d, _ := Evaluate([]RateLimit{limit}, []Window{w.Roll(now)}, tokens, now)
		if d.Allowed {
			continue
		}
		if d.Unsatisfiable {
			if tokens <= limit.TokensPerMinute {
				t.Fatalf("case %d: unsatisfiable with tokens %d <= %d", i, tokens, limit.TokensPerMinute)
			}
			continue
		}
		at := now + d.RetryAfter.Milliseconds()
		if d2, _ := Evaluate([]RateLimit{limit}, []Window{w.Roll(at)}, tokens, at); !d2.Allowed {
			t.Fatalf("case %d: %+v %+v tokens %d: denied at now+RetryAfter(%v)", i, limit, w, tokens, d.RetryAfter)
		}
		if d.RetryAfter > 0 {
			at--
			if d2, _ := Evaluate([]RateLimit{limit}, []Window{w.Roll(at)}, tokens, at); d2.Allowed {
				t.Fatalf("case %d: %+v %+v tokens %d: allowed before RetryAfter(%v)", i, limit, w, tokens, d.RetryAfter)
			}
		}
	}
}

func TestSetHeaders(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 15, 0, time.UTC).UnixMilli()
	start := now - 15_000
	ls := []RateLimit{
		{Scope: ScopeKey, ID: "k", RequestsPerMinute: 10, TokensPerMinute: 1000},
		{Scope: ScopeTeam, ID: "t", RequestsPerMinute: 3},
	}
	ws := []Window{{Start: start, Requests: 1, Tokens: 100}, {Start: start, Requests: 3}}
	d, _ := Evaluate(ls, ws, 50, now)
	h := http.Header{}
	d.SetHeaders(h)
	want := map[string]string{
		"X-Ratelimit-Limit-Requests":     "3",
		"X-Ratelimit-Remaining-Requests": "0",
		"X-Ratelimit-Reset-Requests":     "1m45s",
		"X-Ratelimit-Limit-Tokens":       "1000",
		"X-Ratelimit-Remaining-Tokens":   "900",
		"X-Ratelimit-Reset-Tokens":       "1m45s",
		"Retry-After":                    "65",
		"Retry-After-Ms":                 "65000",
	}
	for k, v := range want {
		if h.Get(k) != v {
			t.Fatalf("%s = %q, want %q (all %v)", k, h.Get(k), v, h)
		}
	}
	if d.Allowed || d.Index != 1 || d.DeniedBy != DimRequests || d.RetryAfter != 65*time.Second {
		t.Fatalf("decision %+v", d)
	}
}

func TestResolveMerges(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	rbs, err := ResolveBudgets([]Budget{
		{Scope: ScopeTeam, ID: "t", Period: PeriodDay, LimitMicroUSD: 50},
		{Scope: ScopeKey, ID: "k", Period: PeriodDay, LimitMicroUSD: 10, Hard: true},
		{Scope: ScopeTeam, ID: "t", Period: PeriodDay, LimitMicroUSD: 100, Hard: true},
		{Scope: ScopeTeam, ID: "t", Period: PeriodDay, LimitMicroUSD: 80, Hard: true},
		{Scope: ScopeTeam, ID: "t", Period: PeriodDay, LimitMicroUSD: 1},
	}, now)
	if err != nil || len(rbs) != 2 || rbs[0].Key != "team:t:day:2026-11-22" || !rbs[0].Hard || rbs[0].LimitMicroUSD != 80 {
		t.Fatalf("%+v %v", rbs, err)
	}
	ls, err := ResolveRateLimits([]RateLimit{
		{Scope: ScopeKey, ID: "k", RequestsPerMinute: 10},
		{Scope: ScopeKey, ID: "k", RequestsPerMinute: 20, TokensPerMinute: 500},
	})
	if err != nil || len(ls) != 1 || ls[0].RequestsPerMinute != 10 || ls[0].TokensPerMinute != 500 {
		t.Fatalf("%+v %v", ls, err)
	}
}
