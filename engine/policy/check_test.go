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
