package test

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// The turns of the semantic tests and the vectors the fake upstream embeds them as: a
// paraphrase at cosine 0.96 of the question, a different question at 0.80.
const (
	question   = "what is the capital of France?"
	paraphrase = "tell me the capital city of France"
	different  = "what is the capital of Spain?"
)

// semanticSetup is cacheSetup with alias "solo" in mode semantic (threshold 0.90),
// embedded by embed ("a/emb": the fake upstream's /v1/embeddings), coalescing or not.
func semanticSetup(t *testing.T, embed map[string]any, coalesce bool) (string, cacheKeys, *fakeupstream.Server) {
	t.Helper()
	yaml, k, up := cacheSetup(t, "", func(d map[string]any) {
		d["cache"] = map[string]any{"default": map[string]any{"mode": "off"},
			"aliases": map[string]any{"solo": map[string]any{"mode": "semantic", "embed": embed, "min_similarity": 9000,
				"ttl_s": 600, "scope": "team", "streams": true, "coalesce": coalesce}}}
	})
	up.SetVector(question, []float32{1, 0, 0, 0})
	up.SetVector(paraphrase, []float32{0.96, 0.28, 0, 0})
	up.SetVector(different, []float32{0.8, 0.6, 0, 0})
	return yaml, k, up
}

// askSemantic sends p and returns the answer's text, X-Gavel-Cache,
// X-Gavel-Cache-Similarity and the decision id.
func askSemantic(t *testing.T, g *gw, key string, p openai.ChatCompletionNewParams) (text, cache, similarity, id string) {
	t.Helper()
	var resp *http.Response
	res, err := g.client(key).Chat.Completions.New(context.Background(), p, option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	h := resp.Header
	return res.Choices[0].Message.Content, h.Get("X-Gavel-Cache"), h.Get("X-Gavel-Cache-Similarity"), h.Get("X-Gavel-Decision-Id")
}

func TestSemanticCacheHitAboveThresholdMissBelow(t *testing.T) {
	// Both store paths: the request's own call, and a coalesced call's leader.
	for _, coalesce := range []bool{false, true} {
		t.Run(map[bool]string{false: "own call", true: "coalesced"}[coalesce], func(t *testing.T) { semanticHitAndMiss(t, coalesce) })
	}
}

func semanticHitAndMiss(t *testing.T, coalesce bool) {
	yaml, k, up := semanticSetup(t, map[string]any{"provider": "a", "model": "emb"}, coalesce)
	up.SetDefault("m1", fakeupstream.Step{Reply: "Paris."})
	g := start(t, yaml, nil)

	if txt, c, _, _ := askSemantic(t, g, k.ana, deterministic(question)); c != "miss" || txt != "Paris." {
		t.Fatalf("first: %q %q", txt, c)
	}
	// A paraphrase above the threshold, from another key of the same team: the stored answer.
	txt, c, sim, id := askSemantic(t, g, k.bob, deterministic(paraphrase))
	if c != "hit" || sim != "9600" || txt != "Paris." {
		t.Fatalf("paraphrase: %q %q similarity %q", txt, c, sim)
	}
	if n := up.Count("m1"); n != 1 {
		t.Fatalf("chat upstream calls = %d, want 1", n)
	}
	if n := up.Count("emb"); n != 2 {
		t.Fatalf("embeddings calls = %d, want 2 (one per exact miss)", n)
	}
	// Below the threshold: a call of its own.
	up.SetDefault("m1", fakeupstream.Step{Reply: "Madrid."})
	if txt, c, sim, _ := askSemantic(t, g, k.ana, deterministic(different)); c != "miss" || sim != "" || txt != "Madrid." {
		t.Fatalf("different question: %q %q %q", txt, c, sim)
	}
	if n := up.Count("m1"); n != 2 {
		t.Fatalf("chat upstream calls = %d, want 2", n)
	}
	// Another team never reads this team's entries.
	if _, c, _, _ := askSemantic(t, g, k.leo, deterministic(paraphrase)); c != "miss" {
		t.Fatalf("other team: %q", c)
	}
	if n := up.Count("m1"); n != 3 {
		t.Fatalf("chat upstream calls = %d, want 3", n)
	}
	// Another system prompt is another partition.
	other := deterministic(paraphrase)
	other.Messages[0] = openai.SystemMessage("answer in French")
	if _, c, _, _ := askSemantic(t, g, k.bob, other); c != "miss" {
		t.Fatalf("other system prompt: %q", c)
	}
	if n := up.Count("m1"); n != 4 {
		t.Fatalf("chat upstream calls = %d, want 4", n)
	}

	m := g.text(t, "/metrics")
	for _, want := range []string{
		`gavel_cache_semantic_lookups_total{result="hit",team="search"} 1`,
		`gavel_cache_semantic_lookups_total{result="miss",team="legal"} 1`,
		`gavel_cache_semantic_similarity_count 2`, // 0.96 (hit) and 0.80 (miss); the empty partitions have none
		`gavel_cache_requests_total{result="hit",team="search"} 1`,
		`gavel_cache_semantic_vectors 4`,
		// The embeddings calls are the requests' upstream usage too (the fake counts
		// len/4 tokens: 7 + 8 + 7 + 8 for team search's four lookups).
		`gavel_tokens_total{direction="input",model="emb",provider="a",team="search"} 30`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(m, "gavel_cache"))
		}
	}
	// The decision log says what served the hit.
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/gavel/decisions/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+k.admin)
	var ev map[string]any
	eventually(t, "the hit's decision is logged", func() bool {
		var r *http.Response
		r, ev = do(t, req)
		return r.StatusCode == 200
	})
	custom, _ := ev["custom"].(map[string]any)
	if custom["cache"] != "hit" || custom["cache_kind"] != "semantic" || custom["cache_similarity_bp"] != float64(9600) {
		t.Fatalf("decision log custom = %v", custom)
	}
	// A purge takes the scope's vectors with its answers.
	del, _ := http.NewRequest(http.MethodDelete, g.URL+"/v1/gavel/cache?scope=team&id=search", nil)
	del.Header.Set("Authorization", "Bearer "+k.admin)
	held := metricValue(t, g, "gavel_cache_semantic_vectors")
	if r, b := do(t, del); r.StatusCode != 200 || b["deleted_vectors"] != held-1 {
		t.Fatalf("purge: %d %v (vectors held before: %v, want all but team legal's deleted)", r.StatusCode, b, held)
	}
	if m := g.text(t, "/metrics"); !strings.Contains(m, "gavel_cache_semantic_vectors 1\n") { // team legal's
		t.Errorf("purged vectors still held:\n%s", grepLines(m, "gavel_cache_semantic_vectors"))
	}
	if _, c, _, _ := askSemantic(t, g, k.bob, deterministic(paraphrase)); c != "miss" {
		t.Fatalf("after the purge: %q", c)
	}
}

