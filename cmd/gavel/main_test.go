package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/gavel-gw/gavel/engine/policy"
)

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	input := filepath.Join(dir, "in.json")
	os.WriteFile(input, []byte(`{"request":{"model":"fast"},"providers":{"mock":{"healthy":true,"circuit":"closed","models":{}}}}`), 0o644)
	unknown := filepath.Join(dir, "unknown.json")
	os.WriteFile(unknown, []byte(`{"request":{"model":"nope"},"providers":{}}`), 0o644)
	// A policy whose own tests pass but whose decision is undefined for embeddings: the
	// bundle must not pass `policy test`.
	chatOnly := filepath.Join(dir, "chatonly")
	os.MkdirAll(chatOnly, 0o755)
	os.WriteFile(filepath.Join(chatOnly, "p.rego"), []byte("package gavel\n\ndecision := {\"allow\": false} if input.request.endpoint == \"chat\"\n"), 0o644)
	os.WriteFile(filepath.Join(chatOnly, "p_test.rego"), []byte("package gavel_test\n\nimport data.gavel\n\ntest_chat_denied if not gavel.decision.allow with input as {\"request\": {\"endpoint\": \"chat\"}}\n"), 0o644)
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"no args", nil, 2, ""},
		{"unknown", []string{"frobnicate"}, 2, ""},
		{"version", []string{"version"}, 0, "gavel"},
		{"keys hash", []string{"keys", "hash", "abc"}, 0, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"keys new", []string{"keys", "new", "--team", "search"}, 0, "team: search"},
		{"keys new admin", []string{"keys", "new", "--role", "admin"}, 0, "role: admin"},
		{"keys new bad role", []string{"keys", "new", "--role", "root"}, 1, ""},
		{"policy eval", []string{"policy", "eval", "--input", input}, 0, `"mock/mock-small"`},
		{"policy eval deny", []string{"policy", "eval", "--input", unknown}, 0, `"model_not_found"`},
		{"policy eval needs input", []string{"policy", "eval"}, 1, ""},
		{"policy test", []string{"policy", "test", "--coverage", "--threshold", "90", "../../policies", "../../bundles"}, 0, "CHECK: the bundle decides all"},
		{"policy test refuses a bundle that cannot decide", []string{"policy", "test", chatOnly}, 1, "PASS: 1/1"},
		{"serve bad flag", []string{"serve", "--nope"}, 1, ""},
		{"serve bad config", []string{"serve", "--config", filepath.Join(dir, "missing.yaml")}, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tc.out) {
				t.Errorf("stdout lacks %q: %s", tc.out, out.String())
			}
		})
	}
}

