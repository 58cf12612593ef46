package signals

import (
	"context"
	"log/slog"
	"time"
)

// ProbeConfig configures an active health check of one provider.
type ProbeConfig struct {
	Interval         time.Duration // between probes; default 30s
	Timeout          time.Duration // of one probe; default 10s
	FailureThreshold int           // consecutive failures that mark the provider unhealthy; default 2
}

// Probe checks a provider with check every Interval until ctx ends, and feeds the verdict
// into the tracker as the provider's `healthy`: FailureThreshold consecutive failures mark
// it unhealthy, one success marks it healthy again. The policy then skips (or stops
// skipping) it without waiting for real traffic to fail.
func (t *Tracker) Probe(ctx context.Context, provider string, cfg ProbeConfig, check func(context.Context) error, log *slog.Logger) {
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.FailureThreshold <= 0 {
		cfg.FailureThreshold = 2
	}
	failures := 0
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		err := check(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			if failures == cfg.FailureThreshold && log != nil {
				log.Warn("health probe failing: provider marked unhealthy", "provider", provider, "err", err)
			}
			if failures >= cfg.FailureThreshold {
				t.SetHealthy(provider, false)
			}
		} else {
			if failures >= cfg.FailureThreshold && log != nil {
				log.Info("health probe recovered: provider healthy", "provider", provider)
			}
			failures = 0
			t.SetHealthy(provider, true)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
