package policy

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/gavel-gw/gavel/engine/decision"

	"github.com/gavel-gw/gavel/engine/tokens"
)

// Model is one model a provider serves, as the operator declares it in gavel.yaml
// (providers[].models) or as the provider lists it (discover_models). The policy sees it
// as input.providers.<provider>.catalog.<name>; the default library routes a request for
// its name, one of its aliases or provider/name to it.
type Model struct {
	// Name is the upstream model name, sent to the provider as is.
	Name string `yaml:"name"`
	// Aliases are further names clients may ask for (smart, fast…); an alias of the
	// bundle's data gains this model as a candidate after its own.
	Aliases []string `yaml:"aliases"`
	// Kind is "chat" (the default) or "embedding".
	Kind string `yaml:"kind"`
	// ContextWindow in tokens; 0 means unknown, and the default library then does not
	// filter on size.
	ContextWindow   int `yaml:"context_window"`
	MaxOutputTokens int `yaml:"max_output_tokens"`
	// Prices in USD per million tokens; budgets charge by them.
	Prices ModelPrices `yaml:"prices"`
	// Capabilities the model has: tools, vision, json.
	Capabilities []string `yaml:"capabilities"`
}

// ModelPrices are a model's prices in USD per million tokens, as price lists show them.
type ModelPrices struct {
	Input       float64 `yaml:"input"`
	Output      float64 `yaml:"output"`
	CachedInput float64 `yaml:"cached_input"`
}

// Model kinds.
const (
	KindChat      = "chat"
	KindEmbedding = "embedding"
)

// Capabilities a model may declare (the keys of a catalog entry's capabilities).
var Capabilities = []string{"json", "tools", "vision"}

// maxPriceUSD bounds a price per million tokens: far above any real one, and small enough
// that micro-USD stay exact integers.
const maxPriceUSD = 1e6

