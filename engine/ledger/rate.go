package ledger

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// WindowMillis is the rate-limit window: one minute, as providers count.
const WindowMillis int64 = 60_000

// RateLimit is one per-minute limit the policy attached to a request. A zero
// RequestsPerMinute or TokensPerMinute means that dimension is not limited (usage is
// still counted).
type RateLimit struct {
	Scope             string `json:"scope"`
	ID                string `json:"id"`
	RequestsPerMinute int64  `json:"requests_per_minute"`
	TokensPerMinute   int64  `json:"tokens_per_minute"`
}

// Key is the limit's counter key: scope:id.
func (l RateLimit) Key() string { return l.Scope + ":" + l.ID }

// Validate checks scope, id and that the limits are not negative.
func (l RateLimit) Validate() error {
	if err := ValidateOwner(l.Scope, l.ID); err != nil {
		return err
	}
	if l.RequestsPerMinute < 0 || l.TokensPerMinute < 0 {
		return fmt.Errorf("%w: negative rate limit on %s", ErrInvalid, l.Key())
	}
	return nil
}

// ResolveRateLimits validates limits and merges those with the same key (the smallest
// non-zero value of each dimension wins), keeping first-occurrence order.
func ResolveRateLimits(limits []RateLimit) ([]RateLimit, error) {
	out := make([]RateLimit, 0, len(limits))
	for _, l := range limits {
		if err := l.Validate(); err != nil {
			return nil, err
		}
		dup := false
		for i := range out {
			if out[i].Key() == l.Key() {
				dup = true
				out[i].RequestsPerMinute = minLimit(out[i].RequestsPerMinute, l.RequestsPerMinute)
				out[i].TokensPerMinute = minLimit(out[i].TokensPerMinute, l.TokensPerMinute)
				break
			}
		}
		if !dup {
			out = append(out, l)
		}
	}
	return out, nil
}

func minLimit(a, b int64) int64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	case b < a:
		return b
	}
	return a
}

// Window is the counter state of one limit: the counts of the current fixed minute
// (Start, unix milliseconds) and of the minute before it. Usage "in the last minute" is
// estimated by interpolation: prev * (remaining fraction of the current minute) + cur.
type Window struct {
	Start        int64 `json:"start_ms"`
	PrevRequests int64 `json:"prev_requests"`
	PrevTokens   int64 `json:"prev_tokens"`
	Requests     int64 `json:"requests"`
	Tokens       int64 `json:"tokens"`
}

// Roll moves the window to the minute containing nowMs. A window that is ahead of nowMs
// (another replica's clock is a little ahead) is kept as it is, never reset.
func (w Window) Roll(nowMs int64) Window {
	cur := nowMs - nowMs%WindowMillis
	switch {
	case w.Start >= cur:
		return w
	case w.Start == cur-WindowMillis:
		return Window{Start: cur, PrevRequests: w.Requests, PrevTokens: w.Tokens}
	}
	return Window{Start: cur}
}

// elapsed is the time into the (rolled) window, clamped to [0, WindowMillis).
func (w Window) elapsed(nowMs int64) int64 {
	e := nowMs - w.Start
	if e < 0 {
		return 0
	}
	if e >= WindowMillis {
		return WindowMillis - 1
	}
	return e
}

// fits: prev*(W-e) + (cur+need)*W <= limit*W, all integers (exact also in Lua doubles
// below 2^53). limit <= 0 means unlimited.
func fits(prev, cur, need, limit, e int64) bool {
	if limit <= 0 {
		return true
	}
	return prev*(WindowMillis-e)+(cur+need)*WindowMillis <= limit*WindowMillis
}

// used is the interpolated usage, rounded up.
func used(prev, cur, e int64) int64 {
	n := prev*(WindowMillis-e) + cur*WindowMillis
	return (n + WindowMillis - 1) / WindowMillis
}

