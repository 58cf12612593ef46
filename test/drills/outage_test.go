package drills

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/test/faultproxy"
	"github.com/gavel-gw/gavel/test/internal/policybundle"
	"github.com/gavel-gw/gavel/test/internal/realsrv"
)

// Redis down and up again: with failure_mode closed every request is refused with 503
// ledger_unavailable and Retry-After while Redis is down (none hangs, none reaches the
// upstream unaccounted); with open every request is served and its charge is replayed to
// Redis once it is back. In both, gavel recovers without a restart when Redis returns,
// every charge made since is in Redis, and no reservation is left held.
func TestDrillRedisDownUp(t *testing.T) {
	for _, mode := range []string{"closed", "open"} {
		t.Run(mode, func(t *testing.T) {
			rs := startRedis(t)
			w := newWorld(t)
			p := w.startGavel(w.yaml(cfg{ledger: fmt.Sprintf("ledger: {store: redis, failure_mode: %s, redis: {addr: %q}}", mode, rs.Addr())}))
			r := begin(t, "Redis down/up, fail "+mode, p)
			c := httpClient(10 * time.Second)
			n := scale(20, 200)
			send := func(ctx context.Context, i int) outcome { return chat(ctx, c, p.URL, w.key, "solo", i%2 == 0) }
			up := load(n, 4, 2*time.Second, send)
			r.add(up)
			requireAll(t, "Redis up", up)
			// A charge whose reply from Redis was lost (a slow moment) is queued and replayed;
			// the replay finds it applied and charges nothing. One still queued when Redis
			// dies would be charged to the Redis that comes back empty, which is right (the
			// first Redis lost it) but is not one of the charges counted below: wait for the
			// queue to be empty, as an operator would read gavel_ledger_pending_commits.
			if _, ok := p.metrics()["gavel_ledger_pending_commits"]; !ok {
				t.Fatal("gavel_ledger_pending_commits is not on /metrics")
			}
			eventually(t, 10*time.Second, "the replay queue to drain before the outage", func() bool {
				return sumMetric(p.metrics(), "gavel_ledger_pending_commits") == 0
			})

			rs.stop()
			upstreamBefore := w.upA.Count("*")
			down := load(n, 4, 2*time.Second, send)
			r.add(down)
			switch mode {
			case "closed":
				for _, o := range down.outcomes {
					if o.class != "503" || !strings.Contains(o.body, `"ledger_unavailable"`) || o.header.Get("Retry-After") == "" {
						t.Fatalf("Redis down, fail closed: want 503 ledger_unavailable with Retry-After, got %s %q", o.class, o.body)
					}
				}
				if got := w.upA.Count("*") - upstreamBefore; got != 0 {
					t.Errorf("fail closed sent %d requests upstream with the ledger down", got)
				}
				if down.hung != 0 {
					t.Errorf("%d requests hung with Redis down", down.hung)
				}
			case "open":
				requireAll(t, "Redis down, fail open", down)
			}
			if sumMetric(p.metrics(), "gavel_ledger_unavailable_total") == 0 {
				t.Error("the outage was not counted in gavel_ledger_unavailable_total")
			}

			rs.start() // the same address, empty, as after a Redis restart without persistence
			back := waitOK(t, func(ctx context.Context) outcome { return send(ctx, 0) })
			eventually(t, 10*time.Second, "the ledger to answer again", func() bool {
				_, err := p.spend()
				return err == nil
			})
			again := load(n, 4, 2*time.Second, send)
			r.add(back)
			r.add(again)
			requireAll(t, "Redis back", again)
			// Every charge since Redis restarted empty is in it exactly once, including (fail
			// open) the ones made locally during the outage and replayed, and nothing stays
			// reserved.
			want := int64(down.ok+back.ok+again.ok) * replyCost
			var st ledgerState
			deadline := time.Now().Add(10 * time.Second)
			pending := func() float64 { return sumMetric(p.metrics(), "gavel_ledger_pending_commits") }
			for st = p.mustSpend(); (st.spent < want || st.reserved != 0 || pending() != 0) && time.Now().Before(deadline); st = p.mustSpend() {
				time.Sleep(50 * time.Millisecond)
			}
			m := p.metrics()
			t.Logf("replayed %v queued charges, %v pending, %v dropped", sumMetric(m, "gavel_ledger_replayed_commits_total"),
				sumMetric(m, "gavel_ledger_pending_commits"), sumMetric(m, "gavel_ledger_dropped_commits_total"))
			r.done(p, c)
			if st.spent != want || st.reserved != 0 {
				t.Errorf("Redis back: spent %d reserved %d µUSD; want exactly %d spent ((%d + %d + %d) × %d), nothing reserved\n%s",
					st.spent, st.reserved, want, down.ok, back.ok, again.ok, replyCost, p.logTail())
			}
			requireGoroutinesBack(t, r)
		})
	}
}

