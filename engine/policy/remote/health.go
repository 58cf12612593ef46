package remote

import (
	"fmt"
	"time"
)

// Health is what /readyz says about the bundle server.
type Health struct {
	// URL is the bundle URL as shown (ShownURL), credentials masked.
	URL string `json:"url"`
	// LastSuccessfulCheck is when the server last answered (a new bundle or 304).
	LastSuccessfulCheck *time.Time `json:"last_successful_check,omitempty"`
	// StalenessSeconds counts from the last successful check; before any, from the
	// persisted bundle's download, or from startup when there is neither.
	StalenessSeconds int64 `json:"staleness_seconds"`
	// Stale: no check has succeeded since startup, or the last one is older than two
	// polling periods.
	Stale     bool   `json:"stale"`
	LastError string `json:"last_error,omitempty"`
	// LastErrorReason is a gavel_bundle_download_errors_total reason.
	LastErrorReason string `json:"last_error_reason,omitempty"`
	MaxStaleness    string `json:"max_staleness,omitempty"`

	// NotReady explains why /readyz fails; empty when the bundle side is ready.
	NotReady string `json:"-"`
}

// Health reports staleness and readiness. Not ready: no bundle is active, or MaxStaleness
// is set and exceeded. A stale bundle within MaxStaleness (or with none set) keeps
// serving and reports stale, so a policy-server outage does not take the fleet down.
func (c *Client) Health() Health {
	now := c.now()
	c.mu.Lock()
	h := Health{URL: c.shown}
	since := c.started
	switch {
	case !c.lastCheck.IsZero():
		t := c.lastCheck.UTC()
		h.LastSuccessfulCheck = &t
		since = c.lastCheck
	case !c.persisted.IsZero():
		since = c.persisted
	}
	if c.lastErr != nil {
		h.LastError, h.LastErrorReason = c.lastErr.Error(), c.lastReason
	}
	c.mu.Unlock()
	age := now.Sub(since)
	h.StalenessSeconds = int64(age / time.Second)
	h.Stale = h.LastSuccessfulCheck == nil || age > c.staleAfter()
	if c.cfg.MaxStaleness > 0 {
		h.MaxStaleness = c.cfg.MaxStaleness.String()
	}
	switch {
	case c.engine.Active() == nil:
		last := "no answer yet"
		if h.LastError != "" {
			last = h.LastError
		}
		h.NotReady = fmt.Sprintf("no policy bundle is active: bundle server %s has not delivered one (last error: %s)", c.shown, last)
	case c.cfg.MaxStaleness > 0 && age > c.cfg.MaxStaleness:
		h.NotReady = fmt.Sprintf("policy bundle is stale: no successful check with %s for %s (max_staleness %s)",
			c.shown, age.Truncate(time.Second), c.cfg.MaxStaleness)
	}
	return h
}

// staleAfter is two polling periods: one missed check is noise, two are an outage.
func (c *Client) staleAfter() time.Duration {
	return 2 * (c.cfg.MaxDelay + c.cfg.LongPollingTimeout)
}
