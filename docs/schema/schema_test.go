package schema

import (
	"encoding/json"
	"testing"
)

// The embedded schemas are the documents themselves, and parse.
func TestEmbeddedSchemasParse(t *testing.T) {
	for name, raw := range map[string][]byte{"input.json": Input, "decision.json": Decision} {
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if id, _ := doc["$id"].(string); id != "https://gavel.dev/schema/"+name {
			t.Errorf("%s: $id %q", name, id)
		}
	}
}
