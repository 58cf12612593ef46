// Command loadbench measures what gavel adds to a chat completion: it loads a fake OpenAI
// upstream directly, then through the floor (test/floorproxy: echo + net/http decoding the
// body, forwarding it and relaying the answer, nothing else), then through each gavel binary
// given, and prints them side by side as a markdown table (throughput, latency percentiles,
// the latency each adds, CPU per request of the system under test, its ratio to the floor's
// from the same run, and peak RSS). It is what `make bench` runs:
//
//	go run ./test/loadbench -gavel ./bin/gavel [-conns 32] [-duration 10s] [-warmup 2s] [-stream] [-cpus 0] [-single 5s]
//	go run ./test/loadbench -gavel old/gavel,bin/gavel ...   # two builds, one run, one floor
//	go run ./test/loadbench -direct-only -duration 3s   # the load generator and upstream alone
//
// It exits 1 if more than 1% of the requests through gavel failed, 2 on bad usage or a
// setup failure. Everything it starts is stopped on exit and on SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// maxErrRate is the failed fraction of gavel requests above which the benchmark fails.
const maxErrRate = 0.01

type config struct {
	gavels       []string
	upstreamBin  string
	answerTokens int
	floorBin     string
	noFloor      bool
	single       time.Duration
	conns        int
	duration     time.Duration
	warmup       time.Duration
	stream       bool
	cpus         string
	upstreamCPUs string
	directOnly   bool
	trace        bool
	traceRatio   float64
	cache        bool
}

func parseFlags() config {
	var c config
	var gavels string
	flag.StringVar(&gavels, "gavel", "", "path to the gavel binary, or several separated by commas, measured one after another in this run (required unless -direct-only)")
	flag.StringVar(&c.upstreamBin, "upstream-bin", "", "prebuilt fake upstream binary (default: go build it into a temp dir)")
	flag.IntVar(&c.answerTokens, "answer-tokens", 0, "make every upstream answer this many words, streamed one per chunk (0: the fake upstream's short reply in 4 chunks)")
	flag.StringVar(&c.floorBin, "floor-bin", "", "prebuilt floor proxy binary (default: go build it into a temp dir)")
	flag.BoolVar(&c.noFloor, "no-floor", false, "skip the floor proxy (no \"x floor\" column)")
	flag.DurationVar(&c.single, "single", 0, "also measure each system at 1 connection for this long (latency without queueing); 0: off")
	flag.IntVar(&c.conns, "conns", 32, "concurrent keep-alive connections")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "measured duration of each run")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured warmup before each run")
	flag.BoolVar(&c.stream, "stream", false, "also run streaming requests (stream_options.include_usage)")
	flag.StringVar(&c.cpus, "cpus", "", "pin gavel to these CPUs with taskset -c (e.g. 0 or 0-1)")
	flag.StringVar(&c.upstreamCPUs, "upstream-cpus", "", "pin the fake upstream to these CPUs with taskset -c")
	flag.BoolVar(&c.directOnly, "direct-only", false, "only load the fake upstream directly; no gavel")
	flag.Float64Var(&c.traceRatio, "trace-ratio", 1, "with -trace: share of requests sampled (1: every one; below 1: parentbased_traceidratio)")
	flag.BoolVar(&c.cache, "cache", false, "also run each gavel with exact caching on for every name and compare cache hits (temperature 0) with misses (temperature 0.2) in that one process (CPU µs/req and their ratio)")
	flag.BoolVar(&c.trace, "trace", false, "also run gavel with OpenTelemetry tracing on (every request sampled, OTLP/HTTP to a discarding sink)")
	flag.Parse()
	for _, g := range strings.Split(gavels, ",") {
		if g = strings.TrimSpace(g); g != "" {
			c.gavels = append(c.gavels, g)
		}
	}
	return c
}

func main() { os.Exit(run()) }

func run() int {
	cfg := parseFlags()
	if len(cfg.gavels) == 0 && !cfg.directOnly {
		fmt.Fprintln(os.Stderr, "loadbench: -gavel PATH is required (or -direct-only)")
		return 2
	}
	if cfg.conns < 1 || cfg.duration <= 0 || cfg.warmup < 0 || cfg.single < 0 {
		fmt.Fprintln(os.Stderr, "loadbench: -conns must be >= 1, -duration > 0, -warmup >= 0, -single >= 0")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rows, err := bench(ctx, cfg)
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "loadbench: interrupted")
		return 130
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		return 2
	}
	printTable(os.Stdout, cfg, rows)
	code := 0
	for _, r := range rows {
		if r.measured && r.stats.errRate() > maxErrRate {
			fmt.Fprintf(os.Stderr, "loadbench: %s: %.2f%% of requests failed (limit %.0f%%)\n", r.name, 100*r.stats.errRate(), 100*maxErrRate)
			code = 1
		}
	}
	return code
}

