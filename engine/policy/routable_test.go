package policy

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// /v1/models lists what the policy would route for this caller: a name the policy denies
// the caller, or routes nowhere, is not listed.
func TestRoutableAsksThePolicyForTheCaller(t *testing.T) {
	const rego = `package gavel

import rego.v1

plan := {"routes": {"chat": {}, "emb": {}, "multi": {}, "down": {}}}

decision := {"allow": false} if input.caller.team == "blocked"

else := {"allow": true, "targets": [{"provider": "p", "model": "m"}]} if {
	input.request.model == "chat"
	input.request.endpoint == "chat"
} else := {"allow": true, "targets": [{"provider": "p", "model": "e"}]} if {
	input.request.model == "emb"
	input.request.endpoint == "embeddings"
} else := {"allow": true, "targets": [{"provider": "p", "model": "m"}, {"provider": "q", "model": "m"}]} if {
	input.request.model == "multi"
} else := {"allow": false, "deny": {"status": 503, "code": "no_available_target", "message": "down"}}
`
	rev, err := New().Activate(context.Background(), moduleBundle(rego, map[string]any{}), "test")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := rev.Plan(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	shared := &Shared{Rev: rev, Providers: emptyObject, Plan: plan}
	for _, tc := range []struct {
		team string
		want []Routable
	}{
		{"search", []Routable{{ID: "chat", OwnedBy: "p"}, {ID: "emb", OwnedBy: "p"}, {ID: "multi", OwnedBy: "gavel"}}},
		{"blocked", nil},
	} {
		caller := CallerValue(KeyRecord{KeyID: "k", Team: tc.team})
		got, err := rev.Routable(context.Background(), shared, caller, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("team %s: %v, want %v", tc.team, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("team %s: %v, want %v", tc.team, got, tc.want)
			}
		}
	}

	// Without a plan, the data's aliases and catalog ids are asked.
	var noPlan ast.Value
	if names := rev.routeNames(noPlan); len(names) != 0 {
		t.Errorf("names without plan or data = %v", names)
	}
}
