package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Scopes a budget or a rate limit can apply to.
const (
	ScopeKey     = "key"
	ScopeUser    = "user"
	ScopeTeam    = "team"
	ScopeProject = "project"
	ScopeGlobal  = "global" // ID must be ""
	// ScopeShadow holds what shadow (mirrored) requests spend, by experiment: shadow
	// traffic is the gateway operator's cost, not the caller's.
	ScopeShadow = "shadow"
)

// Budget periods. Both use UTC calendar boundaries.
const (
	PeriodDay   = "day"
	PeriodMonth = "month"
)

// DefaultReservationTTL is used when Reserve is called with ttl <= 0: how long an
// abandoned request's reservation still counts. It outlives the gateway's default
// request_timeout (10 m), so a slow request that does finish still finds its reservation;
// a crashed one gives it back a few minutes after any request could have ended.
const DefaultReservationTTL = 15 * time.Minute

// DefaultTombstoneTTL is how long a settled (committed or released) reservation id is
// remembered so a repeated Commit (a retry after a lost reply, a replay after an
// outage) is detected instead of charged twice. Stores hold one small record per
// request settled in that window (about req/s x 600 ids).
const DefaultTombstoneTTL = 10 * time.Minute

var (
	// ErrBudgetExceeded is matched (errors.Is) by every *ExceededError.
	ErrBudgetExceeded = errors.New("ledger: budget exceeded")
	// ErrStoreUnavailable means the backing store could not be reached (Redis down,
	// bolt write failed). A fail-closed server denies the request.
	ErrStoreUnavailable = errors.New("ledger: store unavailable")
	// ErrInvalid wraps every argument validation failure (unknown scope, negative amount...).
	ErrInvalid = errors.New("ledger: invalid argument")
	// ErrAlreadySettled is returned by Commit for a reservation that was already committed
	// or released; nothing is charged.
	ErrAlreadySettled = errors.New("ledger: reservation already settled")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("ledger: store closed")
)

// Budget is one spend limit the policy attached to a request.
type Budget struct {
	Scope         string `json:"scope"`
	ID            string `json:"id"`
	Period        string `json:"period"`
	LimitMicroUSD int64  `json:"limit_micro_usd"`
	// Hard budgets block a Reserve that would exceed them; soft budgets are only tracked.
	Hard bool `json:"hard"`
}

// Reservation is the handle Reserve returns; pass it by value to Commit or Release.
// It is plain data (JSON-serialisable) so it can travel with the request.
type Reservation struct {
	// ID is opaque and unique; stores may encode routing information in it.
	ID string `json:"id"`
	// Budgets are the (deduplicated) budgets reserved against.
	Budgets []Budget `json:"budgets,omitempty"`
	// Keys are the period keys, parallel to Budgets, fixed at Reserve time: Commit charges
	// these periods even if the request finishes after a period boundary.
	Keys           []string  `json:"keys,omitempty"`
	AmountMicroUSD int64     `json:"amount_micro_usd"`
	CreatedAt      time.Time `json:"created_at"`
	ExpiresAt      time.Time `json:"expires_at"`
}

