package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// cacheKeys are three callers: two of team search, one of team legal.
type cacheKeys struct{ ana, bob, leo, admin string }

// cacheSetup starts a fake upstream "a" and returns gavel.yaml text for a bundle whose alias
// "solo" (a/m1) caches exact answers per team and coalesces, streams included; tweak
// edits the bundle data first. extra is more gavel.yaml.
func cacheSetup(t *testing.T, extra string, tweak func(map[string]any)) (yaml string, k cacheKeys, up *fakeupstream.Server) {
	t.Helper()
	up = fakeupstream.New()
	t.Cleanup(up.Close)
	var hashes [4]string
	for i, p := range []*string{&k.ana, &k.bob, &k.leo, &k.admin} {
		*p, hashes[i], _ = auth.NewKey()
	}
	data := twoProviders(map[string]any{
		hashes[0]: map[string]any{"key_id": "k-ana", "team": "search", "project": "web"},
		hashes[1]: map[string]any{"key_id": "k-bob", "team": "search", "project": "web"},
		hashes[2]: map[string]any{"key_id": "k-leo", "team": "legal", "project": "web"},
		hashes[3]: map[string]any{"key_id": "k-admin", "team": "platform", "admin": true},
	})
	data["aliases"] = map[string]any{"solo": map[string]any{"candidates": []string{"a/m1"}}}
	data["cache"] = map[string]any{"default": map[string]any{"mode": "off"},
		"aliases": map[string]any{"solo": map[string]any{"mode": "exact", "ttl_s": 600, "scope": "team", "coalesce": true, "streams": true}}}
	if tweak != nil {
		tweak(data)
	}
	dir := bundle(t, "cache-1", data)
	return fmt.Sprintf("policy: %s\n%sproviders:\n  - {name: a, type: openai, base_url: %q, max_retries: 0}\n", dir, extra, up.URL()), k, up
}

// deterministic is a request the default library may cache: temperature 0.
func deterministic(text string) openai.ChatCompletionNewParams {
	p := userParams("solo", text)
	p.Temperature = openai.Float(0)
	p.MaxTokens = openai.Int(10)
	return p
}

// ask sends p and returns the answer's text and X-Gavel-Cache.
func ask(t *testing.T, g *gw, key string, p openai.ChatCompletionNewParams, opts ...option.RequestOption) (string, string) {
	t.Helper()
	var resp *http.Response
	res, err := g.client(key).Chat.Completions.New(context.Background(), p, append(opts, option.WithResponseInto(&resp))...)
	if err != nil {
		t.Fatal(err)
	}
	return res.Choices[0].Message.Content, resp.Header.Get("X-Gavel-Cache")
}

