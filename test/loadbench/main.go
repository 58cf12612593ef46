// Command loadbench measures what gavel adds to a chat completion: it loads a fake OpenAI
// upstream directly, then the same upstream through gavel, and prints both side by side as
// a markdown table (throughput, latency percentiles, the latency gavel adds, gavel's CPU
// per request and peak RSS). It is what `make bench` runs:
//
//	go run ./test/loadbench -gavel ./bin/gavel [-conns 32] [-duration 10s] [-warmup 2s] [-stream] [-cpus 0]
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
	gavel        string
	upstreamBin  string
	conns        int
	duration     time.Duration
	warmup       time.Duration
	stream       bool
	cpus         string
	upstreamCPUs string
	directOnly   bool
	trace        bool
	traceRatio   float64
}

func parseFlags() config {
	var c config
	flag.StringVar(&c.gavel, "gavel", "", "path to the gavel binary (required unless -direct-only)")
	flag.StringVar(&c.upstreamBin, "upstream-bin", "", "prebuilt fake upstream binary (default: go build it into a temp dir)")
	flag.IntVar(&c.conns, "conns", 32, "concurrent keep-alive connections")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "measured duration of each run")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured warmup before each run")
	flag.BoolVar(&c.stream, "stream", false, "also run streaming requests (stream_options.include_usage)")
	flag.StringVar(&c.cpus, "cpus", "", "pin gavel to these CPUs with taskset -c (e.g. 0 or 0-1)")
	flag.StringVar(&c.upstreamCPUs, "upstream-cpus", "", "pin the fake upstream to these CPUs with taskset -c")
	flag.BoolVar(&c.directOnly, "direct-only", false, "only load the fake upstream directly; no gavel")
	flag.Float64Var(&c.traceRatio, "trace-ratio", 1, "with -trace: share of requests sampled (1: every one; below 1: parentbased_traceidratio)")
	flag.BoolVar(&c.trace, "trace", false, "also run gavel with OpenTelemetry tracing on (every request sampled, OTLP/HTTP to a discarding sink)")
	flag.Parse()
	return c
}

func main() { os.Exit(run()) }

func run() int {
	cfg := parseFlags()
	if cfg.gavel == "" && !cfg.directOnly {
		fmt.Fprintln(os.Stderr, "loadbench: -gavel PATH is required (or -direct-only)")
		return 2
	}
	if cfg.conns < 1 || cfg.duration <= 0 || cfg.warmup < 0 {
		fmt.Fprintln(os.Stderr, "loadbench: -conns must be >= 1, -duration > 0, -warmup >= 0")
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
		if r.gavel && r.stats.errRate() > maxErrRate {
			fmt.Fprintf(os.Stderr, "loadbench: %s: %.2f%% of requests failed (limit %.0f%%)\n", r.name, 100*r.stats.errRate(), 100*maxErrRate)
			code = 1
		}
	}
	return code
}

// row is one line of the result table.
type row struct {
	name   string
	gavel  bool
	stats  *runStats
	direct *runStats     // the matching direct run, for the added latency
	cpu    time.Duration // gavel CPU time over the measured window; < 0 when unknown
	rss    int64         // gavel peak RSS in bytes
}