func TestBundleCommands(t *testing.T) {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	keyFile := filepath.Join(dir, "key.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	signed, unsigned, resigned := filepath.Join(dir, "signed.tar.gz"), filepath.Join(dir, "unsigned.tar.gz"), filepath.Join(dir, "resigned.tar.gz")
	src := []string{"../../policies", "../../bundles"}

	verifies := func(path, alg, key string) error {
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		vc := bundle.NewVerificationConfig(map[string]*bundle.KeyConfig{"default": {Key: key, Algorithm: alg}}, "default", "", nil)
		_, err = bundle.NewReader(bytes.NewReader(raw)).WithBundleVerificationConfig(vc).Read()
		return err
	}
	tests := []struct {
		name  string
		args  []string
		code  int
		out   string
		check func(t *testing.T)
	}{
		{"build signed", append([]string{"bundle", "build", "--revision", "cli-1", "-o", signed, "--signing-key", keyFile}, src...), 0,
			"revision cli-1, 11 modules, signed: true", func(t *testing.T) {
				if err := verifies(signed, "RS256", pub); err != nil {
					t.Error(err)
				}
			}},
		{"build unsigned", append([]string{"bundle", "build", "-o", unsigned}, src...), 0, "revision default-1", func(t *testing.T) {
			if _, err := policy.LoadPath(unsigned); err != nil {
				t.Error(err)
			}
		}},
		{"sign with a secret", []string{"bundle", "sign", "--signing-secret", "s3cret", "-o", resigned, unsigned}, 0, "signed " + resigned, func(t *testing.T) {
			if err := verifies(resigned, "HS256", "s3cret"); err != nil {
				t.Error(err)
			}
			if err := verifies(unsigned, "HS256", "s3cret"); err == nil {
				t.Error("-o rewrote the input")
			}
		}},
		{"sign in place", []string{"bundle", "sign", "--signing-key", keyFile, resigned}, 0, "", func(t *testing.T) {
			if err := verifies(resigned, "RS256", pub); err != nil {
				t.Error(err)
			}
		}},
		{"build default dirs missing here", []string{"bundle", "build", "-o", filepath.Join(dir, "x.tar.gz")}, 1, "", nil},
		{"build bad algorithm", append([]string{"bundle", "build", "-o", filepath.Join(dir, "y.tar.gz"), "--signing-key", keyFile, "--signing-alg", "HS256"}, src...), 1, "", nil},
		{"sign needs a key", []string{"bundle", "sign", unsigned}, 1, "", nil},
		{"sign needs one file", []string{"bundle", "sign", "--signing-secret", "x"}, 1, "", nil},
		{"unknown subcommand", []string{"bundle", "push"}, 1, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tc.args, &out, &errb); code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tc.out) {
				t.Errorf("stdout lacks %q: %s", tc.out, out.String())
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}

func TestPolicyReplayCommand(t *testing.T) {
	dir := t.TempDir()
	input := `{"request":{"id":"r","endpoint":"chat","model":"fast"},"providers":{"mock":{"healthy":true,"circuit":"closed","models":{}}}}`
	inFile := filepath.Join(dir, "in.json")
	os.WriteFile(inFile, []byte(input), 0o644)
	var out, errb bytes.Buffer
	if code := run([]string{"policy", "eval", "--input", inFile}, &out, &errb); code != 0 {
		t.Fatalf("policy eval: %s", errb.String())
	}
	var eval struct{ Decision json.RawMessage }
	if err := json.Unmarshal(out.Bytes(), &eval); err != nil {
		t.Fatal(err)
	}
	var decision bytes.Buffer
	json.Compact(&decision, eval.Decision)
	// d-same logged what the embedded policy decides; d-moved logged another route and
	// d-denied a denial, as if an older policy had decided them.
	log := strings.Join([]string{
		fmt.Sprintf(`{"decision_id":"d-same","input":%s,"result":%s}`, input, decision.String()),
		fmt.Sprintf(`{"decision_id":"d-moved","input":%s,"result":{"allow":true,"targets":[{"provider":"openai","model":"gpt-4o"}]}}`, input),
		fmt.Sprintf(`{"decision_id":"d-denied","input":%s,"result":{"allow":false,"deny":{"status":429,"code":"budget_exceeded","message":"m"}}}`, input),
		`{"decision_id":"d-none","input":null,"result":null}`,
	}, "\n") + "\n"
	logFile := filepath.Join(dir, "decisions.jsonl")
	os.WriteFile(logFile, []byte(log), 0o644)

	tests := []struct {
		name string
		args []string
		code int
	}{
		{"report", []string{"policy", "eval", "--replay", logFile}, 0},
		{"fail on change", []string{"policy", "eval", "--replay", logFile, "--fail-on-change"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tc.args, &out, &errb); code != tc.code {
				t.Fatalf("exit %d, want %d: %s %s", code, tc.code, out.String(), errb.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 3 || !strings.HasPrefix(lines[0], "changed d-moved: allow openai/gpt-4o -> allow mock/") ||
				!strings.HasPrefix(lines[1], "changed d-denied: deny budget_exceeded -> allow mock/") ||
				!strings.Contains(lines[2], "replayed 3 decisions against revision default-1: 2 would change, 1 unchanged, 1 skipped") {
				t.Errorf("output:\n%s", out.String())
			}
		})
	}
	if code := run([]string{"policy", "eval", "--replay", filepath.Join(dir, "missing.jsonl")}, &out, &errb); code != 1 {
		t.Errorf("missing log: exit %d", code)
	}
}

// --policy policies alone holds no data: evaluated as is, every model would be unknown.
// gavel loads the bundles/ beside it, or says the candidate has no data.
func TestPolicyFlagData(t *testing.T) {
	dir := t.TempDir()
	input := filepath.Join(dir, "in.json")
	os.WriteFile(input, []byte(`{"request":{"model":"fast"},"providers":{"mock":{"healthy":true,"circuit":"closed","models":{}}}}`), 0o644)
	lone := filepath.Join(dir, "lone")
	os.MkdirAll(lone, 0o755)
	os.WriteFile(filepath.Join(lone, "p.rego"), []byte("package gavel\n\ndecision := {\"allow\": false, \"deny\": {\"status\": 403, \"code\": \"x\", \"message\": \"m\"}}\n"), 0o644)
	tests := []struct {
		name           string
		policy         []string
		stdout, stderr string
	}{
		{"policies alone loads bundles beside", []string{"../../policies"}, `"mock/mock-small"`, "carries no data; loading the data in ../../bundles beside it"},
		{"both directories", []string{"../../policies", "../../bundles"}, `"mock/mock-small"`, ""},
		{"no data anywhere", []string{lone}, `"code": "x"`, "carries no data (data.gavel is empty) and there is no bundles/ beside it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"policy", "eval", "--input", input}
			for _, p := range tc.policy {
				args = append(args, "--policy", p)
			}
			var out, errb bytes.Buffer
			if code := run(args, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			if !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout lacks %q: %s", tc.stdout, out.String())
			}
			if (tc.stderr == "") != (errb.Len() == 0) || !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr %q, want %q", errb.String(), tc.stderr)
			}
		})
	}
}

// The impact report on the shipped sample log (docs/examples/decisions.jsonl) for the
// shipped candidate (docs/examples/candidate: support tasks to Claude, IBANs blocked,
// premium models for gold and bronze only): the numbers docs/governance.md shows.
func TestPolicyDiffSample(t *testing.T) {
	base := []string{"policy", "diff", "--replay", "../../docs/examples/decisions.jsonl", "--policy", "../../policies", "--policy", "../../docs/examples/candidate"}
	var out, errb bytes.Buffer
	if code := run(append(base, "--format", "json"), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var im policy.Impact
	if err := json.Unmarshal(out.Bytes(), &im); err != nil {
		t.Fatal(err)
	}
	if im.Replayed != 24 || im.Changed != 12 || im.NewlyDenied != 5 || im.NewlyAllowed != 0 || im.Rerouted != 6 ||
		im.SpendBeforeMUSD != 2391 || im.SpendAfterMUSD != 2387 {
		t.Errorf("impact = %d replayed, %d changed, %d newly denied, %d newly allowed, %d rerouted, spend %d -> %d",
			im.Replayed, im.Changed, im.NewlyDenied, im.NewlyAllowed, im.Rerouted, im.SpendBeforeMUSD, im.SpendAfterMUSD)
	}
	teams := map[string]policy.Group{}
	for _, g := range im.Groups["team"] {
		teams[g.Name] = g
	}
	want := map[string]policy.Group{
		"research": {Name: "research", Requests: 8, Changed: 5, NewlyDenied: 4, SpendBeforeMUSD: 897, SpendAfterMUSD: 33},
		"support":  {Name: "support", Requests: 8, Changed: 7, NewlyDenied: 1, SpendBeforeMUSD: 763, SpendAfterMUSD: 1623},
		"search":   {Name: "search", Requests: 8, SpendBeforeMUSD: 731, SpendAfterMUSD: 731},
	}
	for name, w := range want {
		if teams[name] != w {
			t.Errorf("team %s = %+v, want %+v", name, teams[name], w)
		}
	}
	if im.Fields["targets"] != 11 || im.Fields["allow"] != 5 || len(im.Moves) != 3 || im.Moves[0].Alias != "fast" || im.Moves[0].Requests != 3 {
		t.Errorf("fields %v, moves %+v", im.Fields, im.Moves)
	}

	// The markdown renders the same numbers as tables.
	out.Reset()
	if code := run(append(base, "--format", "md"), &out, &errb); code != 0 {
		t.Fatalf("md: exit %d", code)
	}
	for _, line := range []string{
		"| 24 | 12 | 5 | 0 | 6 | $0.002391 | $0.002387 | -0.2% |",
		"| `research` | 8 | 5 | 4 | 0 | $0.000897 | $0.000033 | -$0.000864 |",
		"| `support` | 8 | 7 | 1 | 0 | $0.000763 | $0.001623 | +$0.00086 |",
		"| `fast`: `openai/gpt-4o-mini` → `anthropic/claude-sonnet-4-5` | 3 |",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("markdown lacks %q:\n%s", line, out.String())
		}
	}

	// The gates.
	gates := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--max-newly-denied", "5"}, 0, ""},
		{[]string{"--max-newly-denied", "4"}, 1, "5 requests would be newly denied (over 4)"},
		{[]string{"--max-spend-increase", "0"}, 0, ""},
		{[]string{"--fail-on-route-change", "cheap"}, 0, ""},
		{[]string{"--fail-on-route-change", "fast", "--fail-on-route-change", "gpt-4o"}, 1, "3 requests for fast would change route"},
		{[]string{"--format", "html"}, 1, "want text, md or json"},
	}
	for _, g := range gates {
		var o, e bytes.Buffer
		if code := run(append(base, g.args...), &o, &e); code != g.code || !strings.Contains(e.String(), g.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", g.args, code, e.String(), g.code, g.msg)
		}
	}
	// A candidate that raises prices fails the spend gate.
	dear := t.TempDir()
	raw, _ := os.ReadFile("../../docs/examples/candidate/gavel/data.json")
	var data map[string]any
	json.Unmarshal(raw, &data)
	for _, c := range data["catalog"].(map[string]any) {
		p := c.(map[string]any)["price"].(map[string]any)
		p["output_musd_per_mtok"] = p["output_musd_per_mtok"].(float64) * 2
	}
	os.MkdirAll(filepath.Join(dear, "gavel"), 0o755)
	raw, _ = json.Marshal(data)
	os.WriteFile(filepath.Join(dear, "gavel", "data.json"), raw, 0o644)
	var o, e bytes.Buffer
	if code := run([]string{"policy", "diff", "--replay", "../../docs/examples/decisions.jsonl", "--policy", "../../policies", "--policy", dear, "--max-spend-increase", "10"}, &o, &e); code != 1 || !strings.Contains(e.String(), "spend would grow by") {
		t.Errorf("dearer candidate: exit %d, %s", code, e.String())
	}
}

