package policytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/gavel-gw/gavel/docs/schema"
	"github.com/gavel-gw/gavel/engine/policy"
)

func inputValidator(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema.Input))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("input.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("input.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, in map[string]any) error {
	t.Helper()
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(doc)
}

func defaultBundleGenerator(t *testing.T, seed uint64) *generator {
	t.Helper()
	b, err := policy.Build(context.Background(), []string{"../../policies", "../../bundles"}, "")
	if err != nil {
		t.Fatal(err)
	}
	return newGenerator(b, seed)
}

// Every generated input, and every step its shrinking takes, is an input gavel could
// send: it validates against docs/schema/input.json.
func TestGeneratedInputsMatchSchema(t *testing.T) {
	s := inputValidator(t)
	bad := defaultBundleGenerator(t, 1).input()
	delete(bad["request"].(map[string]any), "turns")
	if validate(t, s, bad) == nil {
		t.Fatal("the validator accepts an input without request.turns")
	}
	for _, seed := range []uint64{1, 2, 3} {
		g := defaultBundleGenerator(t, seed)
		for i := 0; i < 300; i++ {
			in := g.input()
			if err := validate(t, s, in); err != nil {
				raw, _ := json.Marshal(in)
				t.Fatalf("seed %d input %d: %v\n%s", seed, i, err, raw)
			}
			if i%10 == 0 {
				for j, next := range simpler(clone(in)) {
					if err := validate(t, s, next); err != nil {
						raw, _ := json.Marshal(next)
						t.Fatalf("seed %d input %d, shrink step %d: %v\n%s", seed, i, j, err, raw)
					}
				}
			}
		}
	}
}

// The walker's own draws validate on their own too, for the whole schema (no overlay).
func TestSchemaWalkAloneMatchesSchema(t *testing.T) {
	s := inputValidator(t)
	g := defaultBundleGenerator(t, 9)
	for i := 0; i < 300; i++ {
		in := g.sw.walk(inputSchema).(map[string]any)
		if err := validate(t, s, in); err != nil {
			raw, _ := json.Marshal(in)
			t.Fatalf("draw %d: %v\n%s", i, err, raw)
		}
	}
}

// The schema walk reaches members the data-driven generator never set: every endpoint,
// every protocol, temperature and seed, n above 1, a provider's own catalog, caller labels.
func TestSchemaWalkReachesSchemaOnlyMembers(t *testing.T) {
	g := defaultBundleGenerator(t, 1)
	seen := map[string]bool{}
	for i := 0; i < 300; i++ {
		in := g.input()
		req := in["request"].(map[string]any)
		seen["endpoint="+req["endpoint"].(string)] = true
		if p, ok := req["protocol"].(string); ok {
			seen["protocol="+p] = true
		}
		for _, k := range []string{"temperature", "seed"} {
			if _, ok := req[k]; ok {
				seen[k] = true
			}
		}
		if n, _ := req["n"].(int64); n > 1 {
			seen["n>1"] = true
		}
		for _, m := range req["messages"].([]any) {
			seen["role="+fmt.Sprint(m.(map[string]any)["role"])] = true
		}
		if len(asMap(in["caller"].(map[string]any)["labels"])) > 0 {
			seen["labels"] = true
		}
		for _, p := range in["providers"].(map[string]any) {
			if len(asMap(p.(map[string]any)["catalog"])) > 0 {
				seen["provider catalog"] = true
			}
		}
	}
	for _, want := range []string{"endpoint=messages", "endpoint=count_tokens", "endpoint=responses",
		"protocol=openai", "protocol=anthropic", "protocol=responses", "temperature", "seed", "n>1",
		"role=system", "role=tool", "labels", "provider catalog"} {
		if !seen[want] {
			t.Errorf("never generated %s (saw %v)", want, seen)
		}
	}
}
