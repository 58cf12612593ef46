package drills

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/test/fakeupstream"
	"github.com/gavel-gw/gavel/test/faultproxy"
	"github.com/gavel-gw/gavel/test/internal/policybundle"
	"github.com/gavel-gw/gavel/test/internal/realsrv"
)

// gavelBin is the binary TestMain builds once per run.
var gavelBin string

// long is the long form (`make drill`): more requests and a real soak.
var long = os.Getenv("DRILL_LONG") == "1"

// scale picks the short or the long count.
func scale(short, longN int) int {
	if long {
		return longN
	}
	return short
}

// buildGavel compiles cmd/gavel into dir. A real binary, not app.New in this process, so
// SIGTERM and kill -9 are real and the goroutines and memory measured are gavel's alone.
func buildGavel(dir string) (string, error) {
	bin := filepath.Join(dir, "gavel")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/gavel")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/gavel: %w\n%s", err, out)
	}
	return bin, nil
}

// Pricing of the drills' catalog: 1 µUSD per input token, 2 per output token. The fake
// upstream reports 12 prompt tokens and one completion token per word of its reply.
const (
	inPrice  = 1_000_000
	outPrice = 2_000_000
)

// world is what one drill runs against: two fake upstreams ("a", the primary, and "b", its
// fallback), each behind a fault proxy, and the bundle, keys and paths gavel needs.
type world struct {
	t          *testing.T
	upA, upB   *fakeupstream.Server
	pxA, pxB   *faultproxy.Proxy
	key, admin string
	bundleDir  string
	data       map[string]any // the bundle's data.gavel
	ledgerPath string
	dir        string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir()}
	w.upA, w.upB = fakeupstream.New(), fakeupstream.New()
	w.upA.SetRecording(false)
	w.upB.SetRecording(false)
	t.Cleanup(w.upA.Close)
	t.Cleanup(w.upB.Close)
	w.pxA, w.pxB = proxyTo(t, w.upA.URL()), proxyTo(t, w.upB.URL())
	var keyHash, adminHash string
	w.key, keyHash, _ = auth.NewKey()
	w.admin, adminHash, _ = auth.NewKey()
	w.data = drillData(map[string]any{
		keyHash:   map[string]any{"key_id": "k-drill", "user": "drill", "team": "drill", "project": "drills"},
		adminHash: map[string]any{"key_id": "k-admin", "team": "platform", "admin": true},
	})
	w.bundleDir = policybundle.Dir(t, "drill-1", w.data)
	w.ledgerPath = filepath.Join(w.dir, "ledger.db")
	return w
}

