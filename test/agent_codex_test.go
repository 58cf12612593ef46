//go:build agents

package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/test/fakeanthropic"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// decisionsOf reads the decision-log file's records.
func decisionsOf(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("decision log line %s: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// TestAgentCodex drives the real Codex CLI (@openai/codex, headless `codex exec`) through
// gavel: a model_providers entry in $CODEX_HOME/config.toml points it at gavel's /v1 with
// wire_api = "responses", and the policy routes its model, gpt-5-codex, by bundle data.
// Twice: to a fake OpenAI upstream that serves the Responses API (the requests pass
// through as Codex wrote them), and to a fake Anthropic (translated both ways; Codex's
// hosted web_search tool and its multi-agent tool namespace are switched off in its
// config, since only OpenAI runs them). Each upstream is scripted to call Codex's
// exec_command tool, then to answer: the tool must really run (its output comes back),
// the agent must finish with the answer, and gavel must have decided and logged both
// requests.
func TestAgentCodex(t *testing.T) {
	codex := agentBin(t, "codex")
	const answer = "All done: the command printed gavel-tool-ran."
	call := `{"cmd":"echo gavel-tool-ran"}`
	for _, tc := range []struct {
		name, route, extraConfig string
		script                   func(oa *fakeupstream.Server, claude *fakeanthropic.Server)
		second                   func(oa *fakeupstream.Server, claude *fakeanthropic.Server) (raw string, n int)
	}{
		{name: "passthrough", route: "oa/gpt-5-codex",
			script: func(oa *fakeupstream.Server, _ *fakeanthropic.Server) {
				oa.Script("gpt-5-codex",
					fakeupstream.Step{ToolCalls: []fakeupstream.ToolCall{{ID: "call_codex1", Name: "exec_command", Arguments: call}}},
					fakeupstream.Step{Reply: answer})
			},
			second: func(oa *fakeupstream.Server, _ *fakeanthropic.Server) (string, int) {
				r := oa.Requests()
				if len(r) < 2 {
					return "", len(r)
				}
				if r[0].Path != "/v1/responses" || !strings.Contains(string(r[1].Raw), `"function_call_output"`) {
					t.Errorf("passed-through requests: %s %.500s", r[0].Path, r[1].Raw)
				}
				return string(r[1].Raw), len(r)
			}},
		{name: "translated-to-anthropic", route: "claude/claude-sonnet-4-5",
			extraConfig: "web_search = \"disabled\"\n\n[features]\nmulti_agent = false\n",
			script: func(_ *fakeupstream.Server, claude *fakeanthropic.Server) {
				claude.Script("claude-sonnet-4-5",
					fakeanthropic.Step{ToolCalls: []fakeanthropic.ToolCall{{ID: "call_codex1", Name: "exec_command", Arguments: call}}},
					fakeanthropic.Step{Reply: answer})
			},
			second: func(_ *fakeupstream.Server, claude *fakeanthropic.Server) (string, int) {
				r := claude.Requests()
				if len(r) < 2 {
					return "", len(r)
				}
				if !strings.Contains(string(r[1].Raw), `"tool_result"`) {
					t.Errorf("translated second request: %.500s", r[1].Raw)
				}
				return string(r[1].Raw), len(r)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oa, claude := fakeupstream.New(), fakeanthropic.New()
			t.Cleanup(oa.Close)
			t.Cleanup(claude.Close)
			key, hash, _ := auth.NewKey()
			data := twoProviders(map[string]any{hash: map[string]any{"key_id": "k-codex", "team": "agents"}})
			cat := data["catalog"].(map[string]any)
			cat["oa/gpt-5-codex"] = entry("oa", "gpt-5-codex")
			cat["claude/claude-sonnet-4-5"] = entry("claude", "claude-sonnet-4-5")
			data["aliases"].(map[string]any)["gpt-5-codex"] = map[string]any{"strategy": "ordered", "candidates": []string{tc.route}}
			logFile := filepath.Join(t.TempDir(), "decisions.jsonl")
			g := start(t, fmt.Sprintf(`policy: %s
decision_log: {file: %s}
providers:
  - {name: oa, type: openai, base_url: %q, api_key: sk-fake, max_retries: 0, responses_api: true}
  - {name: claude, type: anthropic, base_url: %q, api_key: ak-fake, max_retries: 0}
  - {name: a, type: openai, base_url: %q, max_retries: 0}
  - {name: b, type: openai, base_url: %q, max_retries: 0}
`, bundle(t, "codex-1", data), logFile, oa.URL(), claude.URL(), oa.URL(), oa.URL()), nil)
			tc.script(oa, claude)

			home, work := t.TempDir(), t.TempDir()
			config := fmt.Sprintf(`model = "gpt-5-codex"
model_provider = "gavel"
approval_policy = "never"
sandbox_mode = "danger-full-access"
%s
[model_providers.gavel]
name = "gavel"
base_url = "%s/v1"
env_key = "GAVEL_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
`, tc.extraConfig, g.URL)
			if err := os.WriteFile(filepath.Join(home, "config.toml"), []byte(config), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, codex, "exec", "--skip-git-repo-check", "--color", "never", "-C", work, "run echo for me")
			cmd.Env = append(os.Environ(), "CODEX_HOME="+home, "GAVEL_API_KEY="+key, "HOME="+home, "NO_COLOR=1")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if err != nil || !strings.Contains(stdout.String(), answer) {
				t.Fatalf("codex exec: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
			}
			raw, n := tc.second(oa, claude)
			if n != 2 {
				t.Fatalf("upstream got %d requests, want 2 (the tool call, then the answer); stderr:\n%s", n, stderr.String())
			}
			// The tool really ran: its output went back upstream.
			if !strings.Contains(raw, "gavel-tool-ran\\n") || !strings.Contains(raw, "call_codex1") {
				t.Errorf("second request carries no tool output: %.3000s", raw)
			}

			// Both requests were decided and logged as Responses decisions of the codex key.
			var decided []string
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				decided = nil
				for _, d := range decisionsOf(t, logFile) {
					if s := fmt.Sprint(d); strings.Contains(s, "endpoint:responses") {
						decided = append(decided, s)
					}
				}
				if len(decided) >= 2 {
					break
				}
			}
			if len(decided) != 2 {
				t.Fatalf("%d responses decisions logged, want 2", len(decided))
			}
			for _, d := range decided {
				if !strings.Contains(d, "k-codex") || !strings.Contains(d, tc.route) || !strings.Contains(d, "protocol:responses") {
					t.Errorf("decision %s", d)
				}
			}
		})
	}
}
