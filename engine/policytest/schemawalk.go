package policytest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/gavel-gw/gavel/docs/schema"
)

// schemaWalker draws values that validate against a JSON Schema document (the subset
// docs/schema/input.json uses: type, enum, properties/required, additionalProperties
// and propertyNames maps, items/uniqueItems, minimum/maximum, allOf and in-document
// $ref), biased towards edge cases: enum members uniformly, numbers at their bounds, 0
// or huge, optional members present about half the time, short sample strings.
type schemaWalker struct {
	root map[string]any
	r    *rand.Rand
}

// inputSchema is docs/schema/input.json, parsed once.
var inputSchema = func() map[string]any {
	var doc map[string]any
	if err := json.Unmarshal(schema.Input, &doc); err != nil {
		panic("docs/schema/input.json: " + err.Error()) // embedded at build time; a test parses it
	}
	return doc
}()

// sampleStrings are the strings drawn where a schema allows any: empty, short, odd.
var sampleStrings = []string{"", "a", "x-1", "ünïcødé", "with space", strings.Repeat("z", 300)}

// hugeInt is the "huge" an unbounded integer is drawn at: far past any limit, well inside
// the int64 (and OPA number) range.
const hugeInt = int64(1) << 40

func (w *schemaWalker) walk(s map[string]any) any {
	if ref, ok := s["$ref"].(string); ok {
		return w.walk(w.resolve(ref))
	}
	if all, ok := s["allOf"].([]any); ok {
		// Every member must hold: draw each and merge objects, the schema's own members last.
		out := map[string]any{}
		for _, sub := range all {
			if m, ok := w.walk(asMap(sub)).(map[string]any); ok {
				for k, v := range m {
					out[k] = v
				}
			}
		}
		own := map[string]any{}
		for k, v := range s {
			if k != "allOf" {
				own[k] = v
			}
		}
		if m, ok := w.walk(own).(map[string]any); ok {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	if enum, ok := s["enum"].([]any); ok && len(enum) > 0 {
		return enum[w.r.IntN(len(enum))]
	}
	switch s["type"] {
	case "object":
		return w.object(s)
	case "array":
		return w.array(s)
	case "integer":
		return w.integer(s)
	case "number":
		n := w.integer(s)
		if _, capped := s["maximum"]; !capped && w.r.IntN(2) == 0 {
			return float64(n) + 0.5 // a fraction now and then, still above any minimum
		}
		return n
	case "boolean":
		return w.r.IntN(2) == 0
	case "string":
		return sampleStrings[w.r.IntN(len(sampleStrings))]
	}
	return map[string]any{} // untyped: the input.json members without a type are objects
}

func (w *schemaWalker) resolve(ref string) map[string]any {
	if !strings.HasPrefix(ref, "#/") {
		panic(fmt.Sprintf("schema walk: $ref %q leaves the document", ref))
	}
	var cur any = w.root
	for _, part := range strings.Split(ref[2:], "/") {
		cur = asMap(cur)[strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")]
	}
	if cur == nil {
		panic(fmt.Sprintf("schema walk: $ref %q not found", ref))
	}
	return asMap(cur)
}

func (w *schemaWalker) object(s map[string]any) map[string]any {
	out := map[string]any{}
	required := map[string]bool{}
	for _, r := range asSlice(s["required"]) {
		required[r.(string)] = true
	}
	props := asMap(s["properties"])
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(names) // map order would make a seed's inputs differ run to run
	for _, k := range names {
		if required[k] || w.r.IntN(2) == 0 {
			out[k] = w.walk(asMap(props[k]))
		}
	}
	if extra, ok := s["additionalProperties"].(map[string]any); ok {
		keys := sampleStrings[1:4]
		if enum := asSlice(asMap(s["propertyNames"])["enum"]); len(enum) > 0 {
			keys = nil
			for _, e := range enum {
				keys = append(keys, e.(string))
			}
		}
		for i := w.r.IntN(3); i > 0; i-- {
			k := keys[w.r.IntN(len(keys))]
			if _, taken := props[k]; !taken {
				out[k] = w.walk(extra)
			}
		}
	}
	return out
}

func (w *schemaWalker) array(s map[string]any) []any {
	out := []any{}
	items, ok := s["items"].(map[string]any)
	if !ok {
		return out
	}
	unique, _ := s["uniqueItems"].(bool)
	seen := map[string]bool{}
	for i := w.r.IntN(4); i > 0; i-- {
		v := w.walk(items)
		if unique {
			k := fmt.Sprint(v)
			if seen[k] {
				continue
			}
			seen[k] = true
		}
		out = append(out, v)
	}
	return out
}

// integer draws at a bound, one inside it, 0, huge or small, whichever the bounds allow.
func (w *schemaWalker) integer(s map[string]any) int64 {
	lo, hasLo := s["minimum"].(float64)
	hi, hasHi := s["maximum"].(float64)
	cands := []int64{0, 1, int64(w.r.IntN(1000))}
	if hasLo {
		cands = append(cands, int64(lo), int64(lo)+1)
	} else {
		cands = append(cands, -1, -hugeInt)
	}
	if hasHi {
		cands = append(cands, int64(hi), int64(hi)-1)
	} else {
		cands = append(cands, hugeInt)
	}
	var ok []int64
	for _, c := range cands {
		if (!hasLo || c >= int64(lo)) && (!hasHi || c <= int64(hi)) {
			ok = append(ok, c)
		}
	}
	return ok[w.r.IntN(len(ok))]
}
