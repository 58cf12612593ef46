package policy

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/gavel-gw/gavel/engine/signals"
	"github.com/gavel-gw/gavel/engine/tokens"
)

func TestCatalog(t *testing.T) {
	c := NewCatalog(map[string][]Model{"up": {
		{Name: "m-large", Aliases: []string{"smart"}, ContextWindow: 32000, Prices: ModelPrices{Input: 0.27, Output: 1.10},
			Capabilities: []string{"tools"}},
		{Name: "text-embed-x", Kind: KindChat}, // declared: the name does not make it an embedding model
	}})
	changes := 0
	c.OnChange(func() { changes++ })
	if !c.SetDiscovered("up", []string{"m-large", "nomic-embed-text", "qwen"}) || changes != 1 {
		t.Fatalf("first discovery: changes = %d", changes)
	}
	if c.SetDiscovered("up", []string{"qwen", "nomic-embed-text", "m-large"}) || changes != 1 {
		t.Fatalf("the same list again changed the catalog")
	}
	if got := strings.Join(c.Models("up"), ","); got != "m-large,nomic-embed-text,qwen,text-embed-x" {
		t.Errorf("models = %s", got)
	}
	if p, ok := c.Price("up/m-large"); !ok || p != (tokens.Price{InputMicroUSDPerMTok: 270000, OutputMicroUSDPerMTok: 1100000}) {
		t.Errorf("price = %+v, %v", p, ok)
	}
	if _, ok := c.Price("up/nope"); ok {
		t.Error("price of an unknown model")
	}
	for name, want := range map[string]bool{"smart": true, "m-large": true, "qwen": true, "up/m-large": false, "gpt-4o": false} {
		if c.IsName(name) != want {
			t.Errorf("IsName(%q) = %v", name, !want)
		}
	}
	for name, want := range map[string]int{"smart": 1, "m-large": 1, "up/m-large": 1, "qwen": 1, "up/qwen": 1, "nope": 0} {
		if got := c.Claims(name); len(got) != want || (want == 1 && got[0].Provider != "up") {
			t.Errorf("Claims(%q) = %v", name, got)
		}
	}
	var nilCat *Catalog
	if nilCat.IsName("smart") || nilCat.Models("up") != nil {
		t.Error("a nil catalog knows names")
	}

	providers := ProvidersValue([]signals.ProviderStats{{Name: "up", Healthy: true}, {Name: "other", Healthy: true}})
	c.Attach(providers)
	for path, want := range map[string]string{
		`up.catalog["m-large"].aliases`:                    `["smart"]`,
		`up.catalog["m-large"].source`:                     `"config"`,
		`up.catalog["m-large"].context_window`:             `32000`,
		`up.catalog["m-large"].capabilities`:               `{"json": false, "tools": true, "vision": false}`,
		`up.catalog["m-large"].price.output_musd_per_mtok`: `1100000`,
		`up.catalog["nomic-embed-text"].kind`:              `"embedding"`,
		`up.catalog["nomic-embed-text"].source`:            `"discovered"`,
		`up.catalog["text-embed-x"].kind`:                  `"chat"`,
		`up.catalog.qwen.kind`:                             `"chat"`,
		`other.catalog`:                                    `{}`,
	} {
		ref := ast.MustParseRef("x." + path)
		v, err := providers.Find(ref[1:])
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if v.String() != want {
			t.Errorf("%s = %s, want %s", path, v, want)
		}
	}
}

func TestPlannerSeesTheCatalog(t *testing.T) {
	e := New()
	b := moduleBundle(allowAll+"\nplan := {\"seen\": input.providers}\n", map[string]any{})
	if _, err := e.Activate(context.Background(), b, "test"); err != nil {
		t.Fatal(err)
	}
	p := NewPlanner(e, &countingSource{changed: make(chan struct{})}, 0, slog.New(slog.DiscardHandler))
	c := NewCatalog(map[string][]Model{"mock": {{Name: "declared-1"}}})
	p.UseCatalog(c)
	s := p.Build(context.Background(), e.Active())
	if v, err := s.Providers.Find(ast.MustParseRef(`x.mock.catalog["declared-1"].kind`)[1:]); err != nil || v.String() != `"chat"` {
		t.Fatalf("input.providers.mock.catalog: %v, %v", v, err)
	}
	c.SetDiscovered("mock", []string{"listed-1"})
	select {
	case <-p.kick:
	default:
		t.Fatal("a catalog change did not ask the planner for a rebuild")
	}
}