// wait is how long (ms) until need more fits, assuming no other arrivals; ok=false if
// need exceeds the limit and can never fit.
func wait(prev, cur, need, limit, e int64) (int64, bool) {
	if limit <= 0 || fits(prev, cur, need, limit, e) {
		return 0, true
	}
	if need > limit {
		return 0, false
	}
	W := WindowMillis
	// Later in the current window: prev*(W-t) <= (limit-cur-need)*W.
	if x := limit - cur - need; x >= 0 && prev > 0 {
		t := W - (x*W)/prev
		if t < e {
			t = e
		}
		if t < W {
			return t - e, true
		}
	}
	// In the next window prev' = cur, cur' = 0: cur*(W-t) <= (limit-need)*W.
	if cur == 0 {
		return W - e, true
	}
	t := W - ((limit-need)*W)/cur
	if t < 0 {
		t = 0
	}
	if t < W {
		return W - e + t, true
	}
	return 2*W - e, true
}

// fullReset is how long (ms) until the interpolated usage decays to zero.
func fullReset(prev, cur, e int64) int64 {
	switch {
	case cur > 0:
		return 2*WindowMillis - e
	case prev > 0:
		return WindowMillis - e
	}
	return 0
}

// RateLimitState is one limit's usage. Requests and Tokens are the sliding-window
// estimates the decisions use; CurrentRequests and CurrentTokens are the raw counts of
// the current fixed minute.
type RateLimitState struct {
	Limit           RateLimit `json:"limit"`
	Key             string    `json:"key"`
	WindowStart     time.Time `json:"window_start"`
	Requests        int64     `json:"requests"`
	Tokens          int64     `json:"tokens"`
	CurrentRequests int64     `json:"current_requests"`
	CurrentTokens   int64     `json:"current_tokens"`
	// RemainingRequests and RemainingTokens are -1 when that dimension is unlimited.
	RemainingRequests int64 `json:"remaining_requests"`
	RemainingTokens   int64 `json:"remaining_tokens"`
	// ResetRequests and ResetTokens: time until the usage has decayed to zero.
	ResetRequests time.Duration `json:"reset_requests_ns"`
	ResetTokens   time.Duration `json:"reset_tokens_ns"`
}

// StateOf computes the state of limit l whose (already rolled) window is w at nowMs.
func StateOf(l RateLimit, w Window, nowMs int64) RateLimitState {
	e := w.elapsed(nowMs)
	s := RateLimitState{
		Limit:             l,
		Key:               l.Key(),
		WindowStart:       time.UnixMilli(w.Start).UTC(),
		Requests:          used(w.PrevRequests, w.Requests, e),
		Tokens:            used(w.PrevTokens, w.Tokens, e),
		CurrentRequests:   w.Requests,
		CurrentTokens:     w.Tokens,
		RemainingRequests: -1,
		RemainingTokens:   -1,
		ResetRequests:     time.Duration(fullReset(w.PrevRequests, w.Requests, e)) * time.Millisecond,
		ResetTokens:       time.Duration(fullReset(w.PrevTokens, w.Tokens, e)) * time.Millisecond,
	}
	if l.RequestsPerMinute > 0 {
		s.RemainingRequests = max(0, l.RequestsPerMinute-s.Requests)
	}
	if l.TokensPerMinute > 0 {
		s.RemainingTokens = max(0, l.TokensPerMinute-s.Tokens)
	}
	return s
}

// Dimension names used in RateDecision.DeniedBy.
const (
	DimRequests = "requests"
	DimTokens   = "tokens"
)

// RateDecision is the outcome of Allow.
type RateDecision struct {
	Allowed bool `json:"allowed"`
	// Index of the limit that fired (first in the caller's order, requests checked before
	// tokens), -1 when allowed. Denied is that limit and DeniedBy "requests" or "tokens".
	Index    int       `json:"index"`
	Denied   RateLimit `json:"denied"`
	DeniedBy string    `json:"denied_by,omitempty"`
	// RetryAfter: when denied, how long until this request would fit every limit, if
	// nothing else arrives.
	RetryAfter time.Duration `json:"retry_after_ns"`
	// Unsatisfiable: the request asks more tokens than a TokensPerMinute limit allows; it
	// can never pass (respond 429 with a clear message, or 400).
	Unsatisfiable bool `json:"unsatisfiable"`
	// States holds each limit's usage (after consumption when allowed), in the order of
	// the deduplicated limits.
	States []RateLimitState `json:"states"`
}

