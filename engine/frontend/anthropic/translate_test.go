package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// Each Messages request in testdata/requests translates to the canonical request beside it.
func TestToCanonicalGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/requests/*.anthropic.json")
	if len(files) == 0 {
		t.Fatal("no golden requests")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".anthropic.json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			req, err := Decode(body, false)
			if err != nil {
				t.Fatal(err)
			}
			canon, err := ToCanonical(req)
			if err != nil {
				t.Fatal(err)
			}
			out, err := json.MarshalIndent(canon, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "requests/"+name+".canonical.json", append(out, '\n'))
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct{ body, param string }{
		{`{"max_tokens":5,"messages":[{"role":"user","content":"x"}]}`, "model"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}]}`, "max_tokens"},
		{`{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]}`, "max_tokens"},
		{`{"model":"m","max_tokens":5,"messages":[]}`, "messages"},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]}`, "messages.0.role"},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":""}]}`, "messages.0.content"},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"text":"x"}]}]}`, "messages.0.content.0.type"},
		{`{"model":"m","max_tokens":5,"temperature":1.5,"messages":[{"role":"user","content":"x"}]}`, "temperature"},
		{`{"model":"m","max_tokens":5,"tool_choice":{"type":"tool"},"messages":[{"role":"user","content":"x"}]}`, "tool_choice.name"},
		{`{"model":"m","max_tokens":5,"thinking":{"type":"enabled","budget_tokens":10},"messages":[{"role":"user","content":"x"}]}`, "thinking.budget_tokens"},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":7}]}`, ""},
		{`[]`, ""},
	} {
		_, err := Decode([]byte(tc.body), false)
		var re *RequestError
		if !errors.As(err, &re) || re.Param != tc.param {
			t.Errorf("%s: err = %v, want a RequestError on %q", tc.body, err, tc.param)
		}
	}
	// count_tokens takes no max_tokens.
	if _, err := Decode([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}]}`), true); err != nil {
		t.Errorf("count_tokens body: %v", err)
	}
}

func TestToCanonicalRejectsMisplacedBlocks(t *testing.T) {
	for _, body := range []string{
		`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_use","id":"a","name":"b","input":{}}]}]}`,
		`{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_result","tool_use_id":"a"}]}]}`,
		`{"model":"m","max_tokens":5,"system":[{"type":"image"}],"messages":[{"role":"user","content":"x"}]}`,
	} {
		req, err := Decode([]byte(body), false)
		if err == nil {
			_, err = ToCanonical(req)
		}
		var re *RequestError
		if !errors.As(err, &re) {
			t.Errorf("%s: err = %v, want a RequestError", body, err)
		}
	}
}

// Sources only Anthropic reads are passed through to it and left out of a translation,
// not refused: the target may well be Anthropic.
func TestToCanonicalLeavesOutAnthropicOnlySources(t *testing.T) {
	req, err := Decode([]byte(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"see"},`+
		`{"type":"image","source":{"type":"file","file_id":"f"}},{"type":"document","source":{"type":"url","url":"https://x/a.pdf"}}]}]}`), false)
	if err != nil {
		t.Fatal(err)
	}
	canon, err := ToCanonical(req)
	if err != nil || len(canon.Messages) != 1 || canon.Messages[0].Content.String() != "see" {
		t.Fatalf("%v %+v", err, canon)
	}
}

func TestFromCanonical(t *testing.T) {
	r := &adapters.ChatResponse{ID: "chatcmpl-1", Model: "gpt-x", Choices: []adapters.Choice{{
		Message: adapters.Message{Role: "assistant", Content: adapters.TextContent("Looking."),
			ToolCalls: []adapters.ToolCall{{ID: "call_1", Type: "function", Function: adapters.FunctionCall{Name: "Read", Arguments: `{"file_path":"a"}`}}}},
		FinishReason: adapters.FinishToolCalls}},
		Usage: &adapters.Usage{PromptTokens: 120, CompletionTokens: 7, PromptTokensDetails: &adapters.PromptTokensDetails{CachedTokens: 100}}}
	out, err := json.Marshal(FromCanonical(r))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"msg_1","type":"message","role":"assistant","model":"gpt-x","content":[{"type":"text","text":"Looking."},{"type":"tool_use","id":"call_1","name":"Read","input":{"file_path":"a"}}],` +
		`"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":20,"cache_creation_input_tokens":0,"cache_read_input_tokens":100,"output_tokens":7}}`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
}

// FuzzDecode: no body makes the parser or the translation panic, and whatever they accept
// translates to a canonical request that encodes.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/requests/*.anthropic.json")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","data":"d"}}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, count := range []bool{false, true} {
			req, err := Decode(body, count)
			if err != nil {
				var re *RequestError
				if !errors.As(err, &re) {
					t.Fatalf("Decode error %T is not a RequestError: %v", err, err)
				}
				continue
			}
			canon, err := ToCanonical(req)
			if err != nil {
				var re *RequestError
				if !errors.As(err, &re) {
					t.Fatalf("ToCanonical error %T: %v", err, err)
				}
				continue
			}
			if canon.Model != req.Model || len(canon.Messages) == 0 && len(req.Messages) > 0 && req.System == nil && hasText(req) {
				t.Fatalf("lost the model or every message: %+v", canon)
			}
			if _, err := json.Marshal(canon); err != nil {
				t.Fatalf("canonical request does not encode: %v", err)
			}
		}
	})
}

// hasText reports whether a request has a plain-text message, which always translates.
func hasText(r *Request) bool {
	for _, m := range r.Messages {
		if m.Content.Blocks == nil && m.Content.String != "" {
			return true
		}
	}
	return false
}