// proxyTo puts a fault proxy in front of a fake upstream's base URL.
func proxyTo(t *testing.T, baseURL string) *faultproxy.Proxy {
	t.Helper()
	host := strings.TrimSuffix(strings.TrimPrefix(baseURL, "http://"), "/v1")
	p, err := faultproxy.New(host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// cfg is the knobs a drill turns in gavel.yaml.
type cfg struct {
	ledger          string // ledger: line; default the world's file ledger
	extra           string // more top-level yaml
	attemptTimeout  string // providers' timeout; default 5s
	retriesA        int
	requestTimeout  string // default 30s
	shutdownTimeout string // default 5s
	policy          string // policy: line; default the world's bundle dir, "none" for none
}

func (w *world) yaml(c cfg) string {
	ledger := c.ledger
	if ledger == "" {
		ledger = fmt.Sprintf("ledger: {store: file, path: %q}", w.ledgerPath)
	}
	policy := c.policy // "none": no local bundle (a bundle server provides it)
	switch policy {
	case "":
		policy = fmt.Sprintf("policy: %q", w.bundleDir)
	case "none":
		policy = ""
	}
	at := cmpOr(c.attemptTimeout, "5s")
	return fmt.Sprintf(`%s
%s
request_timeout: %s
shutdown_timeout: %s
log_level: ${DRILL_LOG_LEVEL:-warn}
%sproviders:
  - {name: a, type: openai, base_url: "http://%s/v1", api_key: k, max_retries: %d, timeout: %s, breaker: {delay: 300ms}}
  - {name: b, type: openai, base_url: "http://%s/v1", api_key: k, max_retries: 0, timeout: %s, breaker: {delay: 300ms}}
`, policy, ledger, cmpOr(c.requestTimeout, "30s"), cmpOr(c.shutdownTimeout, "5s"), c.extra,
		w.pxA.Addr(), c.retriesA, at, w.pxB.Addr(), at)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// drillData is bundle data: alias "chat" tries a/m1 then b/m1, "solo" only a/m1, and team
// "drill" has a generous daily budget so spend is recorded (and reserved) per request.
func drillData(keys map[string]any) map[string]any {
	entry := func(provider string, fallbacks ...string) map[string]any {
		if fallbacks == nil {
			fallbacks = []string{}
		}
		return map[string]any{"provider": provider, "model": "m1", "tier": "standard", "quality": 50,
			"context_window": 100000, "max_output_tokens": 4096, "capabilities": map[string]bool{"tools": true},
			"price": map[string]int{"input_musd_per_mtok": inPrice, "output_musd_per_mtok": outPrice}, "fallbacks": fallbacks}
	}
	return map[string]any{
		"routing": map[string]any{"honour_client_hints": true, "passthrough_uncataloged": false, "max_targets": 4},
		"aliases": map[string]any{
			"chat": map[string]any{"strategy": "ordered", "candidates": []string{"a/m1", "b/m1"}},
			"solo": map[string]any{"strategy": "ordered", "candidates": []string{"a/m1"}},
		},
		"catalog": map[string]any{"a/m1": entry("a", "b/m1"), "b/m1": entry("b")},
		"keys":    keys,
		"budgets": []any{map[string]any{"name": "team-daily", "scope": "team", "period": "day", "limit_musd": 1_000_000_000_000, "hard": true}},
	}
}

// proc is one running gavel process.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	URL     string
	Addr    string
	logPath string
	exited  chan struct{}
	err     error // exit status, valid once exited is closed
	w       *world
	// heapProfiles counts the profiles asked of it (soak_test.go's collectedHeap).
	heapProfiles int
}

// startGavel runs `gavel serve --config` with yaml on a free loopback port and waits for
// /readyz. The process is killed when the test ends if it is still running.
func (w *world) startGavel(yaml string) *proc {
	t := w.t
	t.Helper()
	cfgPath := filepath.Join(w.dir, fmt.Sprintf("gavel-%d.yaml", time.Now().UnixNano()))
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := realsrv.FreeAddr(t)
	p := &proc{t: t, URL: "http://" + addr, Addr: addr, logPath: cfgPath + ".log", exited: make(chan struct{}), w: w}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(gavelBin, "serve", "--config", cfgPath, "--listen", addr)
	p.cmd.Env = append(os.Environ(), "OPENAI_API_KEY=", "OPENAI_BASE_URL=", "ANTHROPIC_API_KEY=", "GEMINI_API_KEY=")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// Its own process group, and killed by the kernel if this test binary dies first.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Log(p.logTail())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(p.URL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("gavel exited before it was ready: %v\n%s", p.err, p.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gavel not ready after 20s\n%s", p.logTail())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return "--- gavel log (tail) ---\n" + string(b)
}

// signal sends sig and returns at once.
func (p *proc) signal(sig syscall.Signal) {
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitExit waits up to d for the process to exit and reports whether it did.
func (p *proc) waitExit(d time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// stop ends the process with SIGTERM (kill after 10 s).
func (p *proc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.signal(syscall.SIGTERM)
	if !p.waitExit(10 * time.Second) {
		p.cmd.Process.Kill()
		<-p.exited
		p.t.Errorf("gavel ignored SIGTERM for 10s\n%s", p.logTail())
	}
}

// metrics scrapes /metrics into name{labels} → value.
func (p *proc) metrics() map[string]float64 {
	resp, err := http.Get(p.URL + "/metrics")
	if err != nil {
		p.t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// sumMetric adds every series of name whose labels contain all of the given fragments.
func sumMetric(m map[string]float64, name string, frags ...string) float64 {
	var sum float64
	for k, v := range m {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		match := true
		for _, f := range frags {
			match = match && strings.Contains(k, f)
		}
		if match {
			sum += v
		}
	}
	return sum
}

// goroutines is gavel's go_goroutines (the client_golang Go collector on /metrics).
func (p *proc) goroutines() int { return int(p.metrics()["go_goroutines"]) }

// rss is gavel's resident set size from /proc/PID/status (VmRSS); -1 when unreadable.
func (p *proc) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

// ledgerState is team drill's spend and reservations for today.
type ledgerState struct{ spent, reserved int64 }

// spend reads team drill's standing from the admin endpoint.
func (p *proc) spend() (ledgerState, error) { return p.spendOf("team", "drill") }

// spendOf reads one owner's standing (every budget of scope and id) from the admin endpoint.
func (p *proc) spendOf(scope, id string) (ledgerState, error) {
	req, _ := http.NewRequest(http.MethodGet, p.URL+"/v1/gavel/spend?scope="+url.QueryEscape(scope)+"&id="+url.QueryEscape(id), nil)
	req.Header.Set("Authorization", "Bearer "+p.w.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ledgerState{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return ledgerState{}, fmt.Errorf("spend: %d %s", resp.StatusCode, b)
	}
	var body struct {
		Data []struct {
			Spent    int64 `json:"spent_micro_usd"`
			Reserved int64 `json:"reserved_micro_usd"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return ledgerState{}, err
	}
	var s ledgerState
	for _, d := range body.Data {
		s.spent += d.Spent
		s.reserved += d.Reserved
	}
	return s, nil
}

// mustSpend is spend, failing the test on error.
func (p *proc) mustSpend() ledgerState {
	p.t.Helper()
	s, err := p.spend()
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

// snapshot is the before/after half of a Row.
type snapshot struct {
	gor   int
	rss   int64
	spent int64
}

// snap measures gavel now. Spend is -1 when the ledger cannot say (Redis down).
func (p *proc) snap() snapshot {
	s := snapshot{gor: p.goroutines(), rss: p.rss(), spent: -1}
	if st, err := p.spend(); err == nil {
		s.spent = st.spent
	}
	return s
}

// eventually polls cond every 25 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// outcome is how one request ended.
type outcome struct {
	class  string // "ok", an HTTP status, "stream_error", "cut", "conn"
	took   time.Duration
	header http.Header
	body   string // error body, for assertions
}

// client is what the drills send with: keep-alive, no proxy from the environment, and a
// hard timeout so a request loop always ends.
func httpClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}
}

// chat sends one chat completion for alias to base (gavel or a proxy in front of it).
// A stream is "ok" only if it ends with [DONE]; one that ends with an error event is
// "stream_error", one that just stops is "cut".
func chat(ctx context.Context, c *http.Client, base, key, alias string, stream bool) outcome {
	start := time.Now()
	body := fmt.Sprintf(`{"model":%q,"max_tokens":16,"stream":%t,"messages":[{"role":"user","content":"hi"}]}`, alias, stream)
	if stream {
		body = fmt.Sprintf(`{"model":%q,"max_tokens":16,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`, alias)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return outcome{class: "conn", took: time.Since(start), body: err.Error()}
	}
	defer resp.Body.Close()
	o := outcome{header: resp.Header}
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		o.class, o.body, o.took = strconv.Itoa(resp.StatusCode), string(b), time.Since(start)
		return o
	}
	if !stream {
		b, err := io.ReadAll(resp.Body)
		var v struct {
			Choices []json.RawMessage `json:"choices"`
		}
		switch {
		case err != nil:
			o.class, o.body = "cut", err.Error()
		case json.Unmarshal(b, &v) != nil || len(v.Choices) == 0:
			o.class, o.body = "bad_body", string(b)
		default:
			o.class = "ok"
		}
		o.took = time.Since(start)
		return o
	}
	o.class = streamEnd(resp.Body)
	o.took = time.Since(start)
	return o
}

// streamEnd reads an SSE body and classifies how it ended.
func streamEnd(r io.Reader) string {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("data: ")) {
			continue
		}
		data := line[len("data: "):]
		if string(data) == "[DONE]" {
			return "ok"
		}
		if bytes.HasPrefix(data, []byte(`{"error"`)) {
			return "stream_error"
		}
	}
	return "cut"
}

// result is a load run's tally.
type result struct {
	requests, ok, hung int
	errors             map[string]int
	outcomes           []outcome
}

// load sends n requests from c workers, each through send, and counts how they ended.
// A request taking longer than bound is hung (it still ends: send's context expires at
// bound plus a margin, so the loop always stops by itself).
func load(n, c int, bound time.Duration, send func(ctx context.Context, i int) outcome) result {
	r := result{errors: map[string]int{}, outcomes: make([]outcome, n)}
	var wg sync.WaitGroup
	next := make(chan int)
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				ctx, cancel := context.WithTimeout(context.Background(), bound+2*time.Second)
				r.outcomes[i] = send(ctx, i)
				cancel()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	r.requests = n
	for _, o := range r.outcomes {
		if o.took > bound {
			r.hung++
		}
		if o.class == "ok" {
			r.ok++
		} else {
			r.errors[o.class]++
		}
	}
	return r
}

// firstErr is the body of the first failed outcome, for failure messages.
func (r result) firstErr() string {
	for _, o := range r.outcomes {
		if o.class != "ok" {
			return o.class + ": " + o.body
		}
	}
	return ""
}