func TestCacheExactHitForTheSameTeamMissForAnother(t *testing.T) {
	yaml, k, up := cacheSetup(t, "", nil)
	up.SetDefault("m1", fakeupstream.Step{Reply: "the cached answer"})
	g := start(t, yaml, nil)
	p := deterministic("what is the capital of France?")
	if txt, c := ask(t, g, k.ana, p); c != "miss" || txt != "the cached answer" {
		t.Fatalf("first: %q %q", txt, c)
	}
	if txt, c := ask(t, g, k.bob, p); c != "hit" || txt != "the cached answer" {
		t.Fatalf("same team, other key: %q %q", txt, c)
	}
	if n := up.Count("m1"); n != 1 {
		t.Fatalf("upstream calls = %d, want 1", n)
	}
	if _, c := ask(t, g, k.leo, p); c != "miss" {
		t.Fatalf("other team: %q", c)
	}
	if n := up.Count("m1"); n != 2 {
		t.Fatalf("upstream calls = %d, want 2 (teams share no entry)", n)
	}
	// A sampling request is not cached, whatever the data says.
	sampled := deterministic("what is the capital of France?")
	sampled.Temperature = openai.Float(0.8)
	for i := 0; i < 2; i++ {
		if _, c := ask(t, g, k.ana, sampled); c != "" {
			t.Fatalf("sampling request: X-Gavel-Cache %q", c)
		}
	}
	if n := up.Count("m1"); n != 4 {
		t.Fatalf("upstream calls = %d, want 4", n)
	}
	m := g.text(t, "/metrics")
	for _, want := range []string{`gavel_cache_requests_total{result="hit",team="search"} 1`, `gavel_cache_requests_total{result="miss",team="legal"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(m, "gavel_cache"))
		}
	}
	if !strings.Contains(m, `gavel_cache_saved_micro_usd_total{team="search"}`) {
		t.Errorf("saved cost not counted:\n%s", grepLines(m, "gavel_cache"))
	}
}

func TestCacheHitAcrossReplicasSharingRedis(t *testing.T) {
	addr := redisServer(t)
	yaml, k, up := cacheSetup(t, "ledger: {store: redis, redis: {addr: "+addr+"}}\n", nil)
	g1, g2 := start(t, yaml, nil), start(t, yaml, nil)
	p := deterministic("shared across replicas")
	if _, c := ask(t, g1, k.ana, p); c != "miss" {
		t.Fatalf("replica 1: %q", c)
	}
	var c string
	eventually(t, "the entry reaches Redis", func() bool {
		_, c = ask(t, g2, k.bob, p)
		return c == "hit"
	})
	if n := up.Count("m1"); n != 1 {
		t.Fatalf("upstream calls = %d, want 1", n)
	}
}

// streamChat collects a stream's text, its chunks' contents and its usage.
func streamChat(t *testing.T, g *gw, key string, p openai.ChatCompletionNewParams) (pieces []string, usage openai.CompletionUsage, cache string) {
	t.Helper()
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	var resp *http.Response
	s := g.client(key).Chat.Completions.NewStreaming(context.Background(), p, option.WithResponseInto(&resp))
	for s.Next() {
		c := s.Current()
		if len(c.Choices) > 0 {
			pieces = append(pieces, c.Choices[0].Delta.Content)
		}
		if c.Usage.TotalTokens > 0 {
			usage = c.Usage
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return pieces, usage, resp.Header.Get("X-Gavel-Cache")
}

func TestCacheStreamReplayEqualsTheOriginal(t *testing.T) {
	yaml, k, up := cacheSetup(t, "", nil)
	up.SetDefault("m1", fakeupstream.Step{Reply: "one two three four five six", Chunks: 4})
	g := start(t, yaml, nil)
	p := deterministic("stream me")
	first, u1, c1 := streamChat(t, g, k.ana, p)
	again, u2, c2 := streamChat(t, g, k.bob, p)
	if c1 != "miss" || c2 != "hit" {
		t.Fatalf("X-Gavel-Cache %q then %q", c1, c2)
	}
	if fmt.Sprint(first) != fmt.Sprint(again) || len(first) < 4 {
		t.Fatalf("replayed chunks %q, original %q", again, first)
	}
	if u1.TotalTokens == 0 || u1.PromptTokens != u2.PromptTokens || u1.CompletionTokens != u2.CompletionTokens {
		t.Fatalf("usage %+v replayed as %+v", u1, u2)
	}
	if n := up.Count("m1"); n != 1 {
		t.Fatalf("upstream calls = %d, want 1", n)
	}
	// The buffered form is an entry of its own: a buffered request misses once.
	if _, c := ask(t, g, k.ana, p); c != "miss" {
		t.Fatalf("buffered after a stream: %q", c)
	}
}

// rawChatStream posts a streamed chat request for text to gavel and returns the body's bytes
// as they came and X-Gavel-Cache.
func rawChatStream(t *testing.T, g *gw, key, text string, usage bool) ([]byte, string) {
	t.Helper()
	body := fmt.Sprintf(`{"model":"solo","temperature":0,"max_tokens":10,"stream":true,"stream_options":{"include_usage":%t},`+
		`"messages":[{"role":"user","content":%q}]}`, usage, text)
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, %v: %s", resp.StatusCode, err, b)
	}
	return b, resp.Header.Get("X-Gavel-Cache")
}

// A streamed hit writes its entry's events rendered once (CachedStream): byte for byte
// what the original stream's client got, and, for a client that did not ask for usage,
// the same events without the usage one, as a live stream relays them.
func TestCacheStreamReplayIsTheOriginalsBytes(t *testing.T) {
	yaml, k, up := cacheSetup(t, "", nil)
	up.SetDefault("m1", fakeupstream.Step{Reply: "one two three \"four\" five <six> é", Chunks: 5})
	g := start(t, yaml, nil)
	first, c := rawChatStream(t, g, k.ana, "stream my bytes", true)
	if c != "miss" || !bytes.HasSuffix(first, []byte("data: [DONE]\n\n")) || !bytes.Contains(first, []byte(`"usage":{`)) {
		t.Fatalf("first stream (%s):\n%s", c, first)
	}
	var noUsage []byte // first without its usage event, which has no choices
	for ev := range bytes.SplitAfterSeq(first, []byte("\n\n")) {
		if !bytes.Contains(ev, []byte(`"usage":{`)) {
			noUsage = append(noUsage, ev...)
		}
	}
	for i, tc := range []struct {
		key   string
		usage bool
		want  []byte
	}{{k.bob, true, first}, {k.ana, true, first}, {k.bob, false, noUsage}, {k.ana, false, noUsage}, {k.bob, true, first}} {
		got, c := rawChatStream(t, g, tc.key, "stream my bytes", tc.usage)
		if c != "hit" || !bytes.Equal(got, tc.want) {
			t.Fatalf("hit %d (usage %t, %s):\n%s\nwant:\n%s", i, tc.usage, c, got, tc.want)
		}
	}
	if n := up.Count("m1"); n != 1 {
		t.Fatalf("upstream calls = %d, want 1", n)
	}
}

func TestCoalescingFiftyIdenticalRequestsMakeOneCall(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			yaml, k, up := cacheSetup(t, "", nil)
			up.SetDefault("m1", fakeupstream.Step{Reply: "shared answer here", Latency: 400 * time.Millisecond})
			g := start(t, yaml, nil)
			p := deterministic("everyone asks this")
			var wg sync.WaitGroup
			var mu sync.Mutex
			results := map[string]int{}
			texts := map[string]int{}
			for i := 0; i < 50; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					key := []string{k.ana, k.bob}[i%2]
					var txt, c string
					if stream {
						var pieces []string
						pieces, _, c = streamChat(t, g, key, p)
						txt = strings.Join(pieces, "")
					} else {
						txt, c = ask(t, g, key, p)
					}
					mu.Lock()
					results[c]++
					texts[txt]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			if n := up.Count("m1"); n != 1 {
				t.Fatalf("upstream calls = %d, want 1 (results %v)", n, results)
			}
			if results["miss"] != 1 || results["coalesced"]+results["hit"] != 49 || results["coalesced"] == 0 {
				t.Fatalf("results %v", results)
			}
			if len(texts) != 1 || texts["shared answer here"] != 50 {
				t.Fatalf("answers %v", texts)
			}
			m := g.text(t, "/metrics")
			if !strings.Contains(m, `gavel_cache_requests_total{result="coalesced",team="search"}`) {
				t.Errorf("coalesced requests not counted:\n%s", grepLines(m, "gavel_cache"))
			}
		})
	}
}

func TestCachedAnswerRefusedWhenTheBudgetIsExhausted(t *testing.T) {
	yaml, k, up := cacheSetup(t, "", func(d map[string]any) {
		d["budgets"] = []any{map[string]any{"name": "team-daily", "scope": "team", "period": "day", "limit_musd": 50, "hard": true}}
	})
	g := start(t, yaml, nil)
	p := deterministic("hi")
	if _, c := ask(t, g, k.ana, p); c != "miss" {
		t.Fatalf("first: %q", c)
	}
	// The first answer spent most of the budget: the same request, cached, is still refused.
	_, err := g.client(k.ana).Chat.Completions.New(context.Background(), p)
	var apiErr *openai.Error
	if err == nil || !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "insufficient_quota" {
		t.Fatalf("cached answer over budget: %v", err)
	}
	if n := up.Count("m1"); n != 1 {
		t.Fatalf("upstream calls = %d", n)
	}
}

func TestBlockedPIIRefusedEvenIfCached(t *testing.T) {
	yaml, k, up := cacheSetup(t, "", func(d map[string]any) {
		d["cache"].(map[string]any)["aliases"].(map[string]any)["solo"].(map[string]any)["scope"] = "global"
		d["pii_policy"] = map[string]any{"pii_actions": map[string]any{"default": map[string]any{"email": "redact"},
			"teams": map[string]any{"legal": map[string]any{"email": "block"}}}, "deny_terms": []string{}, "deny_fields": []string{}}
	})
	g := start(t, yaml, nil)
	p := deterministic("write to ana@example.com please")
	if _, c := ask(t, g, k.ana, p); c != "miss" {
		t.Fatalf("first: %q", c)
	}
	if _, c := ask(t, g, k.bob, p); c != "hit" {
		t.Fatalf("global scope: %q", c)
	}
	_, err := g.client(k.leo).Chat.Completions.New(context.Background(), p)
	var apiErr *openai.Error
	if err == nil || !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "pii_blocked" {
		t.Fatalf("blocked PII with a cached answer: %v", err)
	}
	if n := up.Count("m1"); n != 1 {
		t.Fatalf("upstream calls = %d", n)
	}
}

func TestIdempotencyKeyRetryMakesOneUpstreamCall(t *testing.T) {
	yaml, k, up := cacheSetup(t, "", func(d map[string]any) { d["cache"] = map[string]any{"default": map[string]any{"mode": "off"}} })
	up.SetDefault("m1", fakeupstream.Step{Reply: "paid once", Latency: 600 * time.Millisecond})
	g := start(t, yaml, nil)
	p := userParams("solo", "book the flight") // sampling: never cached, but retried idempotently
	idem := option.WithHeader("Idempotency-Key", "retry-123")
	// The first attempt's client gives up once its call reached the upstream; the call
	// goes on.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for up.Count("m1") == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	_, err := g.client(k.ana).Chat.Completions.New(ctx, p, idem)
	if err == nil {
		t.Fatal("the first attempt should have been abandoned")
	}
	txt, c := ask(t, g, k.ana, p, idem)
	if txt != "paid once" || (c != "coalesced" && c != "hit") {
		t.Fatalf("retry: %q %q", txt, c)
	}
	if txt, c = ask(t, g, k.ana, p, idem); txt != "paid once" || c != "hit" {
		t.Fatalf("second retry: %q %q", txt, c)
	}
	if n := up.Count("m1"); n != 1 {
		t.Fatalf("upstream calls = %d, want 1", n)
	}
	// Another caller's same key is its own.
	if _, c := ask(t, g, k.bob, p, idem); c != "miss" {
		t.Fatalf("another caller, same key: %q", c)
	}
	// Another body under the same key is refused.
	_, err = g.client(k.ana).Chat.Completions.New(context.Background(), userParams("solo", "book two flights"), idem)
	var apiErr *openai.Error
	if err == nil || !errors.As(err, &apiErr) || apiErr.StatusCode != 422 || apiErr.Code != "idempotency_key_reused" {
		t.Fatalf("different body: %v", err)
	}
	if n := up.Count("m1"); n != 2 {
		t.Fatalf("upstream calls = %d, want 2", n)
	}
}

func TestAdminPurgesTheCacheByScope(t *testing.T) {
	addr := redisServer(t)
	yaml, k, up := cacheSetup(t, "ledger: {store: redis, redis: {addr: "+addr+"}}\n", nil)
	g := start(t, yaml, nil)
	p := deterministic("purge me")
	ask(t, g, k.ana, p)
	ask(t, g, k.leo, p)
	eventually(t, "both teams' entries are served", func() bool {
		_, c1 := ask(t, g, k.bob, p)
		_, c2 := ask(t, g, k.leo, p)
		return c1 == "hit" && c2 == "hit"
	})
	purge := func(key, query string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(http.MethodDelete, g.URL+"/v1/gavel/cache"+query, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		return do(t, req)
	}
	if r, _ := purge(k.ana, "?scope=team&id=search"); r.StatusCode != 403 {
		t.Fatalf("non-admin purge: %d", r.StatusCode)
	}
	if r, b := purge(k.admin, ""); r.StatusCode != 400 {
		t.Fatalf("purge without a filter: %d %v", r.StatusCode, b)
	}
	r, b := purge(k.admin, "?scope=team&id=search")
	if r.StatusCode != 200 || b["deleted_memory"].(float64) != 1 || b["deleted_shared"].(float64) != 1 {
		t.Fatalf("purge: %d %v", r.StatusCode, b)
	}
	if _, c := ask(t, g, k.bob, p); c != "miss" {
		t.Fatalf("after the purge, team search: %q", c)
	}
	if _, c := ask(t, g, k.leo, p); c != "hit" {
		t.Fatalf("after the purge, team legal: %q", c)
	}
	if _, c := ask(t, g, k.ana, p); c != "hit" {
		t.Fatalf("team search after its miss: %q", c)
	}
	if r, b := purge(k.admin, "?all=true"); r.StatusCode != 200 || b["deleted_memory"].(float64) != 2 {
		t.Fatalf("purge all: %d %v", r.StatusCode, b)
	}
	_ = up
	// Each purge is an admin action in the audit log, newest first (the refused ones are not).
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/gavel/audit?limit=10", nil)
	req.Header.Set("Authorization", "Bearer "+k.admin)
	r, b = do(t, req)
	var purges []string
	for _, e := range asList(b["data"]) {
		if m, _ := e.(map[string]any); m["action"] == "cache.purge" {
			purges = append(purges, fmt.Sprint(m["target"]))
		}
	}
	if r.StatusCode != 200 || !slices.Equal(purges, []string{"", "team:search"}) {
		t.Fatalf("audit log: %d, purges %q in %v", r.StatusCode, purges, b)
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }

// A shared stream past the flight's 4 MiB bound takes no more joiners: two clients that
// joined from the start both get the whole answer from one call, and an identical request
// arriving once more than 4 MiB went by makes its own call instead of joining (the flight
// has stopped keeping chunks every reader has read, so it could not replay them).
func TestCoalescedStreamPastItsBoundTakesNoJoiners(t *testing.T) {
	yaml, k, up := cacheSetup(t, "", nil)
	// 6 MiB of prose in 8 KiB chunks. gavel counts a long stream's tokens as it relays
	// them, which the race detector slows some twentyfold: the clients get minutes, and
	// the late one reads only the start of its own call.
	const chunks, piece = 768, 8 << 10
	words := strings.Repeat("lorem ipsum dolor sit amet ", piece/27+1)[:piece-1] + " "
	reply := strings.Repeat(words, chunks)
	up.SetDefault("m1", fakeupstream.Step{Reply: reply, Chunks: chunks, ChunkInterval: 2 * time.Millisecond})
	g := start(t, yaml, nil)
	p := deterministic("a very long answer")
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}

	type result struct {
		text, cache string
		err         error
	}
	// read reads a whole stream, or until progress says stop.
	read := func(key string, progress func(n int) (stop bool)) result {
		var resp *http.Response
		s := g.client(key, option.WithRequestTimeout(3*time.Minute)).Chat.Completions.NewStreaming(context.Background(), p, option.WithResponseInto(&resp))
		defer s.Close()
		var b strings.Builder
		for s.Next() {
			if c := s.Current(); len(c.Choices) > 0 {
				b.WriteString(c.Choices[0].Delta.Content)
				if progress != nil && progress(b.Len()) {
					break
				}
			}
		}
		cache := ""
		if resp != nil {
			cache = resp.Header.Get("X-Gavel-Cache")
		}
		return result{b.String(), cache, s.Err()}
	}
	var wg sync.WaitGroup
	var follower, late result
	var joined, passed sync.Once
	leader := read(k.ana, func(n int) bool {
		joined.Do(func() { // the first chunk is out: the call is in flight
			wg.Add(1)
			go func() { defer wg.Done(); follower = read(k.bob, nil) }()
		})
		if n > 5<<20 { // well past the bound
			passed.Do(func() {
				wg.Add(1)
				go func() { defer wg.Done(); late = read(k.bob, func(n int) bool { return n > 0 }) }()
			})
		}
		return false
	})
	wg.Wait()
	for name, r := range map[string]result{"leader": leader, "follower": follower} {
		if r.err != nil || r.text != reply {
			t.Fatalf("%s: %d of %d bytes, err %v", name, len(r.text), len(reply), r.err)
		}
	}
	if late.err != nil || !strings.HasPrefix(reply, late.text) || late.text == "" {
		t.Fatalf("late: %d bytes, err %v", len(late.text), late.err)
	}
	if leader.cache != "miss" || follower.cache != "coalesced" {
		t.Fatalf("X-Gavel-Cache: leader %q, follower %q; want miss, coalesced", leader.cache, follower.cache)
	}
	if late.cache != "miss" || up.Count("m1") != 2 {
		t.Fatalf("the late request: X-Gavel-Cache %q, %d upstream calls; want its own call (miss, 2)", late.cache, up.Count("m1"))
	}
}