// bench runs the direct runs, then the gavel runs, and returns the table rows. The
// children it starts are stopped before it returns.
func bench(ctx context.Context, cfg config) ([]row, error) {
	tmp, err := os.MkdirTemp("", "loadbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	bin := cfg.upstreamBin
	if bin == "" {
		progress("building the fake upstream")
		if bin, err = buildUpstream(ctx, tmp); err != nil {
			return nil, err
		}
	}
	up, upURL, err := startUpstream(bin, cfg.upstreamCPUs)
	if err != nil {
		return nil, err
	}
	defer up.stop()
	progress("fake upstream at %s (pid %d)", upURL, up.pid())

	modes := []bool{false}
	if cfg.stream {
		modes = append(modes, true)
	}
	var rows []row
	direct := map[bool]*runStats{}
	for _, stream := range modes {
		st, err := measure(ctx, cfg, "direct "+modeName(stream), upURL+"/chat/completions", "gpt-4o-mini", stream, nil)
		if err != nil {
			return nil, err
		}
		direct[stream] = st
		rows = append(rows, row{name: "direct " + modeName(stream), stats: st})
	}
	if cfg.directOnly {
		return rows, nil
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
		more, err := benchGavel(ctx, cfg, tmp, upURL, env, suffix, direct, modes)
		rows = append(rows, more...)
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// benchGavel starts gavel (with extra environment), loads it in each mode and stops it.
func benchGavel(ctx context.Context, cfg config, tmp, upURL string, env []string, suffix string, direct map[bool]*runStats, modes []bool) ([]row, error) {
	var rows []row
	logPath := filepath.Join(tmp, "gavel.log")
	g, gURL, err := startGavel(ctx, cfg.gavel, upURL, cfg.cpus, logPath, env)
	if err != nil {
		return nil, err
	}
	defer g.stop()
	progress("gavel at %s (pid %d)", gURL, g.pid())
	tick := clockTick()
	for _, stream := range modes {
		r := row{name: "gavel " + modeName(stream) + suffix, gavel: true, direct: direct[stream]}
		var cpuStart time.Duration
		onWindow := func(open bool) {
			t, err := cpuTime(g.pid(), tick)
			switch {
			case err != nil:
				r.cpu = -1
			case open:
				cpuStart = t
			case r.cpu >= 0:
				r.cpu = t - cpuStart
			}
		}
		st, err := measure(ctx, cfg, r.name, gURL+"/v1/chat/completions", "openai/gpt-4o-mini", stream, onWindow)
		if err != nil {
			return nil, fmt.Errorf("%w\n--- gavel output (tail) ---\n%s", err, tail(logPath, 8<<10))
		}
		r.stats = st
		r.rss, _ = peakRSS(g.pid())
		rows = append(rows, r)
	}
	return rows, nil
}

func modeName(stream bool) string {
	if stream {
		return "stream"
	}
	return "json"
}

// measure checks that the target answers one request correctly, then loads it.
func measure(ctx context.Context, cfg config, name, url, model string, stream bool, onWindow func(bool)) (*runStats, error) {
	body := chatBody(model, stream)
	if err := preflight(ctx, url, body, stream); err != nil {
		return nil, fmt.Errorf("%s: first request failed: %w", name, err)
	}
	progress("%s: %d conns, %v warmup + %v", name, cfg.conns, cfg.warmup, cfg.duration)
	st, err := runLoad(ctx, loadSpec{
		url: url, body: body, stream: stream, conns: cfg.conns,
		warmup: cfg.warmup, duration: cfg.duration, onWindow: onWindow,
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

// printTable writes the results as a markdown table, then the first error of any run
// that had errors.
func printTable(w io.Writer, cfg config, rows []row) {
	fmt.Fprintf(w, "\nconns=%d warmup=%v duration=%v loadgen GOMAXPROCS=%d host CPUs=%d gavel cpus=%s upstream cpus=%s\n\n",
		cfg.conns, cfg.warmup, cfg.duration, runtime.GOMAXPROCS(0), runtime.NumCPU(), orAll(cfg.cpus), orAll(cfg.upstreamCPUs))
	fmt.Fprintln(w, "| mode | req/s | p50 | p90 | p99 | max | TTFB p50 | TTFB p99 | added p50 | added p99 | gavel CPU µs/req | gavel RSS MB | errors |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		s := r.stats
		cols := []string{
			r.name,
			fmt.Sprintf("%.0f", s.rps()),
			ms(percentile(s.lat, .50)), ms(percentile(s.lat, .90)), ms(percentile(s.lat, .99)), ms(percentile(s.lat, 1)),
			"–", "–", "–", "–", "–", "–",
			errCell(s),
		}
		if len(s.ttfb) > 0 {
			cols[6], cols[7] = ms(percentile(s.ttfb, .50)), ms(percentile(s.ttfb, .99))
		}
		if r.gavel {
			cols[8] = added(percentile(s.lat, .50), percentile(r.direct.lat, .50))
			cols[9] = added(percentile(s.lat, .99), percentile(r.direct.lat, .99))
			cols[10] = cpuPerReq(r.cpu, s.ok+s.errs)
			cols[11] = fmt.Sprintf("%.1f", float64(r.rss)/(1<<20))
		}
		fmt.Fprintln(w, "| "+strings.Join(cols, " | ")+" |")
	}
	for _, r := range rows {
		if r.stats.firstErr != "" {
			fmt.Fprintf(w, "\n%s first error: %s\n", r.name, r.stats.firstErr)
		}
	}
	fmt.Fprintln(w, "\nLatencies in ms to the last byte; TTFB to the first body byte (streams). CPU is gavel's utime+stime over the measured window, at clock-tick resolution.")
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

func cpuPerReq(cpu time.Duration, requests int) string {
	if cpu < 0 || requests == 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f", float64(cpu)/float64(time.Microsecond)/float64(requests))
}

func errCell(s *runStats) string {
	if s.errs == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%.2f%%)", s.errs, 100*s.errRate())
}
