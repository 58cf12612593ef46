package policy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
)

// moduleBundle is a bundle of one policy module and data.gavel.
func moduleBundle(rego string, data map[string]any) *bundle.Bundle {
	b := &bundle.Bundle{Data: map[string]any{"gavel": data},
		Modules: []bundle.ModuleFile{{Path: "p.rego", Raw: []byte(rego), Parsed: ast.MustParseModule(rego)}}}
	b.Manifest.Init()
	return b
}

const allowAll = `package gavel

decision := {"allow": true, "targets": [{"provider": "p", "model": "m"}]}
`

func TestPrepareRefusesABundleThatCannotDecide(t *testing.T) {
	catalog := map[string]any{
		"catalog": map[string]any{"p/m": map[string]any{"provider": "p", "model": "m"}},
		"aliases": map[string]any{"chat": map[string]any{"candidates": []string{"p/m"}}},
	}
	tests := []struct {
		name string
		rego string
		// want is a piece of the error; "" means the bundle is accepted.
		want string
	}{
		{"decides everything", allowAll, ""},
		{"a denial is a decision", "package gavel\n\ndecision := {\"allow\": false}\n", ""},
		{"typo in the rule name", strings.Replace(allowAll, "decision :=", "decisions :=", 1), `chat request for model "chat"`},
		{"unknown decision field", strings.Replace(allowAll, `"allow": true,`, `"allow": true, "colour": "red",`, 1), `unknown field "colour"`},
		{"undefined for embeddings", `package gavel

decision := {"allow": true, "targets": [{"provider": "p", "model": "m"}]} if input.request.endpoint == "chat"
`, `embeddings request for model "chat"`},
		{"undefined for streams", `package gavel

decision := {"allow": true, "targets": [{"provider": "p", "model": "m"}]} if not input.request.stream
`, `streamed chat request`},
		{"undefined for an unknown model", `package gavel

decision := {"allow": true, "targets": [{"provider": "p", "model": "m"}]} if data.gavel.aliases[input.request.model]
decision := {"allow": true, "targets": [{"provider": "p", "model": "m"}]} if data.gavel.catalog[input.request.model]
`, checkModel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Prepare(context.Background(), moduleBundle(tc.rego, catalog), "test")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Prepare: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrCannotDecide) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Prepare error = %v, want ErrCannotDecide naming %s", err, tc.want)
			}
		})
	}
}

func TestActivateKeepsTheRevisionThatDecides(t *testing.T) {
	e := New()
	if _, err := e.Activate(context.Background(), moduleBundle(allowAll, map[string]any{}), "good"); err != nil {
		t.Fatal(err)
	}
	bad := moduleBundle(strings.Replace(allowAll, "decision :=", "decisions :=", 1), map[string]any{})
	if _, err := e.Activate(context.Background(), bad, "typo"); !errors.Is(err, ErrCannotDecide) {
		t.Fatalf("Activate = %v, want ErrCannotDecide", err)
	}
	if e.Active().Source != "good" {
		t.Fatalf("active revision is %q, want the one that decides", e.Active().Source)
	}
}

// The embedded default library decides every representative input.
func TestEmbeddedBundlePassesTheCheck(t *testing.T) {
	rev := mustEmbedded(t)
	if err := rev.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(rev.CheckInputs()); n < 3*(len(rev.Data.Aliases)+1) {
		t.Fatalf("%d check inputs for %d aliases", n, len(rev.Data.Aliases))
	}
}

// A drill runs only where the operator enabled faults: with them disabled the engine
// refuses a bundle that shows it drills (the previous revision keeps serving) and a
// decision with a fault per request; enabled, both pass.
func TestActivateGatesFaults(t *testing.T) {
	faulting := strings.Replace(allowAll, `"allow": true,`, `"allow": true, "fault": {"kind": "error"},`, 1)
	sampled := "package gavel\n\nimport rego.v1\n\ndecision := d if {\n\tinput.request.id == \"live\"\n\td := {\"allow\": true, \"targets\": [{\"provider\": \"p\", \"model\": \"m\"}], \"fault\": {\"kind\": \"timeout\"}}\n} else := {\"allow\": true, \"targets\": [{\"provider\": \"p\", \"model\": \"m\"}]}\n"
	drills := map[string]any{"faults": []any{map[string]any{"alias": "chat", "kind": "error", "sample_pct": 10}}}
	tests := []struct {
		name    string
		b       *bundle.Bundle
		enabled bool
		want    string // a piece of the activation error; "" means activated
	}{
		{"faulting decision, disabled", moduleBundle(faulting, map[string]any{}), false, `the decision for a chat request for model "gavel-check/no-such-model" carries fault`},
		{"drills in data, disabled", moduleBundle(allowAll, drills), false, "data.gavel.faults lists 1 drill(s)"},
		{"faulting decision, enabled", moduleBundle(faulting, map[string]any{}), true, ""},
		{"drills in data, enabled", moduleBundle(allowAll, drills), true, ""},
		{"sampled drill escapes the check", moduleBundle(sampled, map[string]any{}), false, ""},
		{"no drill", moduleBundle(allowAll, map[string]any{}), false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := New()
			e.EnableFaults(tc.enabled)
			if _, err := e.Activate(context.Background(), moduleBundle(allowAll, map[string]any{}), "first"); err != nil {
				t.Fatal(err)
			}
			_, err := e.Activate(context.Background(), tc.b, "candidate")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
			} else {
				if err == nil || !errors.Is(err, ErrFaultsDisabled) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want ErrFaultsDisabled containing %q", err, tc.want)
				}
				if e.Active().Source != "first" {
					t.Fatal("the refused bundle replaced the serving one")
				}
				return
			}
			// Per request: the revision admits a faulted decision only when enabled.
			in := Input{Request: Request{ID: "live", Endpoint: "chat", Model: "chat", Messages: []Message{{Role: "user", Text: "hi"}}}}
			d, err := e.Active().Decide(context.Background(), in.Value())
			switch {
			case tc.name == "sampled drill escapes the check":
				if !errors.Is(err, ErrInvalidDecision) || !errors.Is(err, ErrFaultsDisabled) {
					t.Fatalf("faulted decision with faults disabled: err = %v", err)
				}
			case err != nil:
				t.Fatal(err)
			case tc.enabled && tc.name == "faulting decision, enabled" && (d.Fault == nil || d.Fault.Kind != "error"):
				t.Fatalf("fault = %+v", d.Fault)
			}
		})
	}
}
