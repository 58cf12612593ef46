package policy

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/engine/decision"
)

func TestAliasOptionsInData(t *testing.T) {
	for _, tc := range []struct {
		name    string
		alias   map[string]any
		wantErr string
	}{
		{"off", map[string]any{"candidates": []string{"a/m"}}, ""},
		{"on", map[string]any{"candidates": []string{"a/m"}, "hedge_ms": 300, "hedge_max": 2}, ""},
		{"string", map[string]any{"candidates": []string{"a/m"}, "hedge_ms": "300"}, "hedge_ms"},
		{"negative", map[string]any{"candidates": []string{"a/m"}, "hedge_ms": -1}, "hedge_ms must be"},
		{"too many", map[string]any{"candidates": []string{"a/m"}, "hedge_ms": 100, "hedge_max": 9}, "hedge_max"},
		{"midstream continue", map[string]any{"candidates": []string{"a/m"}, "midstream": "continue"}, ""},
		{"midstream error", map[string]any{"candidates": []string{"a/m"}, "midstream": "error"}, ""},
		{"midstream typo", map[string]any{"candidates": []string{"a/m"}, "midstream": "contine"}, `midstream must be "error" or "continue"`},
		{"midstream not string", map[string]any{"candidates": []string{"a/m"}, "midstream": true}, "midstream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseData(map[string]any{"gavel": map[string]any{"aliases": map[string]any{"chat": tc.alias}}})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestShadowBudgetsInData(t *testing.T) {
	budget := func(scope, id string) map[string]any {
		b := map[string]any{"name": "b-" + scope + id, "scope": scope, "period": "day", "limit_musd": 100}
		if id != "" {
			b["id"] = id
		}
		return b
	}
	tests := []struct {
		name    string
		budgets []any
		wantErr string
		exp     string
		want    []string
	}{
		{"own beats any", []any{budget("shadow", "*"), budget("shadow", "e1"), budget("team", "")}, "", "e1", []string{"b-shadowe1"}},
		{"any covers the rest", []any{budget("shadow", "*"), budget("shadow", "e1")}, "", "e2", []string{"b-shadow*"}},
		{"none", []any{budget("team", "")}, "", "e1", nil},
		{"shadow needs an id", []any{budget("shadow", "")}, "id (an experiment name", "", nil},
		{"other scopes take no id", []any{budget("team", "x")}, "not allowed with any other scope", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := parseData(map[string]any{"gavel": map[string]any{"budgets": tc.budgets}})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range d.ShadowBudgets(tc.exp) {
				got = append(got, b.Name)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("ShadowBudgets(%q) = %v, want %v", tc.exp, got, tc.want)
			}
		})
	}
}

func TestDataChain(t *testing.T) {
	d := &Data{
		Catalog: map[string]CatalogEntry{
			"a/m1": {Provider: "a", Model: "m1", Fallbacks: []string{"b/m1", "gone/x"}},
			"b/m1": {Provider: "b", Model: "m1"},
		},
		Aliases: map[string]Alias{"chat": {Candidates: []string{"b/m1", "a/m1"}}},
	}
	for _, tc := range []struct {
		model string
		want  []decision.Target
	}{
		{"chat", []decision.Target{{Provider: "b", Model: "m1"}, {Provider: "a", Model: "m1"}}},
		{"a/m1", []decision.Target{{Provider: "a", Model: "m1"}, {Provider: "b", Model: "m1"}}},
		{"b/m1", []decision.Target{{Provider: "b", Model: "m1"}}},
		{"nope", []decision.Target{}},
	} {
		if got := d.Chain(tc.model); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Chain(%q) = %v, want %v", tc.model, got, tc.want)
		}
	}
}

func TestKeyRoleInData(t *testing.T) {
	for _, tc := range []struct {
		rec     map[string]any
		want    string
		wantErr bool
	}{
		{map[string]any{"key_id": "a", "admin": true}, RoleAdmin, false},
		{map[string]any{"key_id": "a", "role": "admin"}, RoleAdmin, false},
		{map[string]any{"key_id": "v", "role": "viewer"}, RoleViewer, false},
		{map[string]any{"key_id": "n"}, "", false},
		{map[string]any{"key_id": "x", "role": "root"}, "", true},
	} {
		d, err := parseData(map[string]any{"gavel": map[string]any{"keys": map[string]any{strings.Repeat("ab", 32): tc.rec}}})
		if tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), "role") {
				t.Errorf("%v: err = %v, want a role error", tc.rec, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.rec, err)
		} else if got := d.Keys[strings.Repeat("ab", 32)].EffectiveRole(); got != tc.want {
			t.Errorf("%v: role %q, want %q", tc.rec, got, tc.want)
		}
	}
}
