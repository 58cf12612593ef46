package app

import (
	"context"

	"github.com/gavel-gw/gavel/engine/canary"
	"github.com/gavel-gw/gavel/engine/policy/remote"
)

// buildCanary sets up bundle.canary: a candidate bundle deciding a sample of live
// requests beside the active one, never executed. A candidate that does not load is
// logged and shown in /v1/gavel/status, never a reason not to serve; a bad canary URL
// or key is a configuration error. A candidate from a bundle server is polled in Serve.
func (g *Gateway) buildCanary(ctx context.Context) error {
	cc := g.cfg.Bundle.Canary
	if cc == nil {
		return nil
	}
	log := g.log.With("component", "canary")
	cfg := canary.Config{Sample: *cc.Sample, Queue: cc.Queue, Workers: cc.Workers, Source: cc.Path}
	if cc.URL != "" {
		cfg.Source = remote.ShownURL(cc.URL)
	}
	var dlog canary.Log
	if g.dlog != nil {
		dlog = g.dlog
	}
	c := canary.New(cfg, g.metrics, dlog, log)
	g.metrics.InitCanary(canary.Kinds())
	if cc.URL != "" {
		rc := remote.Config{URL: cc.URL, MinDelay: cc.Polling.MinDelay, MaxDelay: cc.Polling.MaxDelay,
			LongPollingTimeout: cc.Polling.LongPollingTimeout, Limits: bundleLimits(g.cfg.Bundle.BundleLimits)}
		if b := cc.Credentials.Bearer; b != nil {
			rc.Token, rc.Scheme = string(b.Token), b.Scheme
		}
		vc, err := verification(cc.Signing)
		if err != nil {
			return err
		}
		rc.Verification = vc
		// Its own client, without persistence (a candidate is not a last known good) and
		// without the bundle metrics, which speak of the serving bundle.
		if g.canaryRemote, err = remote.New(rc, c, nil, log); err != nil {
			return err
		}
		c.Watch(g.canaryRemote.Health)
	} else {
		// A failure is logged and in the status; the active bundle serves as it would
		// without a canary.
		_ = c.Load(ctx, cc.Path, bundleLimits(g.cfg.Bundle.BundleLimits))
	}
	c.Start(context.Background()) // stopped by Close
	g.canary = c
	return nil
}
