package drills

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// streamCost is what one stream of the lifecycle drills costs: usage50.
const streamCost = 10*inPrice/1_000_000 + 20*outPrice/1_000_000

// SIGTERM with streams in flight: every stream already open finishes with [DONE] within
// the shutdown grace, gavel exits 0 and stops accepting, and after a restart on the same
// file ledger each finished stream is charged exactly once: nothing twice, nothing lost.
func TestDrillSIGTERM(t *testing.T) {
	w := newWorld(t)
	// About 1.2 s per stream, well inside the 5 s grace.
	w.upA.SetDefault(fakeupstream.AnyModel, fakeupstream.Step{Reply: strings.Repeat("word ", 20), Chunks: 20,
		ChunkInterval: 60 * time.Millisecond, Usage: usage50})
	yaml := w.yaml(cfg{shutdownTimeout: "5s"})
	p := w.startGavel(yaml)
	r := begin(t, "SIGTERM, streams in flight", p)
	c := httpClient(20 * time.Second)
	n := scale(12, 48)
	results := make(chan result, 1)
	go func() {
		results <- load(n, n, 8*time.Second, func(ctx context.Context, i int) outcome {
			return chat(ctx, c, p.URL, w.key, "solo", true)
		})
	}()
	eventually(t, 10*time.Second, "every stream to be open upstream", func() bool { return w.upA.ActiveStreams() == n })
	r.row.GorAfter, r.row.RSSAfter = p.goroutines(), p.rss() // at the signal: the peak
	sent := time.Now()
	p.signal(syscall.SIGTERM)
	if !p.waitExit(5*time.Second + 2*time.Second) {
		t.Fatalf("gavel still running 7s after SIGTERM with a 5s grace\n%s", p.logTail())
	}
	exitAfter := time.Since(sent)
	res := <-results
	r.add(res)
	if p.err != nil {
		t.Errorf("gavel exited with %v after SIGTERM, want 0\n%s", p.err, p.logTail())
	}
	if _, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
		t.Error("gavel's port still accepts connections after it exited")
	}
	requireAll(t, "streams open at SIGTERM", res)

	// The same ledger, reopened: exactly one charge per stream the clients received.
	p2 := w.startGavel(yaml)
	st := p2.mustSpend()
	r.row.SpendAfter = st.spent
	r.row.Took = time.Since(r.start)
	t.Logf("gavel exited %v after SIGTERM", exitAfter.Round(time.Millisecond))
	if want := int64(res.ok) * streamCost; st.spent != want || st.reserved != 0 {
		t.Errorf("after restart: spent %d reserved %d µUSD; want %d spent (%d streams × %d), 0 reserved",
			st.spent, st.reserved, want, res.ok, streamCost)
	}
	p2.stop()

	t.Run("past the grace", func(t *testing.T) {
		w := newWorld(t)
		w.upA.SetDefault(fakeupstream.AnyModel, fakeupstream.Step{Reply: strings.Repeat("word ", 40), Chunks: 40,
			ChunkInterval: 100 * time.Millisecond, Usage: usage50})
		p := w.startGavel(w.yaml(cfg{shutdownTimeout: "1s"}))
		r := begin(t, "SIGTERM, streams outlive the grace", p)
		n := scale(8, 32)
		results := make(chan result, 1)
		go func() {
			results <- load(n, n, 4*time.Second, func(ctx context.Context, i int) outcome {
				return chat(ctx, c, p.URL, w.key, "solo", true)
			})
		}()
		eventually(t, 10*time.Second, "every stream to be open upstream", func() bool { return w.upA.ActiveStreams() == n })
		p.signal(syscall.SIGTERM)
		if !p.waitExit(3 * time.Second) {
			t.Fatalf("gavel still running 3s after SIGTERM with a 1s grace")
		}
		res := <-results
		r.add(res)
		if res.errors["stream_error"] != n || res.hung != 0 {
			t.Fatalf("want every stream cut by the deadline to end with an error event: %d ok %v, %d hung", res.ok, res.errors, res.hung)
		}
	})
}

// kill -9 with the file ledger: gavel dies mid-load without any chance to flush; it
// restarts on the same file, and the spend it reports is within one response of what
// clients were served.
func TestDrillKill9(t *testing.T) {
	w := newWorld(t)
	w.upA.SetDefault(fakeupstream.AnyModel, fakeupstream.Step{Latency: 10 * time.Millisecond})
	yaml := w.yaml(cfg{})
	p := w.startGavel(yaml)
	r := begin(t, "kill -9, file ledger", p)
	c := httpClient(5 * time.Second)
	k := scale(30, 300)
	var ok atomic.Int64
	res := result{errors: map[string]int{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		// One request at a time, so at most one response is in doubt when the kill lands.
		defer wg.Done()
		for i := 0; i < 10*k; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			o := chat(ctx, c, p.URL, w.key, "solo", i%2 == 0)
			cancel()
			res.requests++
			res.outcomes = append(res.outcomes, o)
			if o.took > 3*time.Second {
				res.hung++
			}
			if o.class != "ok" {
				res.errors[o.class]++
				return // the kill landed
			}
			res.ok++
			ok.Add(1)
		}
	}()
	eventually(t, 30*time.Second, "the load to get going", func() bool { return ok.Load() >= int64(k) })
	r.row.GorAfter, r.row.RSSAfter = p.goroutines(), p.rss()
	p.signal(syscall.SIGKILL)
	p.waitExit(5 * time.Second)
	wg.Wait()
	r.add(res)
	var ee interface{ ExitCode() int }
	if !errors.As(p.err, &ee) {
		t.Fatalf("gavel exit: %v", p.err)
	}

	p2 := w.startGavel(yaml) // reopens the file the killed process held
	st := p2.mustSpend()
	r.row.SpendAfter, r.row.Took = st.spent, time.Since(r.start)
	served := int64(res.ok) * replyCost
	if st.spent < served-replyCost || st.spent > served+replyCost {
		t.Errorf("after kill -9: spent %d µUSD, clients were served %d (%d × %d); want within one response",
			st.spent, served, res.ok, replyCost)
	}
	t.Logf("served %d, recorded %d, reserved %d µUSD", served, st.spent, st.reserved)
	// The reopened ledger takes new charges.
	if o := chat(context.Background(), c, p2.URL, w.key, "solo", false); o.class != "ok" {
		t.Fatalf("after restart: %s %s", o.class, o.body)
	}
	if st2 := p2.mustSpend(); st2.spent != st.spent+replyCost {
		t.Errorf("after restart a request moved spend %d → %d, want +%d", st.spent, st2.spent, replyCost)
	}
	p2.stop()
}
