package app

import (
	"context"
	"io"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/gavel-gw/gavel/engine/tracing"
)

// Option adjusts how New assembles a gateway.
type Option func(*options)

type options struct {
	tracerProvider trace.TracerProvider
	bootstrap      io.Writer
	keysPoll       time.Duration
}

// WithBootstrapAdmin makes a gateway that listens on loopback and has no admin key
// anywhere create one at startup (a managed key, stored hashed) and write it, with the
// console's URL, to w: once, since the next start finds it. `gavel serve` uses it.
func WithBootstrapAdmin(w io.Writer) Option {
	return func(o *options) { o.bootstrap = w }
}

// WithKeysPollInterval overrides keys.PollInterval (tests).
func WithKeysPollInterval(d time.Duration) Option {
	return func(o *options) { o.keysPoll = d }
}

// WithTracerProvider traces with tp instead of the OTEL_* environment (tests record spans
// this way). The caller owns tp: Close does not shut it down.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracerProvider = tp }
}

// TracingShutdownTimeout bounds the final flush of spans on Close: a collector that is
// gone must not hold the shutdown.
const TracingShutdownTimeout = 5 * time.Second

// setupTracing returns the gateway's tracing, nil when it is off.
func setupTracing(ctx context.Context, getenv func(string) string, log *slog.Logger, o options) (*tracing.Tracing, error) {
	if o.tracerProvider != nil {
		return tracing.New(o.tracerProvider), nil
	}
	t, err := tracing.FromEnv(ctx, getenv, log)
	if t != nil {
		log.Info("tracing on (OpenTelemetry)")
	}
	return t, err
}

// closeTracing flushes the spans still queued and stops the exporters.
func (g *Gateway) closeTracing() {
	if g.tracing == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), TracingShutdownTimeout)
	defer cancel()
	if err := g.tracing.Shutdown(ctx); err != nil {
		g.log.Warn("tracing shutdown", "err", err)
	}
	g.tracing = nil
}
