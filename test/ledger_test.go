package test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/redis/go-redis/v9"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// budgetSetup: provider a at 1 µUSD per input token and 2 per output token; the caller's
// team "search" has a hard daily budget of limit µUSD; the key may send rpm requests a
// minute (0: no limit).
func budgetSetup(t *testing.T, limit int64, rpm int, extra string) (yamlFn func() string, key, admin string, up *fakeupstream.Server) {
	t.Helper()
	up = fakeupstream.New()
	t.Cleanup(up.Close)
	key, keyHash, _ := auth.NewKey()
	admin, adminHash, _ := auth.NewKey()
	data := twoProviders(map[string]any{
		keyHash:   map[string]any{"key_id": "k-ana", "user": "ana", "team": "search", "project": "web"},
		adminHash: map[string]any{"key_id": "k-admin", "team": "platform", "admin": true},
	})
	data["catalog"].(map[string]any)["a/m1"].(map[string]any)["price"] = map[string]int{"input_musd_per_mtok": 1000000, "output_musd_per_mtok": 2000000}
	data["aliases"] = map[string]any{"solo": map[string]any{"candidates": []string{"a/m1"}}}
	data["budgets"] = []any{map[string]any{"name": "team-daily", "scope": "team", "period": "day", "limit_musd": limit, "hard": true, "soft_bp": 5000}}
	if rpm > 0 {
		data["rate_limits"] = []any{map[string]any{"scope": "key", "rpm": rpm}}
	}
	dir := bundle(t, "budget-1", data)
	return func() string {
		return fmt.Sprintf("policy: %s\n%sproviders:\n  - {name: a, type: openai, base_url: %q, max_retries: 0}\n", dir, extra, up.URL())
	}, key, admin, up
}

func spendOf(t *testing.T, g *gw, admin string) int64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/gavel/spend?scope=team&id=search", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, body := do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("spend endpoint: %d %v", resp.StatusCode, body)
	}
	var total int64
	for _, d := range body["data"].([]any) {
		total += int64(d.(map[string]any)["spent_micro_usd"].(float64))
	}
	return total
}

func TestBudgetEnforcedThroughTheServer(t *testing.T) {
	// Each call: 12 prompt + 3 completion tokens = 18 µUSD actual; reservations assume up
	// to max_tokens=10 output tokens.
	yaml, key, admin, up := budgetSetup(t, 100, 0, "")
	g := start(t, yaml(), nil)
	c := g.client(key)
	p := userParams("solo", "hi")
	p.MaxTokens = openai.Int(10)
	ok, denied := 0, 0
	var lastErr *openai.Error
	for i := 0; i < 10; i++ {
		var resp *http.Response
		_, err := c.Chat.Completions.New(context.Background(), p, option.WithResponseInto(&resp))
		if err == nil {
			ok++
			continue
		}
		if !errors.As(err, &lastErr) || lastErr.StatusCode != 429 || lastErr.Code != "insufficient_quota" {
			t.Fatalf("request %d: %v", i, err)
		}
		denied++
	}
	if ok == 0 || denied == 0 || !strings.Contains(lastErr.Message, "team-daily") {
		t.Fatalf("ok=%d denied=%d last=%v", ok, denied, lastErr)
	}
	spent := spendOf(t, g, admin)
	if spent > 100 || spent != int64(ok)*18 {
		t.Errorf("spent %d µUSD for %d calls (18 each), limit 100", spent, ok)
	}
	if up.Count("m1") != ok {
		t.Errorf("upstream saw %d calls, %d succeeded", up.Count("m1"), ok)
	}
	if !strings.Contains(g.text(t, "/metrics"), `gavel_budget_spent_micro_usd{id="search",period="day",scope="team"}`) {
		t.Error("budget gauge missing")
	}
}

