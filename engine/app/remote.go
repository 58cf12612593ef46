package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/gavel-gw/gavel/engine/config"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/policy/remote"
)

// startupCheckTimeout bounds the first check with the bundle server when nothing is
// persisted: gavel starts (not ready, or on the embedded fallback) rather than hang.
const startupCheckTimeout = 10 * time.Second

// startRemote activates the policy of a bundle server: the persisted last known good
// first, else one check with the server, else the embedded bundle if the config allows
// it, else nothing (gavel starts not ready). Polling starts in Serve.
func (g *Gateway) startRemote(ctx context.Context) error {
	bc := g.cfg.Bundle
	rc := remote.Config{URL: bc.BundleURL(), MinDelay: bc.Polling.MinDelay, MaxDelay: bc.Polling.MaxDelay,
		LongPollingTimeout: bc.Polling.LongPollingTimeout, PersistDir: bc.PersistDir, MaxStaleness: bc.MaxStaleness,
		Limits: bundleLimits(bc.BundleLimits)}
	if b := bc.Credentials.Bearer; b != nil {
		rc.Token, rc.Scheme = string(b.Token), b.Scheme
	}
	vc, err := verification(bc.Signing)
	if err != nil {
		return err
	}
	rc.Verification = vc
	if g.remote, err = remote.New(rc, g.engine, g.metrics, g.log); err != nil {
		return err
	}
	g.metrics.InitBundleDistribution([]string{remote.ReasonNetwork, remote.ReasonHTTP, remote.ReasonVerify,
		remote.ReasonBundle, remote.ReasonCompile, remote.ReasonPersist})
	if _, err := g.remote.LoadPersisted(ctx); err == nil {
		return nil
	} else if !errors.Is(err, remote.ErrNothingPersisted) {
		g.log.Warn("persisted bundle not used", "error", err)
	}
	cctx, cancel := context.WithTimeout(ctx, startupCheckTimeout)
	defer cancel()
	if err := g.remote.Poll(cctx); err == nil && g.engine.Active() != nil {
		return nil
	} else if err != nil {
		g.log.Warn("bundle server unreachable at startup", "url", remote.ShownURL(rc.URL), "error", err)
	}
	if bc.Fallback != config.FallbackEmbedded {
		g.log.Error("starting without a policy bundle: not ready until the bundle server delivers one", "url", remote.ShownURL(rc.URL))
		return nil
	}
	b, err := policy.LoadEmbedded()
	if err != nil {
		return err
	}
	_, err = g.engine.Activate(ctx, b, "embedded (fallback: "+remote.ShownURL(rc.URL)+" unreachable)")
	return err
}

// bundleLimits carries the configured bounds over; zero fields take policy's defaults.
func bundleLimits(l config.BundleLimits) policy.Limits {
	return policy.Limits{MaxCompressedBytes: l.MaxCompressedBytes, MaxExpandedBytes: l.MaxExpandedBytes, MaxFileBytes: l.MaxFileBytes}
}

// verification turns the signing section into OPA's verification config; nil when
// bundles need no signature.
func verification(s *config.BundleSigning) (*bundle.VerificationConfig, error) {
	if s == nil {
		return nil, nil
	}
	key := s.PublicKey
	switch {
	case s.PublicKeyFile != "":
		raw, err := os.ReadFile(s.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("bundle.signing.public_key_file: %w", err)
		}
		key = string(raw)
	case s.Secret != "":
		key = string(s.Secret)
	}
	keys := map[string]*bundle.KeyConfig{s.KeyID: {Key: key, Algorithm: s.Algorithm, Scope: s.Scope}}
	return bundle.NewVerificationConfig(keys, s.KeyID, s.Scope, nil), nil
}

// runPoller polls a bundle server (the policy's, or the canary candidate's) until ctx
// ends; the channel closes when polling has stopped, so shutdown never races a bundle
// being written to the persist dir. A nil client is closed at once.
func runPoller(ctx context.Context, c *remote.Client) <-chan struct{} {
	done := make(chan struct{})
	if c == nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	return done
}