// BudgetState is one budget's standing in one period.
type BudgetState struct {
	Budget      Budget    `json:"budget"`
	Key         string    `json:"key"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	Spent       int64     `json:"spent_micro_usd"`
	Reserved    int64     `json:"reserved_micro_usd"`
	Limit       int64     `json:"limit_micro_usd"`
	// Remaining is max(0, Limit - Spent - Reserved).
	Remaining int64 `json:"remaining_micro_usd"`
}

// ExceededError names the first hard budget (in the caller's order) that refused a Reserve.
type ExceededError struct {
	Budget   Budget
	Key      string
	Spent    int64
	Reserved int64
	Limit    int64
	Amount   int64 // the amount that did not fit
}

func (e *ExceededError) Error() string {
	return fmt.Sprintf("ledger: budget %s exceeded: spent %d + reserved %d + amount %d > limit %d micro-USD",
		e.Key, e.Spent, e.Reserved, e.Amount, e.Limit)
}

// Is makes errors.Is(err, ErrBudgetExceeded) true.
func (e *ExceededError) Is(target error) bool { return target == ErrBudgetExceeded }

// Store is the ledger: budgets with reservations, and per-minute rate limits. Every
// method is safe for concurrent use; Reserve, Commit, Release, Allow and AddTokens are
// each one atomic step over all the budgets or limits they are given.
type Store interface {
	// Reserve atomically checks every hard budget (spent + reserved + amount <= limit) and,
	// only if all pass, reserves amount on every budget for ttl (<= 0: DefaultReservationTTL).
	// On refusal nothing is reserved and the error is an *ExceededError.
	Reserve(ctx context.Context, budgets []Budget, amountMicroUSD int64, ttl time.Duration) (Reservation, error)
	// Commit charges actual (which may exceed the reservation) to the reservation's
	// periods and releases the whole reservation. A second Commit returns ErrAlreadySettled.
	// An expired reservation is still charged.
	Commit(ctx context.Context, r Reservation, actualMicroUSD int64) error
	// Release gives the reservation back without charging. Idempotent.
	Release(ctx context.Context, r Reservation) error
	// Snapshot reports the current period's state of each budget, in order.
	Snapshot(ctx context.Context, budgets []Budget) ([]BudgetState, error)
	// Spend lists every period the store knows for scope/id (admin view), sorted by period
	// then start. Limit is the last limit seen for that budget.
	Spend(ctx context.Context, scope, id string) ([]BudgetState, error)
	// Allow atomically checks and, if every limit admits it, consumes one request and
	// tokens tokens on every limit. When denied nothing is consumed.
	Allow(ctx context.Context, limits []RateLimit, tokens int64) (RateDecision, error)
	// AddTokens corrects the token count of the current window by n (may be negative).
	AddTokens(ctx context.Context, limits []RateLimit, n int64) error
	// RateState reports usage of each limit without consuming anything.
	RateState(ctx context.Context, limits []RateLimit) ([]RateLimitState, error)
	// Close releases the store's resources.
	Close() error
}

// CallerScope reports whether s is a scope a caller's request can be charged to or
// limited in: every scope but shadow.
func CallerScope(s string) bool {
	return s != ScopeShadow && ValidScope(s)
}

// ValidScope reports whether s is one of the known scopes.
func ValidScope(s string) bool {
	switch s {
	case ScopeKey, ScopeUser, ScopeTeam, ScopeProject, ScopeGlobal, ScopeShadow:
		return true
	}
	return false
}

// ValidateOwner checks a scope/id pair: known scope, id non-empty except for global,
// whose id must be "".
func ValidateOwner(scope, id string) error {
	if !ValidScope(scope) {
		return fmt.Errorf("%w: unknown scope %q", ErrInvalid, scope)
	}
	if scope == ScopeGlobal {
		if id != "" {
			return fmt.Errorf("%w: global scope takes no id (got %q)", ErrInvalid, id)
		}
		return nil
	}
	if id == "" {
		return fmt.Errorf("%w: scope %q needs an id", ErrInvalid, scope)
	}
	return nil
}

// Validate checks scope, id, period and limit.
func (b Budget) Validate() error {
	if err := ValidateOwner(b.Scope, b.ID); err != nil {
		return err
	}
	if b.Period != PeriodDay && b.Period != PeriodMonth {
		return fmt.Errorf("%w: unknown period %q", ErrInvalid, b.Period)
	}
	if b.LimitMicroUSD < 0 {
		return fmt.Errorf("%w: negative limit %d", ErrInvalid, b.LimitMicroUSD)
	}
	return nil
}

// PeriodStart returns the UTC start of the period containing t.
func PeriodStart(period string, t time.Time) (time.Time, error) {
	t = t.UTC()
	switch period {
	case PeriodDay:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC), nil
	case PeriodMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC), nil
	}
	return time.Time{}, fmt.Errorf("%w: unknown period %q", ErrInvalid, period)
}

// PeriodEnd returns the (exclusive) end of the period that starts at start.
func PeriodEnd(period string, start time.Time) time.Time {
	if period == PeriodMonth {
		return start.AddDate(0, 1, 0)
	}
	return start.AddDate(0, 0, 1)
}

func formatStart(period string, start time.Time) string {
	if period == PeriodMonth {
		return start.Format("2006-01")
	}
	return start.Format("2006-01-02")
}

// Key returns the budget's key for the period containing t:
// scope:id:period:start, e.g. "team:search:day:2026-11-22" or "global::month:2026-11".
func (b Budget) Key(t time.Time) (string, error) {
	start, err := PeriodStart(b.Period, t)
	if err != nil {
		return "", err
	}
	return b.Scope + ":" + b.ID + ":" + b.Period + ":" + formatStart(b.Period, start), nil
}

// ParsedKey is a budget key taken apart.
type ParsedKey struct {
	Scope, ID, Period string
	Start, End        time.Time
}

// ParseKey takes a key made by Budget.Key apart. The id may itself contain ':' because the
// scope is the first field and period and start are the last two.
func ParseKey(key string) (ParsedKey, error) {
	first := strings.IndexByte(key, ':')
	last := strings.LastIndexByte(key, ':')
	if first < 0 || last <= first {
		return ParsedKey{}, fmt.Errorf("%w: malformed budget key %q", ErrInvalid, key)
	}
	startStr := key[last+1:]
	rest := key[:last]
	mid := strings.LastIndexByte(rest, ':')
	if mid < first {
		return ParsedKey{}, fmt.Errorf("%w: malformed budget key %q", ErrInvalid, key)
	}
	p := ParsedKey{Scope: key[:first], Period: rest[mid+1:]}
	if mid == first {
		return ParsedKey{}, fmt.Errorf("%w: malformed budget key %q", ErrInvalid, key)
	}
	p.ID = rest[first+1 : mid]
	layout := "2006-01-02"
	if p.Period == PeriodMonth {
		layout = "2006-01"
	} else if p.Period != PeriodDay {
		return ParsedKey{}, fmt.Errorf("%w: malformed budget key %q", ErrInvalid, key)
	}
	start, err := time.Parse(layout, startStr)
	if err != nil {
		return ParsedKey{}, fmt.Errorf("%w: malformed budget key %q", ErrInvalid, key)
	}
	p.Start = start.UTC()
	p.End = PeriodEnd(p.Period, p.Start)
	return p, nil
}

// ResolvedBudget is a validated budget with its key for a given instant.
type ResolvedBudget struct {
	Budget
	Key        string
	Start, End time.Time
}

// ResolveBudgets validates budgets and computes their keys at now. Budgets with the same
// key are merged (hard if any is hard; the smallest limit among the hard ones, else the
// smallest limit) so each key appears once, at the position of its first occurrence.
func ResolveBudgets(budgets []Budget, now time.Time) ([]ResolvedBudget, error) {
	out := make([]ResolvedBudget, 0, len(budgets))
	for _, b := range budgets {
		if err := b.Validate(); err != nil {
			return nil, err
		}
		start, _ := PeriodStart(b.Period, now)
		key := b.Scope + ":" + b.ID + ":" + b.Period + ":" + formatStart(b.Period, start)
		dup := false
		for i := range out {
			if out[i].Key != key {
				continue
			}
			dup = true
			o := &out[i]
			switch {
			case b.Hard && !o.Hard:
				o.Hard, o.LimitMicroUSD = true, b.LimitMicroUSD
			case b.Hard == o.Hard && b.LimitMicroUSD < o.LimitMicroUSD:
				o.LimitMicroUSD = b.LimitMicroUSD
			}
			break
		}
		if !dup {
			out = append(out, ResolvedBudget{Budget: b, Key: key, Start: start, End: PeriodEnd(b.Period, start)})
		}
	}
	return out, nil
}

// NewReservation validates the arguments and builds the reservation Reserve will record.
// ttl <= 0 means DefaultReservationTTL.
func NewReservation(budgets []Budget, amount int64, ttl time.Duration, now time.Time) (Reservation, []ResolvedBudget, error) {
	if amount < 0 {
		return Reservation{}, nil, fmt.Errorf("%w: negative amount %d", ErrInvalid, amount)
	}
	if ttl <= 0 {
		ttl = DefaultReservationTTL
	}
	rbs, err := ResolveBudgets(budgets, now)
	if err != nil {
		return Reservation{}, nil, err
	}
	r := Reservation{
		ID:             NewID(),
		AmountMicroUSD: amount,
		CreatedAt:      now,
		ExpiresAt:      now.Add(ttl),
	}
	for _, rb := range rbs {
		r.Budgets = append(r.Budgets, rb.Budget)
		r.Keys = append(r.Keys, rb.Key)
	}
	return r, rbs, nil
}

// CheckReservation validates a reservation handed back to Commit or Release.
func CheckReservation(r Reservation) error {
	if r.ID == "" && len(r.Keys) > 0 {
		return fmt.Errorf("%w: reservation without id", ErrInvalid)
	}
	if len(r.Keys) != len(r.Budgets) {
		return fmt.Errorf("%w: reservation has %d keys for %d budgets", ErrInvalid, len(r.Keys), len(r.Budgets))
	}
	return nil
}

// NewID returns a random 128-bit hex id.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// State builds a BudgetState for b in the period [start, end).
func State(b Budget, key string, start, end time.Time, spent, reserved, limit int64) BudgetState {
	rem := limit - spent - reserved
	if rem < 0 {
		rem = 0
	}
	return BudgetState{Budget: b, Key: key, PeriodStart: start, PeriodEnd: end,
		Spent: spent, Reserved: reserved, Limit: limit, Remaining: rem}
}

// Exceeds reports whether reserving amount on top of spent and reserved breaks a hard limit.
func Exceeds(hard bool, spent, reserved, amount, limit int64) bool {
	return hard && spent+reserved+amount > limit
}
