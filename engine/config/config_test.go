package config

import (
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/ledger/redisstore"
	"github.com/gavel-gw/gavel/engine/pipeline"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParse(t *testing.T) {
	good := `
listen: 127.0.0.1:9090
max_body_bytes: 2048
providers:
  - name: deepseek
    type: openai
    base_url: https://api.deepseek.com/v1
    api_key: ${DEEPSEEK_API_KEY}
    timeout: 20s
    max_retries: 0
    breaker: {failure_threshold: 3, delay: 10s}
  - name: local
    type: mock
    mock: {latency: 5ms, chunks: 4}
  - name: vllm
    type: openai
    base_url: ${VLLM_URL:-http://127.0.0.1:8000/v1}
    headers: {X-Cost: "$$5"}
    discover_models: true
    models:
      - name: meta-llama/Llama-3.1-8B-Instruct
        aliases: [fast, llama]
        context_window: 131072
        prices: {input: 0.27, output: 1.10}
        capabilities: [tools, json]
      - {name: bge-m3, kind: embedding}
`
	c, err := Parse([]byte(good), env(map[string]string{"DEEPSEEK_API_KEY": "sk-ds"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9090" || c.RequestTimeout != DefaultRequestTimeout || len(c.Providers) != 3 {
		t.Fatalf("config = %+v", c)
	}
	ds := c.Providers[0]
	if string(ds.APIKey) != "sk-ds" || ds.Resilience().Timeout != 20*time.Second || ds.Resilience().MaxRetries != 0 ||
		ds.Resilience().Breaker.FailureThreshold != 3 || ds.Resilience().Breaker.SuccessThreshold != 1 {
		t.Errorf("deepseek = %+v / %+v", ds, ds.Resilience())
	}
	if c.Providers[1].Mock.Latency != 5*time.Millisecond {
		t.Errorf("mock latency = %v", c.Providers[1].Mock.Latency)
	}
	if c.Providers[2].BaseURL != "http://127.0.0.1:8000/v1" || c.Providers[2].Headers["X-Cost"] != "$5" {
		t.Errorf("vllm = %+v", c.Providers[2])
	}
	if m := c.Providers[2].Models; !c.Providers[2].DiscoverModels || len(m) != 2 || m[0].Aliases[1] != "llama" ||
		m[0].ContextWindow != 131072 || m[0].Prices.Output != 1.10 || m[1].Kind != "embedding" {
		t.Errorf("vllm models = %+v", m)
	}
	if c.Providers[2].Resilience().MaxRetries != 2 {
		t.Errorf("default max_retries not applied")
	}
}

func TestShadowConfig(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       Shadow
	}{
		// Unset stays zero: the executor and the pipeline apply their own defaults.
		{"defaults", "", Shadow{}},
		{"set", "shadow: {workers: 2, queue: 8, timeout: 5s, similarity_wait: 30s, budget_scope: caller}",
			Shadow{Workers: 2, Queue: 8, Timeout: 5 * time.Second, SimilarityWait: 30 * time.Second, BudgetScope: pipeline.ShadowChargeCaller}},
		{"none", "shadow: {budget_scope: none}", Shadow{BudgetScope: pipeline.ShadowChargeNone}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			if c.Shadow != tc.want {
				t.Errorf("shadow = %+v, want %+v", c.Shadow, tc.want)
			}
			if e := c.Shadow.Executor(); e.Workers != tc.want.Workers || e.Timeout != tc.want.Timeout {
				t.Errorf("executor config = %+v", e)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top-level field", "listn: x", "field listn not found"},
		{"unknown provider field", "providers:\n  - name: a\n    type: openai\n    api_kee: x", "field api_kee not found"},
		{"unset env", "providers:\n  - name: a\n    type: openai\n    api_key: ${NOPE}", "line 4: environment variable NOPE is not set"},
		{"bad listen", "listen: nope", "listen"},
		{"small body", "max_body_bytes: 10", "max_body_bytes"},
		{"bad level", "log_level: loud", "log_level"},
		{"dup provider", "providers:\n  - {name: a, type: mock}\n  - {name: a, type: mock}", "duplicate name"},
		{"bad provider", "providers:\n  - {name: a, type: nope}", "providers[0] (a): unknown type"},
		{"bad retries", "providers:\n  - {name: a, type: mock, max_retries: 99}", "max_retries"},
		{"bad duration", "request_timeout: soon", "soon"},
		{"negative write stall", "write_stall_timeout: -1s", "write_stall_timeout"},
		{"negative idle conns", "max_idle_conns: -1", "max_idle_conns"},
		{"health check without model", "providers:\n  - {name: a, type: mock, health_check: {interval: 1s}}", "health_check needs a model"},
		{"unknown drop_params", "providers:\n  - {name: a, type: anthropic, api_key: k, drop_params: ignore}", "drop_params must be error or drop, got \"ignore\""},
		{"bad ledger store", "ledger: {store: etcd}", "ledger.store"},
		{"redis without addr", "ledger: {store: redis}", "ledger.redis.addr"},
		{"bad failure mode", "ledger: {failure_mode: maybe}", "failure_mode"},
		{"negative redis timeout", "ledger: {store: redis, redis: {addr: r:6379, read_timeout: -1s}}", "ledger.redis.read_timeout must be between 0 (the default, 300ms) and 10s, got -1s"},
		{"huge redis timeout", "ledger: {store: redis, redis: {addr: r:6379, dial_timeout: 1m}}", "ledger.redis.dial_timeout must be between"},
		{"unknown redis field", "ledger: {store: redis, redis: {addr: r:6379, timeout: 1s}}", "field timeout not found"},
		{"negative responses ttl", "responses: {store_ttl: -1h}", "responses.store_ttl"},
		{"negative semantic bound", "cache: {semantic_max_bytes: -1}", "cache.semantic_max_bytes"},
		{"negative embed timeout", "cache: {semantic_embed_timeout: -1s}", "cache.semantic_embed_timeout"},
		{"unknown shadow field", "shadow: {worker: 2}", "field worker not found"},
		{"bad shadow budget scope", "shadow: {budget_scope: team}", "shadow.budget_scope"},
		{"negative shadow workers", "shadow: {workers: -1}", "shadow.workers"},
		{"negative shadow queue", "shadow: {queue: -5}", "shadow.queue"},
		{"negative shadow timeout", "shadow: {timeout: -1s}", "shadow.timeout"},
		{"every bad shadow field", "shadow: {workers: -1, budget_scope: x}", "shadow.budget_scope"},
		{"model without name", "providers:\n  - {name: a, type: openai, models: [{aliases: [x]}]}", "providers[0] (a).models[0]: name is required"},
		{"duplicate model", "providers:\n  - {name: a, type: openai, models: [{name: m}, {name: m}]}", "models[1]: duplicate name \"m\""},
		{"unknown model field", "providers:\n  - {name: a, type: openai, models: [{name: m, context: 5}]}", "field context not found"},
		{"bad model kind", "providers:\n  - {name: a, type: openai, models: [{name: m, kind: image}]}", "kind must be chat or embedding"},
		{"bad capability", "providers:\n  - {name: a, type: openai, models: [{name: m, capabilities: [audio]}]}", "unknown capability \"audio\""},
		{"negative price", "providers:\n  - {name: a, type: openai, models: [{name: m, prices: {input: -1}}]}", "prices are USD per million tokens"},
		{"alias is the name", "providers:\n  - {name: a, type: openai, models: [{name: m, aliases: [m]}]}", "alias \"m\""},
		{"interval without discovery", "providers:\n  - {name: a, type: openai, discovery_interval: 1m}", "discovery_interval needs discover_models"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	c := Default()
	provs, notes := c.Resolve(env(nil))
	if len(provs) != 1 || provs[0].Name != "mock" || len(notes) != 1 || !strings.Contains(notes[0], "NO PROVIDER") {
		t.Fatalf("provs=%+v notes=%v", provs, notes)
	}
	c, err := Parse([]byte("providers:\n  - {name: openai, type: openai, base_url: 'http://127.0.0.1:1/v1'}"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	provs, notes = c.Resolve(env(map[string]string{"OPENAI_API_KEY": "k"}))
	if len(provs) != 1 || provs[0].BaseURL != "http://127.0.0.1:1/v1" || len(notes) != 1 {
		t.Fatalf("file provider should replace env one: provs=%+v notes=%v", provs, notes)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:80": true, "localhost:1": true, "[::1]:8080": true,
		"0.0.0.0:8080": false, ":8080": false, "10.0.0.1:80": false} {
		if IsLoopback(addr) != want {
			t.Errorf("IsLoopback(%q) = %v", addr, !want)
		}
	}
}

func TestFaultsConfig(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       bool
		err        string
	}{
		{"default off", "", false, ""},
		{"enabled", "faults: {enabled: true}", true, ""},
		{"disabled", "faults: {enabled: false}", false, ""},
		{"unknown field", "faults: {enabled: true, rate: 0.1}", false, "rate"},
		{"not a bool", "faults: {enabled: sometimes}", false, "into bool"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), env(nil))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Faults.Enabled != tc.want {
				t.Errorf("faults.enabled = %v", c.Faults.Enabled)
			}
		})
	}
}

func TestRedisTimeouts(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       redisstore.Timeouts
	}{
		// Unset stays zero and takes redisstore's defaults when the client is made.
		{"defaults", "", redisstore.Timeouts{Dial: redisstore.DefaultDialTimeout, Read: redisstore.DefaultReadTimeout, Write: redisstore.DefaultWriteTimeout}},
		{"set", ", dial_timeout: 1s, read_timeout: 2s, write_timeout: 500ms", redisstore.Timeouts{Dial: time.Second, Read: 2 * time.Second, Write: 500 * time.Millisecond}},
		{"one set", ", read_timeout: 1500ms", redisstore.Timeouts{Dial: redisstore.DefaultDialTimeout, Read: 1500 * time.Millisecond, Write: redisstore.DefaultWriteTimeout}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte("ledger: {store: redis, redis: {addr: r:6379"+tc.yaml+"}}"), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Ledger.Redis.Timeouts().WithDefaults(); got != tc.want {
				t.Errorf("timeouts = %+v, want %+v", got, tc.want)
			}
		})
	}
}