func TestSoftBudgetWarningHeader(t *testing.T) {
	// Soft threshold 50 % of 100 µUSD: the fourth call (after 3 × 18 spent) is warned.
	yaml, key, _, _ := budgetSetup(t, 100, 0, "")
	g := start(t, yaml(), nil)
	c := g.client(key)
	p := userParams("solo", "hi")
	p.MaxTokens = openai.Int(10)
	warned := false
	for i := 0; i < 5 && !warned; i++ {
		var resp *http.Response
		if _, err := c.Chat.Completions.New(context.Background(), p, option.WithResponseInto(&resp)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		warned = strings.HasPrefix(resp.Header.Get("X-Gavel-Budget-Warning"), "team-daily; used=")
	}
	if !warned {
		t.Error("no X-Gavel-Budget-Warning past the soft threshold")
	}
}

func TestConcurrentRequestsNeverOverspend(t *testing.T) {
	// 500 concurrent requests; each reserves 12*1+... (estimate) and costs 18; the budget
	// admits only a handful. Whatever the interleaving, committed spend stays within it.
	yaml, key, admin, up := budgetSetup(t, 1000, 0, "")
	up.SetDefault("m1", fakeupstream.Step{Latency: 20 * time.Millisecond})
	g := start(t, yaml(), nil)
	body := `{"model":"solo","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	tr := &http.Transport{MaxIdleConnsPerHost: 500, MaxConnsPerHost: 500}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for i := 0; i < 500; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			code := 0
			if err == nil {
				code = resp.StatusCode
				resp.Body.Close()
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[200]+codes[429] != 500 {
		t.Fatalf("status codes: %v", codes)
	}
	spent := spendOf(t, g, admin)
	if spent > 1000 {
		t.Fatalf("overspent: %d µUSD against a 1000 µUSD budget (%v)", spent, codes)
	}
	if spent != int64(codes[200])*18 || up.Count("m1") != codes[200] {
		t.Errorf("spent %d for %d successes; upstream saw %d", spent, codes[200], up.Count("m1"))
	}
	if codes[200] == 0 {
		t.Error("nothing got through")
	}
}

func TestRateLimitPerKey(t *testing.T) {
	yaml, key, _, _ := budgetSetup(t, 1_000_000_000, 3, "")
	g := start(t, yaml(), nil)
	var last *http.Response
	for i := 0; i < 4; i++ {
		last, _ = g.post(t, "/v1/chat/completions", `{"model":"solo","messages":[{"role":"user","content":"hi"}]}`, map[string]string{"Authorization": "Bearer " + key})
		if i < 3 && last.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, last.StatusCode)
		}
		if i < 3 && last.Header.Get("x-ratelimit-limit-requests") != "3" {
			t.Errorf("x-ratelimit-limit-requests = %q", last.Header.Get("x-ratelimit-limit-requests"))
		}
	}
	if last.StatusCode != 429 || last.Header.Get("Retry-After") == "" || last.Header.Get("x-ratelimit-remaining-requests") != "0" {
		t.Fatalf("4th request: %d headers %v", last.StatusCode, last.Header)
	}
}

func TestFileLedgerSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	yaml, key, admin, _ := budgetSetup(t, 1_000_000, 0, "ledger: {store: file, path: "+strconv.Quote(path)+"}\n")
	g := startKeepPath(t, yaml())
	for i := 0; i < 3; i++ {
		if _, err := g.client(key).Chat.Completions.New(context.Background(), userParams("solo", "hi")); err != nil {
			t.Fatal(err)
		}
	}
	before := spendOf(t, g, admin)
	g.stop()
	g2 := startKeepPath(t, yaml())
	if after := spendOf(t, g2, admin); after != before || before == 0 {
		t.Fatalf("spend before restart %d, after %d", before, after)
	}
}

// startKeepPath is start without replacing the configured ledger path.
func startKeepPath(t *testing.T, yaml string) *gw {
	t.Helper()
	return startWith(t, yaml, nil, false)
}

// redisServer starts a real redis-server on a free loopback port for one test. Locally a
// missing redis-server skips; in CI (CI=true) it fails, since CI installs it.
func redisServer(t *testing.T) string {
	addr, _ := redisServerStoppable(t)
	return addr
}

// redisServerStoppable is redisServer plus a function that kills it mid-test.
func redisServerStoppable(t *testing.T) (string, func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed; .ci/run must install it")
		}
		t.Skip("redis-server not installed (CI installs it)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { cmd.Process.Kill(); cmd.Wait() }) }
	t.Cleanup(stop)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, stop
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("redis-server did not start")
	return "", nil
}

func TestRedisDownFailsClosedOrOpenAsConfigured(t *testing.T) {
	for _, mode := range []string{"closed", "open"} {
		t.Run(mode, func(t *testing.T) {
			addr, stop := redisServerStoppable(t)
			yaml, key, _, _ := budgetSetup(t, 1_000_000, 0, "ledger: {store: redis, failure_mode: "+mode+", redis: {addr: "+addr+"}}\n")
			g := start(t, yaml(), nil)
			body := `{"model":"solo","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
			auth := map[string]string{"Authorization": "Bearer " + key}
			if r, b := g.post(t, "/v1/chat/completions", body, auth); r.StatusCode != 200 {
				t.Fatalf("with redis up: %d %v", r.StatusCode, b)
			}
			stop()
			r, b := g.post(t, "/v1/chat/completions", body, auth)
			switch mode {
			case "closed":
				if r.StatusCode != 503 || b["error"].(map[string]any)["code"] != "ledger_unavailable" {
					t.Fatalf("fail closed: %d %v", r.StatusCode, b)
				}
			case "open":
				if r.StatusCode != 200 {
					t.Fatalf("fail open: %d %v", r.StatusCode, b)
				}
			}
			// Published at 0 from startup: the outage must have moved one of them.
			if !regexp.MustCompile(`gavel_ledger_unavailable_total\{[^}]*\} [1-9]`).MatchString(g.text(t, "/metrics")) {
				t.Error("unavailability not counted")
			}
		})
	}
}

