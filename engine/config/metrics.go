package config

import (
	"fmt"
	"net"

	"github.com/gavel-gw/gavel/adapters/registry"
)

// Metrics says where /metrics is served and who may read it. It shows per-team spend and
// what is left of every budget, so on a shared network it wants its own loopback or
// internal address, a token, or both. Unset, it is served on the main listener, open.
type Metrics struct {
	// Listen serves /metrics on this address only (e.g. 127.0.0.1:9090); the main
	// listener then answers 404 for /metrics.
	Listen string `yaml:"listen"`
	// Token, when set, must come as "Authorization: Bearer <token>" on every scrape,
	// wherever /metrics is served.
	Token registry.Secret `yaml:"token"`
}

func (c *Config) validateMetrics() []error {
	var errs []error
	if l := c.Metrics.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			errs = append(errs, fmt.Errorf("metrics.listen: %w", err))
		} else if l == c.Listen {
			errs = append(errs, fmt.Errorf("metrics.listen must differ from listen (%s); leave it empty to serve /metrics there", l))
		}
	}
	return errs
}