// Bundle server failures: the server down, answering 500, a truncated download, a
// corrupted one and a tampered (signature-breaking) bundle all leave the active revision
// serving every request, with memory bounded; a good bundle published afterwards
// activates without a restart. Once fixed, a decompression bomb is refused the same way.
func TestDrillBundleServer(t *testing.T) {
	root := t.TempDir()
	ng := realsrv.StartNginx(t, root)
	px, err := faultproxy.New(ng.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	priv, pubFile := policybundle.ESKeys(t)
	w := newWorld(t)
	const name = "bundles/gavel.tar.gz"
	ng.Publish(t, name, policybundle.Signed(t, "drill-1", w.data, priv, nil), 1)
	extra := fmt.Sprintf("bundle:\n  url: http://%s/%s\n  polling: {min_delay: 100ms, max_delay: 200ms}\n"+
		"  signing: {public_key_file: %q, algorithm: ES256}\n  persist_dir: %q\n", px.Addr(), name, pubFile, filepath.Join(w.dir, "persist"))
	p := w.startGavel(w.yaml(cfg{policy: "none", extra: extra}))
	r := begin(t, "bundle server failures", p)
	c := httpClient(10 * time.Second)
	n := scale(20, 100)
	errs := func() float64 { return sumMetric(p.metrics(), "gavel_bundle_download_errors_total") }
	// phase waits until gavel has counted the failure (a failed exchange on every check, a
	// rejected bundle once: its repeats are not fetched or judged again), then checks that
	// every request is still decided by revision want.
	phase := func(t *testing.T, what, want string) {
		t.Helper()
		base := errs()
		eventually(t, 10*time.Second, what+" to be seen by the poller", func() bool { return errs() >= base+1 })
		res := load(n, 4, 2*time.Second, func(ctx context.Context, i int) outcome {
			o := chat(ctx, c, p.URL, w.key, "chat", false)
			if o.class == "ok" && revisionName(o.header) != want {
				o.class, o.body = "wrong_revision", o.header.Get("X-Gavel-Bundle-Revision")
			}
			return o
		})
		r.add(res)
		requireAll(t, what, res)
	}

	px.Set(faultproxy.Faults{Refuse: true})
	px.CloseConns() // the poller's keep-alive connection too
	phase(t, "server down", "drill-1")
	px.Clear()
	ng.Fail500(t, true)
	phase(t, "server 500", "drill-1")
	rev2 := policybundle.Signed(t, "drill-2", w.data, priv, nil)
	px.Set(faultproxy.Faults{Cut: true, CutAfter: int64(len(rev2) / 2)})
	ng.Fail500(t, false)
	ng.Publish(t, name, rev2, 2)
	phase(t, "truncated bundle", "drill-1")
	px.Set(faultproxy.Faults{Corrupt: true, CorruptAfter: 400})
	phase(t, "corrupted bundle", "drill-1")
	ng.Publish(t, name, policybundle.Signed(t, "drill-3", w.data, priv, func(d map[string]any) {
		d["routing"].(map[string]any)["max_targets"] = 1
	}), 3)
	px.Clear()
	phase(t, "tampered bundle", "drill-1")

	t.Run("bomb", func(t *testing.T) {
		rssBefore := p.rss()
		ng.Publish(t, name, bombBundle(t), 4)
		phase(t, "a decompression bomb", "drill-1")
		if rss := p.rss(); rss > rssBefore+128<<20 {
			t.Errorf("RSS %d → %d MB unpacking a bomb", rssBefore>>20, rss>>20)
		}
	})

	ng.Publish(t, name, policybundle.Signed(t, "drill-5", w.data, priv, nil), 5)
	var rev string
	eventually(t, 10*time.Second, "a good bundle to activate after the failures", func() bool {
		o := chat(context.Background(), c, p.URL, w.key, "chat", false)
		rev = revisionName(o.header)
		return o.class == "ok" && rev == "drill-5"
	})
	r.done(p, c)
	if r.row.RSSAfter > r.row.RSSBefore+64<<20 {
		t.Errorf("RSS %d → %d MB over the bundle failures", r.row.RSSBefore>>20, r.row.RSSAfter>>20)
	}
	requireGoroutinesBack(t, r)
}

// bombBundle is a 1 MB tar.gz that unpacks to a 1 GiB gavel/data.json of zeros. It is a
// concatenation of gzip members (which gzip readers join): one with the tar header, then
// the same 1 MiB of zeros compressed once and repeated; the tar's end blocks are zeros too.
func bombBundle(t *testing.T) []byte {
	t.Helper()
	var hdr bytes.Buffer
	if err := tar.NewWriter(&hdr).WriteHeader(&tar.Header{Name: "gavel/data.json", Mode: 0o644, Size: 1 << 30, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	member := func(b []byte) []byte {
		var out bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		return out.Bytes()
	}
	zeros := member(make([]byte, 1<<20))
	out := bytes.NewBuffer(member(hdr.Bytes()))
	for range 1025 { // 1 GiB of file, then 1 MiB more covers the two end blocks
		out.Write(zeros)
	}
	return out.Bytes()
}

// revisionName is the revision a response was decided by, without the content hash a
// built bundle's revision carries after "+" (drill-1+3f2a… is drill-1).
func revisionName(h http.Header) string {
	rev, _, _ := strings.Cut(h.Get("X-Gavel-Bundle-Revision"), "+")
	return rev
}