func TestSemanticCacheMultiTurnNeverHits(t *testing.T) {
	yaml, k, up := semanticSetup(t, map[string]any{"provider": "a", "model": "emb"}, false)
	g := start(t, yaml, nil)
	if _, c, _, _ := askSemantic(t, g, k.ana, deterministic(question)); c != "miss" {
		t.Fatalf("first: %q", c)
	}
	// A conversation whose last user turn is the stored question itself, and one whose
	// last turn is a paraphrase: neither is served from the single-turn entry.
	for _, last := range []string{question, paraphrase} {
		p := deterministic(last)
		p.Messages = []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"),
			openai.UserMessage("I am planning a trip."), openai.AssistantMessage("Where to?"), openai.UserMessage(last)}
		for range 2 {
			if _, c, sim, _ := askSemantic(t, g, k.bob, p); c == "hit" && sim != "" {
				t.Fatalf("multi-turn %q: semantic hit (similarity %s)", last, sim)
			}
		}
	}
	// Each conversation went upstream once, then hit exactly (an identical conversation).
	if n := up.Count("m1"); n != 3 {
		t.Fatalf("chat upstream calls = %d, want 3", n)
	}
	if n := up.Count("emb"); n != 1 {
		t.Fatalf("embeddings calls = %d, want 1 (conversations are not embedded)", n)
	}
}

func TestSemanticCacheEmbeddingsDownIsAMiss(t *testing.T) {
	yaml, k, up := semanticSetup(t, map[string]any{"provider": "e", "model": "emb"}, false)
	yaml += "  - {name: e, type: openai, base_url: \"http://127.0.0.1:1/v1\", max_retries: 0}\n"
	g := start(t, yaml, nil)
	for i, text := range []string{question, paraphrase, question} {
		txt, c, _, _ := askSemantic(t, g, k.ana, deterministic(text))
		want := "miss"
		if i == 2 {
			want = "hit" // the exact lookup needs no embedding
		}
		if c != want || txt == "" {
			t.Fatalf("request %d: %q %q, want %s", i, txt, c, want)
		}
	}
	if n := up.Count("m1"); n != 2 {
		t.Fatalf("chat upstream calls = %d, want 2", n)
	}
	if m := g.text(t, "/metrics"); !strings.Contains(m, `gavel_cache_semantic_lookups_total{result="embed_error",team="search"} 2`) {
		t.Errorf("embedding failures not counted:\n%s", grepLines(m, "gavel_cache_semantic"))
	}
}

func TestSemanticCacheStreamReplay(t *testing.T) {
	for _, coalesce := range []bool{false, true} {
		t.Run(map[bool]string{false: "own call", true: "coalesced"}[coalesce], func(t *testing.T) { semanticStreamReplay(t, coalesce) })
	}
}

