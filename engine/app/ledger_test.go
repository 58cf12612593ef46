package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/config"
	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/telemetry"
)

// silentRedis accepts connections and never answers: a Redis starved of CPU, as far as a
// client can tell.
func silentRedis(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	return l.Addr().String()
}

// gavel.yaml's ledger.redis.read_timeout is how long a ledger call waits for Redis' reply
// before the failure mode applies (it was a fixed 300 ms).
func TestRedisLedgerTimeouts(t *testing.T) {
	addr := silentRedis(t)
	b := []ledger.Budget{{Scope: ledger.ScopeTeam, ID: "t", Period: ledger.PeriodDay, LimitMicroUSD: 100, Hard: true}}
	for _, tc := range []struct {
		name     string
		yaml     string
		min, max time.Duration
	}{
		// A call on a new connection waits up to twice: for the handshake's reply (HELLO),
		// then for the command's.
		{"default", "", 250 * time.Millisecond, 1500 * time.Millisecond},
		{"read_timeout 2s", "read_timeout: 2s", 1900 * time.Millisecond, 6 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte("ledger:\n  store: redis\n  redis:\n    addr: "+addr+"\n    "+tc.yaml+"\n"), func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			s, err := openLedger(cfg.Ledger, telemetry.NewMetrics(), slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			start := time.Now()
			_, err = s.Reserve(context.Background(), b, 10, time.Minute)
			took := time.Since(start)
			if !errors.Is(err, ledger.ErrStoreUnavailable) {
				t.Fatalf("Reserve against a silent Redis: %v, want ErrStoreUnavailable", err)
			}
			if took < tc.min || took > tc.max {
				t.Errorf("Reserve failed after %v, want between %v and %v", took, tc.min, tc.max)
			}
		})
	}
}