// Validate checks one declared model.
func (m Model) Validate() error {
	var errs []error
	if strings.TrimSpace(m.Name) == "" {
		errs = append(errs, errors.New("name is required"))
	}
	switch m.Kind {
	case "", KindChat, KindEmbedding:
	default:
		errs = append(errs, fmt.Errorf("kind must be %s or %s, got %q", KindChat, KindEmbedding, m.Kind))
	}
	if m.ContextWindow < 0 || m.MaxOutputTokens < 0 {
		errs = append(errs, errors.New("context_window and max_output_tokens must not be negative"))
	}
	for _, p := range []float64{m.Prices.Input, m.Prices.Output, m.Prices.CachedInput} {
		if p < 0 || p > maxPriceUSD || math.IsNaN(p) {
			errs = append(errs, fmt.Errorf("prices are USD per million tokens, 0–%g; got %g", float64(maxPriceUSD), p))
			break
		}
	}
	for _, c := range m.Capabilities {
		if !contains(Capabilities, c) {
			errs = append(errs, fmt.Errorf("unknown capability %q (known: %s)", c, strings.Join(Capabilities, ", ")))
		}
	}
	for _, a := range m.Aliases {
		if strings.TrimSpace(a) == "" || a == m.Name {
			errs = append(errs, fmt.Errorf("alias %q must be a name other than the model's own", a))
		}
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (m Model) kind() string {
	if m.Kind == "" {
		return KindChat
	}
	return m.Kind
}

// price converts the declared prices to the integer micro-USD gavel counts in.
func (m Model) price() tokens.Price {
	musd := func(usd float64) int64 { return int64(math.Round(usd * 1e6)) }
	return tokens.Price{InputMicroUSDPerMTok: musd(m.Prices.Input), OutputMicroUSDPerMTok: musd(m.Prices.Output),
		CachedInputMicroUSDPerMTok: musd(m.Prices.CachedInput)}
}

// Catalog holds the models of every configured provider: those declared in gavel.yaml,
// and those the provider listed when asked (discovery), declared ones winning. The
// planner renders it into input.providers.<name>.catalog when it builds the shared input,
// so governance still decides what a request for one of them gets. Safe for concurrent use.
type Catalog struct {
	mu         sync.Mutex
	declared   map[string][]Model
	discovered map[string][]string
	onChange   []func()
	cur        atomic.Pointer[catalogState]
}

// catalogState is one immutable view of the catalog.
type catalogState struct {
	values map[string]ast.Value         // provider → its rendered catalog
	prices map[string]tokens.Price      // "provider/model" → price
	names  map[string]bool              // every model name and alias declared or discovered
	models map[string]map[string]bool   // provider → model names
	claims map[string][]decision.Target // name, alias or provider/model → the models it reaches
}

// NewCatalog returns a catalog of the declared models, by provider.
func NewCatalog(declared map[string][]Model) *Catalog {
	c := &Catalog{declared: declared, discovered: map[string][]string{}}
	c.rebuild()
	return c
}

// OnChange registers fn to run after the catalog changed (the planner rebuilds).
func (c *Catalog) OnChange(fn func()) {
	c.mu.Lock()
	c.onChange = append(c.onChange, fn)
	c.mu.Unlock()
}

// SetDiscovered replaces the model names provider listed, and reports whether that
// changed the catalog.
func (c *Catalog) SetDiscovered(provider string, models []string) bool {
	sorted := append([]string(nil), models...)
	sort.Strings(sorted)
	c.mu.Lock()
	old := c.discovered[provider]
	same := len(old) == len(sorted)
	for i := 0; same && i < len(old); i++ {
		same = old[i] == sorted[i]
	}
	if same && old != nil {
		c.mu.Unlock()
		return false
	}
	c.discovered[provider] = sorted
	c.rebuild()
	fns := c.onChange
	c.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
	return true
}

// rebuild publishes a new state; c.mu is held (or c is not shared yet).
func (c *Catalog) rebuild() {
	st := &catalogState{values: map[string]ast.Value{}, prices: map[string]tokens.Price{}, names: map[string]bool{},
		models: map[string]map[string]bool{}, claims: map[string][]decision.Target{}}
	providers := map[string]bool{}
	for p := range c.declared {
		providers[p] = true
	}
	for p := range c.discovered {
		providers[p] = true
	}
	for p := range providers {
		merged := map[string]Model{}
		sources := map[string]string{}
		for _, name := range c.discovered[p] {
			merged[name] = Model{Name: name, Kind: guessKind(name)}
			sources[name] = "discovered"
		}
		for _, m := range c.declared[p] {
			merged[m.Name] = m
			sources[m.Name] = "config"
		}
		items := make([][2]*ast.Term, 0, len(merged))
		st.models[p] = map[string]bool{}
		for name, m := range merged {
			items = append(items, ast.Item(ast.StringTerm(name), ast.NewTerm(modelValue(m, sources[name]))))
			st.prices[p+"/"+name] = m.price()
			st.names[name] = true
			st.models[p][name] = true
			t := decision.Target{Provider: p, Model: name}
			st.claims[name] = append(st.claims[name], t)
			st.claims[p+"/"+name] = append(st.claims[p+"/"+name], t)
			for _, a := range m.Aliases {
				st.names[a] = true
				st.claims[a] = append(st.claims[a], t)
			}
		}
		st.values[p] = ast.NewObject(items...)
	}
	c.cur.Store(st)
}

// guessKind tells embedding models from chat models by name, for discovered models: an
// OpenAI-compatible model list does not say, and every embedding model in common use
// (text-embedding-3-small, nomic-embed-text, bge-m3-embed…) says "embed" in its name.
// A declared model's kind overrides the guess.
func guessKind(name string) string {
	if strings.Contains(strings.ToLower(name), "embed") {
		return KindEmbedding
	}
	return KindChat
}

var (
	kcAliases      = ast.StringTerm("aliases")
	kcKind         = ast.StringTerm("kind")
	kcContext      = ast.StringTerm("context_window")
	kcMaxOutput    = ast.StringTerm("max_output_tokens")
	kcCapabilities = ast.StringTerm("capabilities")
	kcPrice        = ast.StringTerm("price")
	kcSource       = ast.StringTerm("source")
	kcInput        = ast.StringTerm("input_musd_per_mtok")
	kcOutput       = ast.StringTerm("output_musd_per_mtok")
	kcCached       = ast.StringTerm("cached_input_musd_per_mtok")
)

// modelValue renders one entry of input.providers.<name>.catalog, in the shape of a
// data.gavel.catalog entry where the two overlap.
func modelValue(m Model, source string) ast.Value {
	aliases := make([]*ast.Term, len(m.Aliases))
	for i, a := range m.Aliases {
		aliases[i] = ast.StringTerm(a)
	}
	caps := make([][2]*ast.Term, 0, len(Capabilities))
	for _, c := range Capabilities {
		caps = append(caps, ast.Item(ast.StringTerm(c), ast.BooleanTerm(contains(m.Capabilities, c))))
	}
	pr := m.price()
	return ast.NewObject(
		ast.Item(kcAliases, ast.ArrayTerm(aliases...)),
		ast.Item(kcKind, ast.StringTerm(m.kind())),
		ast.Item(kcContext, ast.IntNumberTerm(m.ContextWindow)),
		ast.Item(kcMaxOutput, ast.IntNumberTerm(m.MaxOutputTokens)),
		ast.Item(kcCapabilities, ast.ObjectTerm(caps...)),
		ast.Item(kcPrice, ast.ObjectTerm(
			ast.Item(kcInput, ast.NewTerm(ast.Number(itoa(pr.InputMicroUSDPerMTok)))),
			ast.Item(kcOutput, ast.NewTerm(ast.Number(itoa(pr.OutputMicroUSDPerMTok)))),
			ast.Item(kcCached, ast.NewTerm(ast.Number(itoa(pr.CachedInputMicroUSDPerMTok)))),
		)),
		ast.Item(kcSource, ast.StringTerm(source)),
	)
}

var kpCatalog = ast.StringTerm("catalog")

// Attach adds each provider's catalog to a freshly rendered input.providers (every
// configured provider gets one, empty when it has no models).
func (c *Catalog) Attach(providers ast.Value) {
	obj, ok := providers.(ast.Object)
	if !ok {
		return
	}
	st := c.cur.Load()
	obj.Foreach(func(k, v *ast.Term) {
		p, _ := k.Value.(ast.String)
		po, ok := v.Value.(ast.Object)
		if !ok {
			return
		}
		cat, ok := st.values[string(p)]
		if !ok {
			cat = emptyObject
		}
		po.Insert(kpCatalog, ast.NewTerm(cat))
	})
}

// Price is the price of "provider/model" when the catalog has that model.
func (c *Catalog) Price(id string) (tokens.Price, bool) {
	if c == nil {
		return tokens.Price{}, false
	}
	p, ok := c.cur.Load().prices[id]
	return p, ok
}

// IsName reports whether name is a model name or alias some provider declares or lists:
// such a name is what a client asks for, not a provider/model it chose explicitly, even
// when it contains a slash (meta-llama/Llama-3.1-8B on a vLLM server).
func (c *Catalog) IsName(name string) bool {
	if c == nil {
		return false
	}
	return c.cur.Load().names[name]
}

// Claims lists the declared or discovered models a request for name reaches (by model
// name, alias or provider/model), in no particular order.
func (c *Catalog) Claims(name string) []decision.Target {
	if c == nil {
		return nil
	}
	return c.cur.Load().claims[name]
}

// Models lists the model names of provider, sorted (tests, logs).
func (c *Catalog) Models(provider string) []string {
	if c == nil {
		return nil
	}
	var out []string
	for m := range c.cur.Load().models[provider] {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}