func TestTwoReplicasShareABudgetThroughRedis(t *testing.T) {
	addr := redisServer(t)
	yaml, key, admin, _ := budgetSetup(t, 100, 0, "ledger: {store: redis, redis: {addr: "+addr+"}}\n")
	g1, g2 := start(t, yaml(), nil), start(t, yaml(), nil)
	p := userParams("solo", "hi")
	p.MaxTokens = openai.Int(10)
	ok := 0
	for i := 0; i < 10; i++ {
		g := []*gw{g1, g2}[i%2]
		if _, err := g.client(key).Chat.Completions.New(context.Background(), p); err == nil {
			ok++
		}
	}
	s1, s2 := spendOf(t, g1, admin), spendOf(t, g2, admin)
	if s1 != s2 || s1 != int64(ok)*18 || s1 > 100 {
		t.Fatalf("replica spends %d and %d for %d calls (limit 100)", s1, s2, ok)
	}
	if ok == 0 || ok == 10 {
		t.Fatalf("%d of 10 succeeded: the shared budget did not bind", ok)
	}
}

func TestStreamWithoutUsageIsChargedByCounting(t *testing.T) {
	// The upstream never reports usage: gavel counts prompt and completion with the real
	// tokenizer after the stream and charges that, instead of charging nothing.
	yaml, key, admin, up := budgetSetup(t, 1_000_000, 0, "")
	up.SetDefault("m1", fakeupstream.Step{Reply: "one two three four five six seven eight", IgnoreIncludeUsage: true})
	g := start(t, yaml(), nil)
	s := g.client(key).Chat.Completions.NewStreaming(context.Background(), userParams("solo", "count these words for me"))
	for s.Next() {
		if s.Current().Usage.TotalTokens > 0 {
			t.Fatal("the fake sent usage")
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var spent int64
	for time.Now().Before(deadline) {
		if spent = spendOf(t, g, admin); spent > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// ~15 prompt tokens at 1 µUSD and 8 completion tokens at 2 µUSD.
	if spent < 20 || spent > 60 {
		t.Fatalf("charged %d µUSD for a stream without usage", spent)
	}
}

// A client that leaves while gavel waits on the ledger (Redis busy) is recorded 499, as
// one that leaves while the upstream answers: the cancellation surfaced as the ledger
// call's error, but nothing failed. It was recorded 500 internal_error.
func TestClientGoneDuringTheLedgerCallIs499(t *testing.T) {
	addr := redisServer(t)
	yaml, key, _, _ := budgetSetup(t, 1_000_000, 0, "ledger: {store: redis, redis: {addr: "+addr+"}}\n")
	g := start(t, yaml(), nil)
	body := `{"model":"solo","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	auth := map[string]string{"Authorization": "Bearer " + key}
	if r, b := g.post(t, "/v1/chat/completions", body, auth); r.StatusCode != 200 {
		t.Fatalf("with redis up: %d %v", r.StatusCode, b)
	}
	rc := redis.NewClient(&redis.Options{Addr: addr, ReadTimeout: 5 * time.Second})
	defer rc.Close()
	busy := make(chan error, 1)
	go func() { // Redis answers nobody for 800 ms
		busy <- rc.Eval(context.Background(), `local t = redis.call('TIME'); local e = t[1]*1000000 + t[2] + 800000
			repeat t = redis.call('TIME') until t[1]*1000000 + t[2] >= e; return 1`, nil).Err()
	}()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the request ended before the client left: %d", resp.StatusCode)
	}
	if err := <-busy; err != nil {
		t.Fatal(err)
	}
	var lines string
	eventually(t, "the request that left to be recorded", func() bool {
		lines = grepLines(g.text(t, "/metrics"), "gavel_requests_total{")
		return strings.Count(lines, "\n") >= 1 && (strings.Contains(lines, `status="499"`) || strings.Contains(lines, `status="500"`))
	})
	if !strings.Contains(lines, `status="499"`) || strings.Contains(lines, `status="500"`) {
		t.Errorf("a client gone during the ledger call:\n%s", lines)
	}
}
