package app

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/config"
	"github.com/gavel-gw/gavel/engine/policy"
)

// A gateway nobody calls does no periodic work on its core: the planner's ticks find the
// signals unchanged and evaluate nothing (an evaluation is 10–50 ms of CPU; re-planning on
// every tick was 4.6 % of a core while idle, issue 18).
func TestIdleGatewayDoesNotReplan(t *testing.T) {
	cfg, err := config.Parse([]byte("providers:\n  - {name: m, type: mock}\nledger: {store: memory}\n"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(context.Background(), cfg, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx, l) }()
	defer func() { cancel(); <-served }()

	// Startup builds (the activation's kick, the providers' registration): wait until no
	// build has happened for two refresh periods (a build under -race on a loaded machine
	// can take most of a second, and the registration's may follow it), then watch three
	// ticks.
	deadline := time.Now().Add(30 * time.Second)
	before, since := g.planner.Builds(), time.Now()
	for before == 0 || time.Since(since) < 2*policy.DefaultRefresh {
		if time.Now().After(deadline) {
			t.Fatalf("plan builds did not settle 30 s after start (%d)", before)
		}
		time.Sleep(10 * time.Millisecond)
		if n := g.planner.Builds(); n != before {
			before, since = n, time.Now()
		}
	}
	time.Sleep(3*policy.DefaultRefresh + 100*time.Millisecond)
	if n := g.planner.Builds() - before; n != 0 {
		t.Errorf("%d plan evaluations over %v of idleness, want 0", n, 3*policy.DefaultRefresh)
	}
}