// policy fmt and policy check: OPA's formatter and strict compiler through gavel, and the
// activation check on directories.
func TestPolicyFmtAndCheck(t *testing.T) {
	dir := t.TempDir()
	messy := filepath.Join(dir, "messy")
	os.MkdirAll(messy, 0o755)
	os.WriteFile(filepath.Join(messy, "p.rego"), []byte("package gavel\nimport rego.v1\ndecision := {\"allow\": false}   if { true }\n"), 0o644)
	unused := filepath.Join(dir, "unused")
	os.MkdirAll(unused, 0o755)
	os.WriteFile(filepath.Join(unused, "p.rego"), []byte("package gavel\n\nimport data.other\n\ndecision := {\"allow\": false}\n"), 0o644)
	undecided := filepath.Join(dir, "undecided")
	os.MkdirAll(undecided, 0o755)
	os.WriteFile(filepath.Join(undecided, "p.rego"), []byte("package gavel\n\ndecision := {\"allow\": false} if input.request.endpoint == \"chat\"\n"), 0o644)
	tests := []struct {
		name     string
		args     []string
		code     int
		out, err string
	}{
		{"formatted library", []string{"policy", "fmt", "-l", "--fail", "../../policies"}, 0, "", ""},
		{"lists the messy file", []string{"policy", "fmt", "-l", "--fail", messy}, 1, "messy/p.rego", "1 file(s) not formatted"},
		{"prints the formatted source", []string{"policy", "fmt", messy}, 0, "decision := {\"allow\": false}\n", ""},
		{"library checks", []string{"policy", "check", "../../policies", "../../bundles"}, 0, "CHECK: the bundle decides all", ""},
		{"strict: unused import", []string{"policy", "check", unused}, 1, "", "import data.other unused"},
		{"not strict", []string{"policy", "check", "--strict=false", unused}, 0, "strict: false", ""},
		{"activation check", []string{"policy", "check", undecided}, 1, "modules compile", "cannot decide"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tc.args, &out, &errb); code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.err) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out.String(), errb.String(), tc.code, tc.out, tc.err)
			}
		})
	}
	// -w rewrites, after which the file is formatted.
	var out, errb bytes.Buffer
	if code := run([]string{"policy", "fmt", "-w", messy}, &out, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	if code := run([]string{"policy", "fmt", "-l", "--fail", messy}, &out, &errb); code != 0 {
		t.Errorf("after -w: exit %d %s", code, errb.String())
	}
}