// Evaluate decides whether one request with tokens fits every limit given their rolled
// windows pre (parallel to limits) at nowMs. It returns the decision and, when allowed,
// the windows after consumption (post == pre when denied). Every Store uses it so the
// arithmetic is the same everywhere (the Redis Lua script mirrors it).
func Evaluate(limits []RateLimit, pre []Window, tokens int64, nowMs int64) (RateDecision, []Window) {
	d := RateDecision{Allowed: true, Index: -1}
	var retry int64
	for i, l := range limits {
		w := pre[i]
		e := w.elapsed(nowMs)
		reqOK := fits(w.PrevRequests, w.Requests, 1, l.RequestsPerMinute, e)
		tokOK := fits(w.PrevTokens, w.Tokens, tokens, l.TokensPerMinute, e)
		if reqOK && tokOK {
			continue
		}
		if d.Allowed {
			d.Allowed, d.Index, d.Denied = false, i, l
			d.DeniedBy = DimRequests
			if reqOK {
				d.DeniedBy = DimTokens
			}
		}
		if !reqOK {
			ms, _ := wait(w.PrevRequests, w.Requests, 1, l.RequestsPerMinute, e)
			retry = max(retry, ms)
		}
		if !tokOK {
			ms, ok := wait(w.PrevTokens, w.Tokens, tokens, l.TokensPerMinute, e)
			if !ok {
				d.Unsatisfiable = true
			}
			retry = max(retry, ms)
		}
	}
	post := pre
	if d.Allowed {
		post = make([]Window, len(pre))
		for i, w := range pre {
			w.Requests++
			w.Tokens += tokens
			post[i] = w
		}
	} else {
		d.RetryAfter = time.Duration(retry) * time.Millisecond
		if d.Unsatisfiable {
			d.RetryAfter = 0
		}
	}
	d.States = make([]RateLimitState, len(limits))
	for i, l := range limits {
		d.States[i] = StateOf(l, post[i], nowMs)
	}
	return d, post
}

// AddTokensTo applies a token correction of n to a rolled window: added to the current
// minute; a negative correction larger than the current minute's count spills into the
// previous minute. Counts never go below zero.
func AddTokensTo(w Window, n int64) Window {
	w.Tokens += n
	if w.Tokens < 0 {
		w.PrevTokens = max(0, w.PrevTokens+w.Tokens)
		w.Tokens = 0
	}
	return w
}

// Headline picks, among the limits that limit requests (tokens), the one with the fewest
// remaining requests (tokens): what x-ratelimit-* headers report. ok is false when no
// limit restricts that dimension.
func (d RateDecision) Headline(dim string) (st RateLimitState, ok bool) {
	best := int64(-1)
	for _, s := range d.States {
		lim, rem := s.Limit.RequestsPerMinute, s.RemainingRequests
		if dim == DimTokens {
			lim, rem = s.Limit.TokensPerMinute, s.RemainingTokens
		}
		if lim <= 0 {
			continue
		}
		if !ok || rem < best {
			st, best, ok = s, rem, true
		}
	}
	return st, ok
}

// SetHeaders writes OpenAI-style headers: x-ratelimit-limit-requests,
// x-ratelimit-remaining-requests, x-ratelimit-reset-requests and the -tokens variants
// (resets formatted like "1s", "6m0s"); when denied also Retry-After (whole seconds,
// at least 1) and retry-after-ms.
func (d RateDecision) SetHeaders(h http.Header) {
	for _, dim := range []string{DimRequests, DimTokens} {
		s, ok := d.Headline(dim)
		if !ok {
			continue
		}
		lim, rem, reset := s.Limit.RequestsPerMinute, s.RemainingRequests, s.ResetRequests
		if dim == DimTokens {
			lim, rem, reset = s.Limit.TokensPerMinute, s.RemainingTokens, s.ResetTokens
		}
		h.Set("x-ratelimit-limit-"+dim, strconv.FormatInt(lim, 10))
		h.Set("x-ratelimit-remaining-"+dim, strconv.FormatInt(rem, 10))
		h.Set("x-ratelimit-reset-"+dim, reset.Round(time.Millisecond).String())
	}
	if !d.Allowed && !d.Unsatisfiable {
		secs := int64((d.RetryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(max(1, secs), 10))
		h.Set("retry-after-ms", strconv.FormatInt(max(1, d.RetryAfter.Milliseconds()), 10))
	}
}
