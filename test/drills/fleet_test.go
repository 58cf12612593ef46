package drills

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/test/fakeupstream"
	"github.com/gavel-gw/gavel/test/internal/policybundle"
	"github.com/gavel-gw/gavel/test/internal/realsrv"
)

// The fleet's shape and limits (see docs/deploy.md, "What the fleet test proves").
const (
	fleetSize = 3
	// The replicas check the bundle server every 1 to 2 s: each must fetch a new revision
	// within one polling interval (fleetPollMax, plus fleetTimerSlack for a timer firing
	// late on a loaded machine), and serve it within fleetActivation of the fetch (verify,
	// compile and swap, which take seconds on a 2-core CI machine under load).
	fleetPollMin    = time.Second
	fleetPollMax    = 2 * time.Second
	fleetTimerSlack = 500 * time.Millisecond
	fleetActivation = 2 * time.Second
	// Project "capped" may spend 100 replies a day, whichever replica serves them.
	fleetBudgetLimit = 100 * replyCost
	// User "limited" may send 30 requests a minute across the whole fleet.
	fleetRPM    = 30
	fleetBundle = "bundles/gavel.tar.gz"
)

// fleet is three gavel replicas (the real binary) behind nginx as a load balancer, sharing
// one Redis as their ledger and polling nginx as their bundle server, all on loopback.
type fleet struct {
	w                   *world
	redis               *redisServer
	bundles, lb         *realsrv.Nginx
	replicas            []*proc
	signingKey          string
	keyCapped, keyLimit string // project "capped"'s key; user "limited"'s key
	client              *http.Client
}

func startFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{w: newWorld(t), redis: startRedis(t), bundles: realsrv.StartNginx(t, t.TempDir())}
	w := f.w
	// Each upstream call takes a little while, so that load overlaps on every replica and a
	// kill always finds requests in flight.
	w.upA.SetDefault(fakeupstream.AnyModel, fakeupstream.Step{Latency: 20 * time.Millisecond})
	keys := w.data["keys"].(map[string]any)
	// The drills' key keeps its team (whose spend the harness reads) but loses its user and
	// project, so that the fleet's budget and rate limit below apply to their own keys only.
	base := keys[auth.Hash(w.key)].(map[string]any)
	delete(base, "user")
	delete(base, "project")
	var capped, limited string
	f.keyCapped, capped, _ = auth.NewKey()
	f.keyLimit, limited, _ = auth.NewKey()
	keys[capped] = map[string]any{"key_id": "k-capped", "team": "capped", "project": "capped"}
	keys[limited] = map[string]any{"key_id": "k-limited", "team": "limited", "user": "limited"}
	w.data["budgets"] = append(w.data["budgets"].([]any), map[string]any{"name": "project-daily", "scope": "project", "period": "day",
		"limit_musd": fleetBudgetLimit, "hard": true})
	w.data["rate_limits"] = []any{map[string]any{"scope": "user", "rpm": fleetRPM}}
	var pubFile string
	f.signingKey, pubFile = policybundle.ESKeys(t)
	f.publish(t, "fleet-1", 1)

	var addrs []string
	for i := range fleetSize {
		// ?replica=i tells the replicas' downloads apart in nginx's access log.
		extra := fmt.Sprintf("bundle:\n  url: %s/%s?replica=%d\n  polling: {min_delay: %s, max_delay: %s}\n"+
			"  signing: {public_key_file: %q, algorithm: ES256}\n  persist_dir: %q\n",
			f.bundles.URL, fleetBundle, i, fleetPollMin, fleetPollMax, pubFile, filepath.Join(w.dir, fmt.Sprintf("persist-%d", i)))
		// The fake upstream shares the test process (race-instrumented under make test) and
		// the machine with everything else: give its answers to 500 concurrent requests time.
		p := w.startGavel(w.yaml(cfg{policy: "none", extra: extra, attemptTimeout: "20s",
			ledger: fmt.Sprintf("ledger: {store: redis, failure_mode: closed, redis: {addr: %q}}", f.redis.Addr())}))
		f.replicas = append(f.replicas, p)
		addrs = append(addrs, p.Addr)
	}
	f.lb = realsrv.StartLoadBalancer(t, addrs)
	f.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 512}}
	t.Cleanup(f.client.CloseIdleConnections)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("--- nginx (load balancer) error log ---\n" + f.lb.ErrorLog())
		}
	})
	return f
}