func semanticStreamReplay(t *testing.T, coalesce bool) {
	yaml, k, up := semanticSetup(t, map[string]any{"provider": "a", "model": "emb"}, coalesce)
	up.SetDefault("m1", fakeupstream.Step{Reply: "The capital of France is Paris.", Chunks: 4})
	g := start(t, yaml, nil)
	p := deterministic(question)
	first, usage1, c1 := streamChat(t, g, k.ana, p)
	if c1 != "miss" || len(first) < 2 {
		t.Fatalf("first stream: %q %v", c1, first)
	}
	// A buffered answer and a stream are separate entries: the buffered one is not replayed.
	if _, c, _, _ := askSemantic(t, g, k.bob, deterministic(paraphrase)); c != "miss" {
		t.Fatalf("buffered paraphrase: %q", c)
	}
	again, usage2, c2 := streamChat(t, g, k.bob, deterministic(paraphrase))
	if c2 != "hit" || !slices.Equal(first, again) || usage1.TotalTokens == 0 ||
		usage1.PromptTokens != usage2.PromptTokens || usage1.CompletionTokens != usage2.CompletionTokens {
		t.Fatalf("replay: %q %q %+v, want %q %+v", c2, again, usage2, first, usage1)
	}
	if n := up.Count("m1"); n != 2 {
		t.Fatalf("chat upstream calls = %d, want 2", n)
	}
}

func TestSemanticCacheFollowerInFlightDoesNotEmbed(t *testing.T) {
	yaml, k, up := semanticSetup(t, map[string]any{"provider": "a", "model": "emb"}, true)
	up.SetDefault("m1", fakeupstream.Step{Reply: "Paris.", Latency: 500 * time.Millisecond})
	g := start(t, yaml, nil)
	first := make(chan string, 1)
	go func() {
		_, c, _, _ := askSemantic(t, g, k.ana, deterministic(question))
		first <- c
	}()
	eventually(t, "the first request reaches the upstream", func() bool { return up.Count("m1") == 1 })
	// The identical request joins the call in flight: nothing to embed.
	if _, c, _, _ := askSemantic(t, g, k.bob, deterministic(question)); c != "coalesced" {
		t.Fatalf("follower: %q", c)
	}
	if c := <-first; c != "miss" {
		t.Fatalf("leader: %q", c)
	}
	if n, m := up.Count("emb"), up.Count("m1"); n != 1 || m != 1 {
		t.Fatalf("embeddings calls = %d (want 1), chat calls = %d (want 1)", n, m)
	}
}

// A semantic lookup's embeddings call uses tokens of its own: they count against the
// caller's token limit (tpm) like any upstream usage, on a hit as on a miss. Two identical
// paraphrases make the proof: both are semantic hits with the same estimate and no chat
// tokens, so the remaining tokens the second is told at admission is the first's less
// exactly what the first one's embedding used.
func TestSemanticCacheEmbeddingTokensCountAgainstTPM(t *testing.T) {
	yaml, k, up := cacheSetup(t, "", func(d map[string]any) {
		d["cache"] = map[string]any{"default": map[string]any{"mode": "off"},
			"aliases": map[string]any{"solo": map[string]any{"mode": "semantic", "embed": map[string]any{"provider": "a", "model": "emb"},
				"min_similarity": 9000, "ttl_s": 600, "scope": "team"}}}
		d["rate_limits"] = []any{map[string]any{"scope": "team", "tpm": 1000000}}
	})
	up.SetVector(question, []float32{1, 0, 0, 0})
	up.SetVector(paraphrase, []float32{0.96, 0.28, 0, 0})
	up.SetDefault("m1", fakeupstream.Step{Reply: "Paris."})
	g := start(t, yaml, nil)

	remaining := func(key, text, wantCache string) int {
		t.Helper()
		var resp *http.Response
		if _, err := g.client(key).Chat.Completions.New(context.Background(), deterministic(text), option.WithResponseInto(&resp)); err != nil {
			t.Fatal(err)
		}
		if c := resp.Header.Get("X-Gavel-Cache"); c != wantCache {
			t.Fatalf("%q: X-Gavel-Cache %q, want %q", text, c, wantCache)
		}
		n, err := strconv.Atoi(resp.Header.Get("X-Ratelimit-Remaining-Tokens"))
		if err != nil {
			t.Fatalf("%q: X-Ratelimit-Remaining-Tokens %q", text, resp.Header.Get("X-Ratelimit-Remaining-Tokens"))
		}
		return n
	}
	remaining(k.ana, question, "miss")
	first := remaining(k.bob, paraphrase, "hit")
	second := remaining(k.bob, paraphrase, "hit")
	if n, c := up.Count("emb"), up.Count("m1"); n != 3 || c != 1 {
		t.Fatalf("embeddings calls = %d, chat calls = %d, want 3 and 1", n, c)
	}
	want := max(1, len(paraphrase)/4) // the fake upstream's embedding usage for the turn
	if first-second != want {
		t.Errorf("remaining tokens %d then %d: the first hit's embedding counted %d tokens, want %d", first, second, first-second, want)
	}
}
