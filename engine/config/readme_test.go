package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The README's gavel.yaml example is what a new user copies first: it must parse, with
// every field it shows, and declare the models it says it does.
func TestREADMEExampleParses(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(raw), "```yaml\n# gavel.yaml")
	if i < 0 {
		t.Fatal("README has no gavel.yaml example")
	}
	example, _, _ := strings.Cut(string(raw[i+len("```yaml\n"):]), "```")
	c, err := Parse([]byte(example), func(string) string { return "x" })
	if err != nil {
		t.Fatalf("README gavel.yaml example: %v", err)
	}
	var declared, discovering int
	for _, p := range c.Providers {
		declared += len(p.Models)
		if p.DiscoverModels {
			discovering++
		}
	}
	if declared == 0 || discovering == 0 {
		t.Errorf("the example shows no declared models (%d) or no discovery (%d)", declared, discovering)
	}
}