// publish puts a signed bundle of the world's data, at revision rev, on the bundle server.
func (f *fleet) publish(t *testing.T, rev string, version int) {
	t.Helper()
	f.bundles.Publish(t, fleetBundle, policybundle.Signed(t, rev, f.w.data, f.signingKey, nil), version)
}

// replica is the index of the replica at addr, -1 for none.
func (f *fleet) replica(addr string) int {
	for i, p := range f.replicas {
		if p.Addr == addr {
			return i
		}
	}
	return -1
}

// served counts, per replica, the requests nginx passed to it and nowhere else.
func (f *fleet) served(t *testing.T, res result) []int {
	t.Helper()
	n := make([]int, fleetSize)
	for _, o := range res.outcomes {
		up := o.header.Get(realsrv.UpstreamHeader)
		i := f.replica(up)
		if i < 0 {
			t.Fatalf("a response passed through %q, not one replica (%s %s)", up, o.class, o.body)
		}
		n[i]++
	}
	return n
}

// spreadOver fails unless every replica served at least min of the requests.
func (f *fleet) spreadOver(t *testing.T, what string, res result, min int) []int {
	t.Helper()
	n := f.served(t, res)
	for i, c := range n {
		if c < min {
			t.Fatalf("%s: replica %d served %d requests, want at least %d of %d (load balancer spread %v)", what, i, c, min, res.requests, n)
		}
	}
	return n
}

// ledgerUnavailable is gavel's fail-closed refusal: a ledger call outlived its bound (on
// a loaded machine, a burst of hundreds of requests can hold Redis past the client's
// 300 ms timeout), so the request was refused before reaching the upstream, with
// Retry-After. It is a correct refusal, never a success and never an uncharged answer.
func ledgerUnavailable(o outcome) bool {
	return o.class == "503" && strings.Contains(o.body, `"code":"ledger_unavailable"`) && o.header.Get("Retry-After") != ""
}

// standing is one owner's spend read from every replica, which must agree: they share
// the ledger. While a replica's ledger client backs off (see settled) or a queued commit
// is being replayed, reads fail or move between replicas: they are tried again for up
// to 10 s, until every replica answers the same.
func (f *fleet) standing(t *testing.T, scope, id string, replicas ...*proc) ledgerState {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var states []ledgerState
		var err error
		for _, p := range replicas {
			var st ledgerState
			if st, err = p.spendOf(scope, id); err != nil {
				last = fmt.Sprintf("replica %s: %v", p.Addr, err)
				break
			}
			states = append(states, st)
		}
		if err != nil {
			continue
		}
		if slices.Equal(states, slices.Repeat(states[:1], len(states))) {
			return states[0]
		}
		last = fmt.Sprintf("the replicas disagree (not one shared ledger?): %+v", states)
	}
	t.Fatalf("%s %s: %s", scope, id, last)
	return ledgerState{}
}

// settled waits (up to 10 s) until every replica's ledger answers again: a burst that
// pushed Redis calls past their bound leaves a replica failing fast for a moment
// (redisstore's retry interval), and the next check must not start inside it.
func (f *fleet) settled(t *testing.T) {
	t.Helper()
	for _, p := range f.replicas {
		select {
		case <-p.exited:
			continue
		default:
		}
		eventually(t, 10*time.Second, "replica "+p.Addr+"'s ledger to answer", func() bool {
			_, err := p.spendOf("team", "drill")
			return err == nil
		})
	}
}

// bundleFetches reads the bundle server's access log: when each replica (told apart by
// its ?replica=i) was first served the bundle (200, not 304) at or after since.
func bundleFetches(t *testing.T, log string, since time.Time) []time.Time {
	t.Helper()
	out := make([]time.Time, fleetSize)
	for line := range strings.Lines(log) {
		f := strings.Fields(line) // <msec> <status> "GET /bundles/gavel.tar.gz?replica=i HTTP/1.1"
		if len(f) < 4 || f[1] != "200" {
			continue
		}
		_, q, ok := strings.Cut(f[3], "?replica=")
		i, err := strconv.Atoi(q)
		if !ok || err != nil || i < 0 || i >= fleetSize {
			continue
		}
		sec, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			t.Fatalf("access log line %q: %v", line, err)
		}
		at := time.UnixMilli(int64(sec * 1000))
		if !at.Before(since.Truncate(time.Millisecond)) && out[i].IsZero() {
			out[i] = at
		}
	}
	return out
}

