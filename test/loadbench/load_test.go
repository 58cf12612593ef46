package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/test/fakeupstream"
)

func TestRunLoadAgainstFake(t *testing.T) {
	up := fakeupstream.New()
	defer up.Close()
	up.SetRecording(false)
	for _, stream := range []bool{false, true} {
		st, err := runLoad(context.Background(), loadSpec{
			url: up.URL() + "/chat/completions", body: chatBody("gpt-4o-mini", stream), stream: stream,
			conns: 4, warmup: 50 * time.Millisecond, duration: 200 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		if st.ok == 0 || st.errs != 0 || len(st.lat) != st.ok || (stream && len(st.ttfb) != st.ok) {
			t.Errorf("stream=%v: ok=%d errs=%d (%s) lat=%d ttfb=%d", stream, st.ok, st.errs, st.firstErr, len(st.lat), len(st.ttfb))
		}
	}
}

func TestRunLoadCountsBrokenStreams(t *testing.T) {
	up := fakeupstream.New()
	defer up.Close()
	up.SetDefault(fakeupstream.AnyModel, fakeupstream.Step{Fault: fakeupstream.MidStreamError, FaultAfter: 2})
	st, err := runLoad(context.Background(), loadSpec{
		url: up.URL() + "/chat/completions", body: chatBody("m", true), stream: true,
		conns: 2, duration: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.ok != 0 || st.errs == 0 || !strings.Contains(st.firstErr, "[DONE]") {
		t.Errorf("ok=%d errs=%d first=%q", st.ok, st.errs, st.firstErr)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for q, want := range map[float64]time.Duration{0.5: 50, 0.9: 90, 0.99: 99, 1: 100, 0.001: 1} {
		if got := percentile(d, q); got != want {
			t.Errorf("p%v = %d, want %d", q, got, want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("empty input")
	}
}

func TestCheckLoopback(t *testing.T) {
	if err := checkLoopback("http://127.0.0.1:8080/v1/chat/completions"); err != nil {
		t.Error(err)
	}
	for _, u := range []string{"https://api.openai.com/v1/chat/completions", "http://localhost:80/", "http://10.0.0.1/"} {
		if checkLoopback(u) == nil {
			t.Errorf("%s accepted", u)
		}
	}
}

func TestProcSampling(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc: not Linux (CI runs on Linux, where this runs)")
	}
	deadline := time.Now().Add(30 * time.Millisecond)
	for time.Now().Before(deadline) { // burn a little CPU so there is something to count
	}
	cpu, err := cpuTime(os.Getpid(), clockTick())
	if err != nil || cpu <= 0 {
		t.Errorf("cpuTime = %v, %v", cpu, err)
	}
	rss, err := peakRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Errorf("peakRSS = %d, %v", rss, err)
	}
}

func TestRunKeysAndRatio(t *testing.T) {
	keys := runKeys(config{conns: 32, stream: true, single: time.Second})
	want := []runKey{{stream: false, conns: 32}, {stream: true, conns: 32}, {stream: false, conns: 1}, {stream: true, conns: 1}}
	if len(keys) != len(want) {
		t.Fatalf("runKeys = %v, want %v", keys, want)
	}
	for i := range want {
		if keys[i] != want[i] {
			t.Fatalf("runKeys = %v, want %v", keys, want)
		}
	}
	if k := runKeys(config{conns: 1, single: time.Second}); len(k) != 1 {
		t.Errorf("-conns 1 -single: %v, want one run", k)
	}
	floor := &row{measured: true, stats: &runStats{ok: 100}, cpu: 10 * time.Millisecond} // 100 µs/req
	gavel := &row{measured: true, stats: &runStats{ok: 50, errs: 50}, cpu: 25 * time.Millisecond}
	if got := ratio(gavel.cpuPerReq(), floor); got != "2.50" {
		t.Errorf("ratio = %s, want 2.50", got)
	}
	if got := ratio(gavel.cpuPerReq(), nil); got != "–" {
		t.Errorf("ratio without a floor = %s", got)
	}
	unknown := &row{measured: true, stats: &runStats{ok: 1}, cpu: -1}
	if got := ratio(unknown.cpuPerReq(), floor); got != "–" {
		t.Errorf("ratio of unknown CPU = %s", got)
	}
}

// The 1-connection tail: each gavel's p99 as a multiple of the floor's from the same run.
func TestSingleP99(t *testing.T) {
	lat := func(p99 time.Duration) []time.Duration { // 100 sorted samples, the 99th is p99
		out := make([]time.Duration, 100)
		for i := range out {
			out[i] = time.Millisecond
		}
		out[98], out[99] = p99, p99
		return out
	}
	one := runKey{conns: 1}
	floor := row{name: "floor json 1 conn", measured: true, isFloor: true, key: one, stats: &runStats{lat: lat(1500 * time.Microsecond)}}
	rows := []row{
		{name: "floor json", measured: true, isFloor: true, key: runKey{conns: 32}, stats: &runStats{lat: lat(time.Second)}},
		floor,
		{name: "gavel1 json 1 conn", measured: true, key: one, stats: &runStats{lat: lat(15 * time.Millisecond)}, floor: &floor},
		{name: "gavel2 json 1 conn", measured: true, key: one, stats: &runStats{lat: lat(3 * time.Millisecond)}, floor: &floor},
		{name: "gavel2 stream 1 conn", measured: true, key: runKey{stream: true, conns: 1}, stats: &runStats{lat: lat(time.Second)}},
	}
	want := "p99 at 1 connection (json): floor 1.500 ms, gavel1 15.000 ms (10.00 x floor), gavel2 3.000 ms (2.00 x floor)"
	if got := singleP99(rows); got != want {
		t.Errorf("singleP99 =\n%s\nwant\n%s", got, want)
	}
	if got := p99Ratio(&rows[3], &floor); got != "2.00" {
		t.Errorf("p99Ratio = %s, want 2.00", got)
	}
	if got := singleP99(rows[:1]); got != "" {
		t.Errorf("without 1-connection runs: %q, want nothing", got)
	}
}

func TestCacheKeysAndBundle(t *testing.T) {
	keys := cacheKeys(config{conns: 8, stream: true, single: time.Second})
	want := []runKey{{false, 8, cacheHit}, {false, 8, cacheMiss}, {true, 8, cacheHit}, {true, 8, cacheMiss}}
	if len(keys) != len(want) {
		t.Fatalf("cacheKeys = %v, want %v", keys, want)
	}
	for i := range want {
		if keys[i] != want[i] {
			t.Fatalf("cacheKeys = %v, want %v", keys, want)
		}
	}
	dir := t.TempDir()
	if err := writeCacheBundle(dir); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(dir + "/gavel/data.json")
	if err != nil || !strings.Contains(string(raw), `"cache":{"default":{"mode":"exact"`) {
		t.Fatalf("data.json without the cache: %v %.200s", err, raw)
	}
	if _, err := os.Stat(dir + "/caching.rego"); err != nil {
		t.Fatal(err)
	}
}