// row is one line of the result table.
type row struct {
	name     string
	measured bool // a system under test (floor or gavel), not the upstream directly
	isFloor  bool // the floor proxy's own run
	key      runKey
	stats    *runStats
	direct   *runStats     // the matching direct run, for the added latency
	floor    *row          // the matching floor run, for "x floor"; nil for the floor itself
	cpu      time.Duration // CPU time of the system under test over the measured window; < 0 when unknown
	rss      int64         // its peak RSS in bytes
}

// runKey says which kind of run a row is, so rows of different systems can be matched.
type runKey struct {
	stream bool
	conns  int
	cache  cacheRun // "" outside the -cache runs
}

// cacheRun is which request a -cache run sends.
type cacheRun string

const (
	cacheHit  cacheRun = "cache hit"  // temperature 0: answered from the cache
	cacheMiss cacheRun = "cache miss" // temperature 0.2: never cached
)

// cpuPerReq is the system's CPU time per request of the window, or -1 when unknown.
func (r *row) cpuPerReq() float64 {
	n := r.stats.ok + r.stats.errs
	if !r.measured || r.cpu < 0 || n == 0 {
		return -1
	}
	return float64(r.cpu) / float64(time.Microsecond) / float64(n)
}

// bench runs the direct runs, then the floor's, then each gavel's, and returns the table
// rows. The children it starts are stopped before it returns.
func bench(ctx context.Context, cfg config) ([]row, error) {
	tmp, err := os.MkdirTemp("", "loadbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	bin := cfg.upstreamBin
	if bin == "" {
		progress("building the fake upstream")
		if bin, err = buildCmd(ctx, tmp, fakeUpstreamPkg); err != nil {
			return nil, err
		}
	}
	up, upURL, err := startUpstream(bin, cfg.upstreamCPUs, cfg.answerTokens)
	if err != nil {
		return nil, err
	}
	defer up.stop()
	progress("fake upstream at %s (pid %d)", upURL, up.pid())

	keys := runKeys(cfg)
	var rows []row
	direct := map[runKey]*runStats{}
	for _, k := range keys {
		name := "direct " + k.String()
		st, err := measure(ctx, cfg, name, upURL+"/chat/completions", "gpt-4o-mini", k, nil)
		if err != nil {
			return nil, err
		}
		direct[k] = st
		rows = append(rows, row{name: name, key: k, stats: st})
	}
	if cfg.directOnly {
		return rows, nil
	}

	floors := map[runKey]*row{}
	if !cfg.noFloor {
		fbin := cfg.floorBin
		if fbin == "" {
			progress("building the floor proxy")
			if fbin, err = buildCmd(ctx, tmp, floorProxyPkg); err != nil {
				return nil, err
			}
		}
		more, err := benchFloor(ctx, cfg, fbin, upURL, direct, keys)
		for i := range more {
			floors[more[i].key] = &more[i]
		}
		rows = append(rows, more...)
		if err != nil {
			return rows, err
		}
	}

	traced := []bool{false}
	if cfg.trace {
		traced = append(traced, true)
	}
	for _, tr := range traced {
		var env []string
		suffix := ""
		if tr {
			sink, err := startSink()
			if err != nil {
				return nil, err
			}
			defer func() {
				progress("OTLP sink received %d exports, %d KiB", sink.exports.Load(), sink.bytes.Load()>>10)
				sink.close()
			}()
			env, suffix = sink.env(cfg.traceRatio), " +trace"
		}
		for i, g := range cfg.gavels {
			name := "gavel"
			if len(cfg.gavels) > 1 {
				name = fmt.Sprintf("gavel%d", i+1)
			}
			more, err := benchGavel(ctx, cfg, g, name, tmp, upURL, env, suffix, direct, floors, keys)
			rows = append(rows, more...)
			if err != nil {
				return rows, err
			}
		}
	}
	if cfg.cache {
		for i, g := range cfg.gavels {
			name := "gavel"
			if len(cfg.gavels) > 1 {
				name = fmt.Sprintf("gavel%d", i+1)
			}
			more, err := benchCache(ctx, cfg, g, name, tmp, upURL, direct)
			rows = append(rows, more...)
			if err != nil {
				return rows, err
			}
		}
	}
	return rows, nil
}

// runKeys is the runs each system gets: JSON (and streams with -stream) at -conns, and the
// same at one connection with -single.
func runKeys(cfg config) []runKey {
	modes := []bool{false}
	if cfg.stream {
		modes = append(modes, true)
	}
	var keys []runKey
	for _, stream := range modes {
		keys = append(keys, runKey{stream: stream, conns: cfg.conns})
	}
	if cfg.single > 0 && cfg.conns != 1 {
		for _, stream := range modes {
			keys = append(keys, runKey{stream: stream, conns: 1})
		}
	}
	return keys
}

func (k runKey) String() string {
	s := "json"
	if k.stream {
		s = "stream"
	}
	if k.conns == 1 {
		s += " 1 conn"
	}
	if k.cache != "" {
		s += " " + string(k.cache)
	}
	return s
}

// benchFloor starts the floor proxy where gavel will run, loads it like gavel and stops it.
func benchFloor(ctx context.Context, cfg config, bin, upURL string, direct map[runKey]*runStats, keys []runKey) ([]row, error) {
	f, fURL, err := startFloor(bin, upURL, cfg.cpus)
	if err != nil {
		return nil, err
	}
	defer f.stop()
	progress("floor proxy at %s (pid %d)", fURL, f.pid())
	rows, err := measureProcess(ctx, cfg, f, "floor", fURL+"/v1/chat/completions", "gpt-4o-mini", direct, nil, keys, "")
	for i := range rows {
		rows[i].isFloor = true
	}
	return rows, err
}

// benchGavel starts one gavel binary (with extra environment), loads it in each mode and
// stops it.
func benchGavel(ctx context.Context, cfg config, bin, name, tmp, upURL string, env []string, suffix string, direct map[runKey]*runStats, floors map[runKey]*row, keys []runKey) ([]row, error) {
	logPath := filepath.Join(tmp, name+".log")
	g, gURL, err := startGavel(ctx, bin, upURL, cfg.cpus, logPath, env)
	if err != nil {
		return nil, err
	}
	defer g.stop()
	progress("%s (%s) at %s (pid %d)", name, bin, gURL, g.pid())
	rows, err := measureProcess(ctx, cfg, g, name, gURL+"/v1/chat/completions", "openai/gpt-4o-mini", direct, floors, keys, suffix)
	if err != nil {
		err = fmt.Errorf("%w\n--- %s output (tail) ---\n%s", err, name, tail(logPath, 8<<10))
	}
	return rows, err
}

// measureProcess loads one running system under test in each kind of run, sampling its
// CPU time over each measured window.
func measureProcess(ctx context.Context, cfg config, c *child, name, url, model string, direct map[runKey]*runStats, floors map[runKey]*row, keys []runKey, suffix string) ([]row, error) {
	var rows []row
	tick := clockTick()
	for _, k := range keys {
		r := row{name: name + " " + k.String() + suffix, measured: true, key: k, direct: direct[k], floor: floors[k]}
		var cpuStart time.Duration
		onWindow := func(open bool) {
			t, err := cpuTime(c.pid(), tick)
			switch {
			case err != nil:
				r.cpu = -1
			case open:
				cpuStart = t
			case r.cpu >= 0:
				r.cpu = t - cpuStart
			}
		}
		st, err := measure(ctx, cfg, r.name, url, model, k, onWindow)
		if err != nil {
			return rows, err
		}
		r.stats = st
		r.rss, _ = peakRSS(c.pid())
		rows = append(rows, r)
	}
	return rows, nil
}

// measure checks that the target answers one request correctly, then loads it.
func measure(ctx context.Context, cfg config, name, url, model string, k runKey, onWindow func(bool)) (*runStats, error) {
	body := chatBody(model, k.stream)
	if k.cache == cacheHit {
		body = []byte(strings.Replace(string(body), `"temperature":0.2`, `"temperature":0`, 1))
	}
	if err := preflight(ctx, url, body, k.stream); err != nil {
		return nil, fmt.Errorf("%s: first request failed: %w", name, err)
	}
	duration := cfg.duration
	if k.conns == 1 && cfg.single > 0 {
		duration = cfg.single
	}
	progress("%s: %d conns, %v warmup + %v", name, k.conns, cfg.warmup, duration)
	st, err := runLoad(ctx, loadSpec{
		url: url, body: body, stream: k.stream, conns: k.conns,
		warmup: cfg.warmup, duration: duration, onWindow: onWindow,
	})
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return st, nil
}

// preflight sends one request and checks that a completion comes back, so a misconfigured
// target fails fast with its own error message rather than as a wall of failed requests.
func preflight(ctx context.Context, url string, body []byte, stream bool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	spec := loadSpec{url: url, body: body, stream: stream}
	if err := checkLoopback(url); err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
	defer client.CloseIdleConnections()
	_, err := doRequest(ctx, client, spec, make([]byte, 32<<10), time.Now())
	return err
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadbench: "+format+"\n", args...)
}

// printTable writes the results as a markdown table, then which binary each gavel row ran
// and the first error of any run that had errors.
func printTable(w io.Writer, cfg config, rows []row) {
	fmt.Fprintf(w, "\nconns=%d warmup=%v duration=%v loadgen GOMAXPROCS=%d host CPUs=%d system under test cpus=%s upstream cpus=%s\n\n",
		cfg.conns, cfg.warmup, cfg.duration, runtime.GOMAXPROCS(0), runtime.NumCPU(), orAll(cfg.cpus), orAll(cfg.upstreamCPUs))
	fmt.Fprintln(w, "| run | req/s | p50 | p90 | p99 | max | TTFB p50 | TTFB p99 | added p50 | added p99 | CPU µs/req | x floor | p99 x floor | RSS MB | errors |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		s := r.stats
		cols := []string{
			r.name,
			fmt.Sprintf("%.0f", s.rps()),
			ms(percentile(s.lat, .50)), ms(percentile(s.lat, .90)), ms(percentile(s.lat, .99)), ms(percentile(s.lat, 1)),
			"–", "–", "–", "–", "–", "–", "–", "–",
			errCell(s),
		}
		if len(s.ttfb) > 0 {
			cols[6], cols[7] = ms(percentile(s.ttfb, .50)), ms(percentile(s.ttfb, .99))
		}
		if r.measured {
			cols[8] = added(percentile(s.lat, .50), percentile(r.direct.lat, .50))
			cols[9] = added(percentile(s.lat, .99), percentile(r.direct.lat, .99))
			cols[10] = cpuCell(r.cpuPerReq())
			fl := r.floor
			if r.isFloor {
				fl = &r
			}
			cols[11] = ratio(r.cpuPerReq(), fl)
			cols[12] = p99Ratio(&r, fl)
			cols[13] = fmt.Sprintf("%.1f", float64(r.rss)/(1<<20))
		}
		fmt.Fprintln(w, "| "+strings.Join(cols, " | ")+" |")
	}
	if line := singleP99(rows); line != "" {
		fmt.Fprintln(w)
		fmt.Fprintln(w, line)
	}
	if len(cfg.gavels) > 1 {
		fmt.Fprintln(w)
		for i, g := range cfg.gavels {
			fmt.Fprintf(w, "gavel%d: %s\n", i+1, g)
		}
	}
	for _, r := range rows {
		if r.stats.firstErr != "" {
			fmt.Fprintf(w, "\n%s first error: %s\n", r.name, r.stats.firstErr)
		}
	}
	printCacheRatios(w, rows)
	fmt.Fprintln(w, "\nLatencies in ms to the last byte; TTFB to the first body byte (streams). CPU is the system under test's utime+stime over the measured window, at clock-tick resolution; \"x floor\" divides it by the floor proxy's in the same kind of run, \"p99 x floor\" the 99th percentile latency by the floor's.")
}

// p99Ratio is a row's 99th percentile latency over its floor's, when both are known.
func p99Ratio(r, floor *row) string {
	if floor == nil || len(r.stats.lat) == 0 || len(floor.stats.lat) == 0 {
		return "–"
	}
	f := percentile(floor.stats.lat, .99)
	if f <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", float64(percentile(r.stats.lat, .99))/float64(f))
}

// singleP99 is one line with the 99th percentile latency of every system at one
// connection (JSON), floor first, and each gavel's multiple of the floor's: the tail a
// lone client sees, which issue 18 bounds at twice the floor's. Empty without -single.
func singleP99(rows []row) string {
	var floor *row
	var parts []string
	for i := range rows {
		r := &rows[i]
		if !r.measured || r.key != (runKey{conns: 1}) {
			continue
		}
		p99 := percentile(r.stats.lat, .99)
		if r.isFloor {
			floor = r
			parts = append(parts, fmt.Sprintf("floor %s ms", ms(p99)))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s ms (%s x floor)", strings.TrimSuffix(r.name, " "+r.key.String()), ms(p99), p99Ratio(r, floor)))
	}
	if len(parts) == 0 {
		return ""
	}
	return "p99 at 1 connection (json): " + strings.Join(parts, ", ")
}

// ratio is a row's CPU per request over its floor's, when both are known.
func ratio(cpu float64, floor *row) string {
	if floor == nil || cpu < 0 || floor.cpuPerReq() <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", cpu/floor.cpuPerReq())
}

func cpuCell(us float64) string {
	if us < 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f", us)
}

func orAll(cpus string) string {
	if cpus == "" {
		return "any"
	}
	return cpus
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

func added(through, direct time.Duration) string {
	return fmt.Sprintf("%+.3f", float64(through-direct)/float64(time.Millisecond))
}

func errCell(s *runStats) string {
	if s.errs == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%.2f%%)", s.errs, 100*s.errRate())
}