// revision is the bundle revision a replica serves, from /readyz.
func revision(p *proc) string {
	resp, err := http.Get(p.URL + "/readyz")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var body struct {
		Bundle struct {
			Revision string `json:"revision"`
		} `json:"bundle"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	rev, _, _ := strings.Cut(body.Bundle.Revision, "+") // without the built bundle's content hash
	return rev
}

// TestDrillFleet: three replicas behind nginx, one Redis, one bundle server. A hard budget
// holds across replicas under 500 concurrent requests, an RPM limit holds fleet-wide, a
// new bundle revision is live everywhere within a polling interval, Redis restarting is
// survived without restarting a replica, and a replica killed under load loses no request
// the load balancer could retry, and no spend.
func TestDrillFleet(t *testing.T) {
	f := startFleet(t)
	w := f.w
	t.Logf("fleet: replicas %s, %s, %s behind %s; Redis %s; bundles from %s",
		f.replicas[0].Addr, f.replicas[1].Addr, f.replicas[2].Addr, f.lb.Addr, f.redis.Addr(), f.bundles.Addr)

	// 500 requests at once, spread by nginx over the three replicas, against a budget that
	// admits at most 100 of them. Every replica reserves against the same Redis budget, so
	// committed spend never passes the limit, every refusal is OpenAI's 429
	// insufficient_quota naming the budget, and each answer is charged exactly once.
	t.Run("budget", func(t *testing.T) {
		f.settled(t)
		const n = 500
		r := begin(t, "fleet: 500 concurrent, one hard budget", f.replicas[0])
		upBefore := w.upA.Count("*")
		res := load(n, n, 25*time.Second, func(ctx context.Context, i int) outcome {
			return chat(ctx, f.client, f.lb.URL, f.keyCapped, "solo", false)
		})
		r.add(res)
		denied, unavailable := 0, 0
		for _, o := range res.outcomes {
			switch {
			case o.class == "ok":
			case o.class == "429" && strings.Contains(o.body, `"code":"insufficient_quota"`) && strings.Contains(o.body, "project-daily"):
				denied++
			case ledgerUnavailable(o):
				unavailable++
			default:
				t.Fatalf("want 200, 429 insufficient_quota naming project-daily or 503 ledger_unavailable, got %s %s", o.class, o.body)
			}
		}
		if res.hung != 0 {
			t.Errorf("%d requests hung", res.hung)
		}
		spread := f.spreadOver(t, "budget", res, n/fleetSize/2)
		admitted := make([]int, fleetSize)
		for _, o := range res.outcomes {
			if o.class == "ok" {
				admitted[f.replica(o.header.Get(realsrv.UpstreamHeader))]++
			}
		}
		for i, a := range admitted {
			if a == 0 {
				t.Errorf("replica %d admitted none of the requests (admitted per replica %v): the budget was not shared under load", i, admitted)
			}
		}
		var st ledgerState
		want := int64(res.ok) * replyCost
		// A commit whose Redis call outlived its bound is queued and replayed (every 500 ms)
		// while the answer goes out: wait for those to land.
		deadline := time.Now().Add(10 * time.Second)
		for st = f.standing(t, "project", "capped", f.replicas...); st.spent < want && time.Now().Before(deadline); st = f.standing(t, "project", "capped", f.replicas...) {
			time.Sleep(50 * time.Millisecond)
		}
		r.row.SpendAfter = st.spent
		t.Logf("500 concurrent: %d answered, %d refused by the budget, %d by a ledger call past its bound; served per replica %v, admitted per replica %v; spent %d of %d µUSD",
			res.ok, denied, unavailable, spread, admitted, st.spent, fleetBudgetLimit)
		if res.ok == 0 || denied == 0 {
			t.Fatalf("want some answered and some refused, got %d and %d", res.ok, denied)
		}
		if st.spent > fleetBudgetLimit {
			t.Errorf("overspent: %d µUSD against a hard budget of %d", st.spent, fleetBudgetLimit)
		}
		if st.spent != want {
			t.Errorf("spent %d µUSD for %d answers of %d µUSD each, want %d", st.spent, res.ok, replyCost, want)
		}
		if st.reserved != 0 {
			t.Errorf("%d µUSD still reserved after every request ended", st.reserved)
		}
		if got := w.upA.Count("*") - upBefore; got != res.ok {
			t.Errorf("the upstream saw %d calls for %d answers", got, res.ok)
		}
	})

	// 90 requests from one user, 30 at a time, over the three replicas, against 30 a
	// minute: exactly 30 are answered (three replicas counting alone would admit up to 90)
	// and the rest get 429 rate_limit_exceeded with Retry-After; then each replica, asked
	// directly, refuses too.
	t.Run("rpm", func(t *testing.T) {
		f.settled(t)
		// A burst that straddles a minute boundary may see a sliver of the last minute's
		// count expire (the window slides): start it well inside a minute.
		if left := time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)); left < 5*time.Second {
			time.Sleep(left + 100*time.Millisecond)
		}
		r := begin(t, "fleet: RPM limit, 90 requests", f.replicas[0])
		const n = 3 * fleetRPM
		res := load(n, fleetRPM, 5*time.Second, func(ctx context.Context, i int) outcome {
			return chat(ctx, f.client, f.lb.URL, f.keyLimit, "solo", i%2 == 0)
		})
		r.add(res)
		limit := strconv.Itoa(fleetRPM)
		limited, unavailable := 0, 0
		for _, o := range res.outcomes {
			switch {
			case o.class == "ok":
			case o.class == "429" && strings.Contains(o.body, `"code":"rate_limit_exceeded"`) && o.header.Get("Retry-After") != "" &&
				o.header.Get("x-ratelimit-limit-requests") == limit && o.header.Get("x-ratelimit-remaining-requests") == "0":
				limited++
			case ledgerUnavailable(o):
				unavailable++
			default:
				t.Fatalf("want 429 rate_limit_exceeded with Retry-After and x-ratelimit-limit-requests %s, got %s %v %s", limit, o.class, o.header, o.body)
			}
		}
		spread := f.spreadOver(t, "rpm", res, fleetRPM*2/3)
		t.Logf("%d requests: %d answered, %d rate limited, %d refused by a ledger call past its bound; served per replica %v", n, res.ok, limited, unavailable, spread)
		switch {
		case res.ok > fleetRPM:
			t.Fatalf("%d answered against a fleet-wide limit of %d a minute", res.ok, fleetRPM)
		case unavailable == 0 && res.ok != fleetRPM:
			t.Fatalf("%d answered, want exactly the limit, %d", res.ok, fleetRPM)
		case res.ok == 0 || limited == 0:
			t.Fatalf("want some answered and some rate limited, got %d and %d", res.ok, limited)
		}
		if res.hung != 0 {
			t.Errorf("%d requests hung", res.hung)
		}
		for i, p := range f.replicas {
			o := chat(context.Background(), f.client, p.URL, f.keyLimit, "solo", false)
			if o.class != "429" || !strings.Contains(o.body, `"code":"rate_limit_exceeded"`) {
				t.Errorf("replica %d asked directly after the burst: %s %s, want 429 rate_limit_exceeded", i, o.class, o.body)
			}
		}
	})

	// A new revision on the bundle server: each replica, polling on its own, fetches it
	// within one polling interval (nginx's access log says when each download was served)
	// and serves it soon after; every request through the load balancer is decided by it
	// from then on.
	t.Run("bundle", func(t *testing.T) {
		f.settled(t)
		r := begin(t, "fleet: new bundle revision", f.replicas[0])
		next := policybundle.Signed(t, "fleet-2", w.data, f.signingKey, nil) // built (slowly, under -race) before the clock starts
		published := time.Now()
		f.bundles.Publish(t, fleetBundle, next, 2)
		live := make([]time.Time, fleetSize)
		var wg sync.WaitGroup
		for i, p := range f.replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for deadline := published.Add(fleetPollMax + fleetTimerSlack + fleetActivation + 5*time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
					if revision(p) == "fleet-2" {
						live[i] = time.Now()
						return
					}
				}
			}()
		}
		wg.Wait()
		fetched := bundleFetches(t, f.bundles.AccessLog(), published)
		for i := range fleetSize {
			switch {
			case fetched[i].IsZero():
				t.Errorf("replica %d never downloaded fleet-2", i)
			case fetched[i].Sub(published) > fleetPollMax+fleetTimerSlack:
				t.Errorf("replica %d downloaded fleet-2 %v after it was published, want within one polling interval (max_delay %v)",
					i, fetched[i].Sub(published).Round(time.Millisecond), fleetPollMax)
			case live[i].IsZero():
				t.Errorf("replica %d downloaded fleet-2 but never served it", i)
			case live[i].Sub(fetched[i]) > fleetActivation:
				t.Errorf("replica %d served fleet-2 %v after downloading it, want within %v", i, live[i].Sub(fetched[i]).Round(time.Millisecond), fleetActivation)
			}
			if !fetched[i].IsZero() && !live[i].IsZero() {
				t.Logf("replica %d: downloaded fleet-2 %v after it was published, served it %v later",
					i, fetched[i].Sub(published).Round(time.Millisecond), live[i].Sub(fetched[i]).Round(time.Millisecond))
			}
		}
		res := load(30, 6, 5*time.Second, func(ctx context.Context, i int) outcome {
			o := chat(ctx, f.client, f.lb.URL, w.key, "solo", i%2 == 0)
			if o.class == "ok" && revisionName(o.header) != "fleet-2" {
				o.class, o.body = "wrong_revision", o.header.Get("X-Gavel-Bundle-Revision")
			}
			return o
		})
		r.add(res)
		requireAll(t, "after the new revision", res)
		f.spreadOver(t, "bundle", res, 30/fleetSize/2)
	})

	// Redis killed and started again, empty, on the same address: while it is down every
	// request is refused with 503 ledger_unavailable and Retry-After (failure_mode closed:
	// nothing reaches the upstream unaccounted, nginx does not retry an answer); once it is
	// back every replica serves again, none restarted, and every answer since is charged
	// exactly once in the new Redis.
	t.Run("redis restart", func(t *testing.T) {
		f.settled(t)
		r := begin(t, "fleet: Redis restart", f.replicas[0])
		pids := make([]int, fleetSize)
		for i, p := range f.replicas {
			pids[i] = p.pid()
		}
		f.redis.stop()
		upBefore := w.upA.Count("*")
		down := load(30, 6, 3*time.Second, func(ctx context.Context, i int) outcome {
			return chat(ctx, f.client, f.lb.URL, w.key, "solo", i%2 == 0)
		})
		r.add(down)
		for _, o := range down.outcomes {
			if o.class != "503" || !strings.Contains(o.body, `"code":"ledger_unavailable"`) || o.header.Get("Retry-After") == "" {
				t.Fatalf("Redis down: want 503 ledger_unavailable with Retry-After, got %s %s", o.class, o.body)
			}
		}
		if down.hung != 0 {
			t.Errorf("%d requests hung with Redis down", down.hung)
		}
		f.spreadOver(t, "Redis down", down, 30/fleetSize/2)
		if got := w.upA.Count("*") - upBefore; got != 0 {
			t.Errorf("%d requests reached the upstream with the ledger down", got)
		}

		f.redis.start()
		restarted := time.Now()
		for i, p := range f.replicas {
			back := waitOK(t, func(ctx context.Context) outcome { return chat(ctx, f.client, p.URL, w.key, "solo", false) })
			r.add(back)
			t.Logf("replica %d answers %v after Redis is back (%d attempts)", i, time.Since(restarted).Round(time.Millisecond), back.requests)
			select {
			case <-p.exited:
				t.Fatalf("replica %d exited", i)
			default:
			}
			if p.pid() != pids[i] {
				t.Fatalf("replica %d was restarted", i)
			}
		}
		var before ledgerState
		eventually(t, 5*time.Second, "the probes' reservations to be settled", func() bool {
			before = f.standing(t, "team", "drill", f.replicas...)
			return before.reserved == 0
		})
		const n = 60
		again := load(n, 6, 3*time.Second, func(ctx context.Context, i int) outcome {
			return chat(ctx, f.client, f.lb.URL, w.key, "solo", i%2 == 0)
		})
		r.add(again)
		requireAll(t, "Redis back", again)
		f.spreadOver(t, "Redis back", again, n/fleetSize/2)
		after := f.standing(t, "team", "drill", f.replicas...)
		r.row.SpendBefore, r.row.SpendAfter = before.spent, after.spent
		if d := after.spent - before.spent; d != n*replyCost || after.reserved != 0 {
			t.Errorf("Redis back: spend grew by %d µUSD for %d answers of %d (want %d), %d reserved", d, n, replyCost, n*replyCost, after.reserved)
		}
	})

	// SIGKILL one replica while 12 clients keep sending through nginx. The only requests
	// that may fail are those the dead replica already had (nginx must not replay a POST
	// that reached a replica: it may have been answered and charged); every request after
	// the kill is answered, those nginx first sent to the dead replica by retrying them on
	// a live one. Every answer a client received is charged; the only charges beyond them
	// are of requests the dead replica had in flight.
	t.Run("kill a replica", func(t *testing.T) {
		f.settled(t)
		victim := f.replicas[1]
		survivors := []*proc{f.replicas[0], f.replicas[2]}
		r := begin(t, "fleet: kill -9 one replica under load", f.replicas[0])
		before := f.standing(t, "team", "drill", f.replicas...)
		upBefore := w.upA.Count("*")
		const n, workers = 400, 12
		starts := make([]time.Time, n)
		var answered atomic.Int64
		done := make(chan result)
		go func() {
			done <- load(n, workers, 5*time.Second, func(ctx context.Context, i int) outcome {
				starts[i] = time.Now()
				o := chat(ctx, f.client, f.lb.URL, w.key, "solo", i%2 == 0)
				if o.class == "ok" {
					answered.Add(1)
				}
				return o
			})
		}()
		eventually(t, 20*time.Second, "the load to get going", func() bool { return answered.Load() >= 60 })
		victim.signal(syscall.SIGKILL)
		if !victim.waitExit(5 * time.Second) {
			t.Fatal("the replica did not die on SIGKILL")
		}
		killed := time.Now()
		res := <-done
		r.add(res)
		if res.hung != 0 {
			t.Errorf("%d requests hung", res.hung)
		}
		failed, after, retried := 0, 0, 0
		for i, o := range res.outcomes {
			up := o.header.Get(realsrv.UpstreamHeader)
			if starts[i].After(killed) {
				after++
			}
			if strings.HasPrefix(up, victim.Addr+", ") && o.class == "ok" {
				retried++
			}
			if o.class == "ok" {
				continue
			}
			failed++
			switch {
			case o.class != "502" && o.class != "cut":
				t.Errorf("request %d: %s %s; want only the dead replica's own requests to fail (502 or a cut stream)", i, o.class, o.body)
			case up != victim.Addr:
				t.Errorf("request %d failed (%s) through %q: only requests the dead replica %s had may fail", i, o.class, up, victim.Addr)
			case starts[i].After(killed):
				t.Errorf("request %d started after the replica died and failed (%s through %q): nginx should have retried it", i, o.class, up)
			}
		}
		t.Logf("%d requests, %d answered, %d failed (the dead replica's in flight), %d started after the kill, %d of them retried on a live replica",
			n, res.ok, failed, after, retried)
		if failed > workers {
			t.Errorf("%d requests failed; at most the %d in flight can have been on the dead replica", failed, workers)
		}
		if after == 0 || retried == 0 {
			t.Errorf("the kill came too late to test retries: %d requests after it, %d retried", after, retried)
		}
		// Served means charged: a replica commits the charge before the answer's last
		// bytes (see pipeline.Settle). Charges without an answer can only be the dead
		// replica's requests in flight.
		st := f.standing(t, "team", "drill", survivors...)
		r.row.SpendBefore, r.row.SpendAfter = before.spent, st.spent
		spent := st.spent - before.spent
		low, high := int64(res.ok)*replyCost, int64(res.ok+failed)*replyCost
		if spent < low || spent > high {
			t.Errorf("spend grew by %d µUSD; want between %d (the %d answers) and %d (plus the %d failed)", spent, low, res.ok, high, failed)
		}
		if calls := w.upA.Count("*") - upBefore; calls < res.ok || calls > res.ok+failed {
			t.Errorf("the upstream saw %d calls for %d answers and %d failures", calls, res.ok, failed)
		}
		// `gavel healthcheck` (the container image's HEALTHCHECK) tells the dead replica
		// from the live ones.
		for _, p := range f.replicas {
			out, err := exec.Command(gavelBin, "healthcheck", "--addr", p.Addr, "--path", "/readyz").CombinedOutput()
			if dead := p == victim; dead != (err != nil) {
				t.Errorf("gavel healthcheck of %s (dead: %t): %v %s", p.Addr, dead, err, out)
			}
		}
		// The survivors carry on alone.
		rest := load(30, 6, 3*time.Second, func(ctx context.Context, i int) outcome {
			return chat(ctx, f.client, f.lb.URL, w.key, "solo", i%2 == 0)
		})
		r.add(rest)
		requireAll(t, "after the kill", rest)
	})
}
