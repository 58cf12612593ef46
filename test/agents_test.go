//go:build agents

package test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/test/fakeanthropic"
)

// The agent tests drive real coding agents, installed from npm into test/agents (make
// test-agents runs npm ci there), headless against gavel in front of scripted fake
// upstreams. They are behind the "agents" build tag because they need node and the
// agents' packages; under CI=true a missing agent is a failure, never a skip.

// agentBin returns the path of an agent's executable in test/agents/node_modules/.bin.
func agentBin(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("agents", "node_modules", ".bin", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (run npm ci in test/agents): %v", name, err)
		}
		t.Skipf("%s is not installed (run npm ci in test/agents; CI=true makes this a failure)", name)
	}
	return p
}

// Claude Code, headless (claude -p), with ANTHROPIC_BASE_URL at gavel and a gavel key:
// the scripted upstream answers its first request with a tool call (Read a file in the
// working directory), which Claude Code runs and sends back as a tool_result, and its
// second with the final answer. Claude Code asks for its own model name
// (claude-opus-5-5), which the bundle routes by data (an alias) to the Anthropic provider.
func TestClaudeCodeHeadlessThroughGavel(t *testing.T) {
	bin := agentBin(t, "claude")
	r := newMessagesRig(t, nil)
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "answer.txt"), []byte("the magic word is gavel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.c.Script("claude-sonnet-4-5",
		fakeanthropic.Step{Reply: "Let me read the file.", ToolCalls: []fakeanthropic.ToolCall{{ID: "toolu_read1", Name: "Read",
			Arguments: `{"file_path":"` + filepath.Join(work, "answer.txt") + `"}`}}},
		fakeanthropic.Step{Reply: "The file says: the magic word is gavel."},
	)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-p", "What does answer.txt say?", "--output-format", "text")
	cmd.Dir = work
	home := t.TempDir()
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"ANTHROPIC_BASE_URL=" + r.g.URL,
		"ANTHROPIC_API_KEY=" + r.key,
		"DISABLE_TELEMETRY=1",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
		"DISABLE_AUTOUPDATER=1",
		"DISABLE_ERROR_REPORTING=1",
	}
	out, err := cmd.CombinedOutput()
	t.Logf("claude -p output:\n%s", out)
	if err != nil {
		for _, rec := range r.c.Requests() {
			t.Logf("upstream got %s %s model %s: %.600s", rec.Method, rec.Path, rec.Model, rec.Raw)
		}
		b, _ := os.ReadFile(r.logFile)
		t.Logf("decisions:\n%.3000s", b)
		t.Fatalf("claude -p: %v", err)
	}
	if !strings.Contains(string(out), "the magic word is gavel") {
		t.Errorf("the agent did not finish with the scripted answer")
	}

	// The upstream saw the tool call answered: the second request carries the file's text
	// in a tool_result for toolu_read1.
	var main []fakeanthropic.Recorded
	for _, rec := range r.c.Requests() {
		if rec.Path == "/v1/messages" && rec.Model == "claude-sonnet-4-5" {
			main = append(main, rec)
		}
	}
	if len(main) < 2 {
		t.Fatalf("upstream saw %d message requests, want the tool call's and the answer's", len(main))
	}
	last := string(main[len(main)-1].Raw)
	if !strings.Contains(last, `"tool_use_id":"toolu_read1"`) || !strings.Contains(last, "the magic word is gavel") {
		t.Errorf("the last request carries no tool result: %.2000s", last)
	}

	// gavel decided both requests: two decision log lines for Claude Code's model on the
	// messages endpoint, both allowed and routed to the Anthropic provider.
	lines := waitDecisionLines(t, r.logFile, 2)
	decided := 0
	for _, l := range lines {
		if strings.Contains(l, `"endpoint":"messages"`) && strings.Contains(l, `"model":"claude-opus-5-5"`) && strings.Contains(l, `"route":"claude/claude-sonnet-4-5"`) {
			decided++
		}
	}
	if decided < 2 {
		t.Errorf("%d decisions logged for claude-opus-5-5, want 2:\n%s", decided, strings.Join(lines, "\n"))
	}
}
