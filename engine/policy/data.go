package policy

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Data is the typed view Go needs of data.gavel: the catalog for /v1/models and costs, and
// the virtual keys for authentication. Rego reads the same documents directly.
type Data struct {
	Catalog map[string]CatalogEntry `json:"catalog"`
	Aliases map[string]Alias        `json:"aliases"`
	Keys    map[string]KeyRecord    `json:"keys"`
	// Budgets tell gavel whose spend to look up for input.spend; the decision says which
	// ones to enforce.
	Budgets []BudgetSpec `json:"budgets"`
	// RateLimits tell gavel whose usage to look up for input.rate.
	RateLimits []RateLimitSpec `json:"rate_limits"`
}

// BudgetSpec is one entry of data.gavel.budgets.
type BudgetSpec struct {
	Name  string `json:"name"`
	Scope string `json:"scope"`
	// ID is set only for scope "shadow": the experiment whose shadow spend it caps, or
	// "*" for every experiment without a budget of its own (each capped separately).
	ID        string `json:"id"`
	Period    string `json:"period"`
	LimitMUSD int64  `json:"limit_musd"`
	Hard      *bool  `json:"hard"`
	SoftBP    int    `json:"soft_bp"`
	DegradeTo string `json:"degrade_to"`
}

// RateLimitSpec is one entry of data.gavel.rate_limits.
type RateLimitSpec struct {
	Scope string `json:"scope"`
	RPM   int64  `json:"rpm"`
	TPM   int64  `json:"tpm"`
}

// Scopes budgets and rate limits may name.
var Scopes = map[string]bool{"key": true, "user": true, "team": true, "project": true, "global": true}

// ShadowScope is the budget scope of shadow spend (data.gavel.budgets only: gavel
// enforces it on shadow requests, never on a caller's request).
const ShadowScope = "shadow"

// ShadowBudgets returns the budgets of scope "shadow" that cap experiment's shadows: its
// own, else the "*" ones.
func (d *Data) ShadowBudgets(experiment string) []BudgetSpec {
	var own, every []BudgetSpec
	for _, b := range d.Budgets {
		switch {
		case b.Scope != ShadowScope:
		case b.ID == experiment:
			own = append(own, b)
		case b.ID == "*":
			every = append(every, b)
		}
	}
	if len(own) > 0 {
		return own
	}
	return every
}

// Alias is a requestable name for an ordered (or, with strategy "scored", ranked) list of
// catalog ids.
type Alias struct {
	Strategy   string   `json:"strategy"`
	Candidates []string `json:"candidates"`
	// HedgeMS, when set, makes the default policy hedge this alias's requests after that
	// many milliseconds, to at most HedgeMax (default 1) more targets. Checked here so a
	// typo cannot turn into decisions gavel refuses.
	HedgeMS  int `json:"hedge_ms"`
	HedgeMax int `json:"hedge_max"`
}

// CatalogEntry describes one model gavel can route to. Prices are integer micro-USD per
// million tokens so Rego never does float arithmetic on them.
type CatalogEntry struct {
	Provider      string          `json:"provider"`
	Model         string          `json:"model"`
	Tier          string          `json:"tier" yaml:"tier"`
	Quality       int             `json:"quality"`
	ContextWindow int             `json:"context_window"`
	MaxOutput     int             `json:"max_output_tokens"`
	Capabilities  map[string]bool `json:"capabilities"`
	Price         Price           `json:"price"`
	Fallbacks     []string        `json:"fallbacks"`
}

// Price is in micro-USD per million tokens.
type Price struct {
	InputMicroUSDPerMTok  int64 `json:"input_musd_per_mtok"`
	OutputMicroUSDPerMTok int64 `json:"output_musd_per_mtok"`
}

// KeyRecord is a virtual key's record; the map key is the hex SHA-256 of the secret.
type KeyRecord struct {
	KeyID   string            `json:"key_id" yaml:"key_id"`
	User    string            `json:"user" yaml:"user"`
	Team    string            `json:"team" yaml:"team"`
	Project string            `json:"project" yaml:"project"`
	Tier    string            `json:"tier" yaml:"tier"`
	Labels  map[string]string `json:"labels" yaml:"labels"`
	// Admin keys may read gavel's admin endpoints (decision explanations).
	Admin bool `json:"admin" yaml:"admin"`
}

func parseData(raw map[string]any) (*Data, error) {
	d := &Data{}
	g, ok := raw["gavel"]
	if !ok {
		return d, nil
	}
	b, err := json.Marshal(g)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, d); err != nil {
		return nil, fmt.Errorf("data.gavel: %w", err)
	}
	for id, e := range d.Catalog {
		if e.Provider == "" || e.Model == "" {
			return nil, fmt.Errorf("data.gavel.catalog[%q]: provider and model are required", id)
		}
	}
	for name, a := range d.Aliases {
		if a.HedgeMS < 0 || a.HedgeMS > MaxHedgeDelayMS || a.HedgeMax < 0 || a.HedgeMax > MaxHedgeMax {
			return nil, fmt.Errorf("data.gavel.aliases[%q]: hedge_ms must be 0–%d and hedge_max 0–%d", name, MaxHedgeDelayMS, MaxHedgeMax)
		}
	}
	for i, b := range d.Budgets {
		if b.Name == "" || !(Scopes[b.Scope] || b.Scope == ShadowScope) || (b.Period != "day" && b.Period != "month") || b.LimitMUSD <= 0 {
			return nil, fmt.Errorf("data.gavel.budgets[%d]: need name, scope (key|user|team|project|global|shadow), period (day|month) and limit_musd > 0", i)
		}
		if (b.Scope == ShadowScope) != (b.ID != "") {
			return nil, fmt.Errorf("data.gavel.budgets[%d]: id (an experiment name or \"*\") is required with scope shadow and not allowed with any other scope", i)
		}
	}
	for i, r := range d.RateLimits {
		if !Scopes[r.Scope] || r.RPM < 0 || r.TPM < 0 {
			return nil, fmt.Errorf("data.gavel.rate_limits[%d]: need a scope and non-negative rpm/tpm", i)
		}
	}
	for h, k := range d.Keys {
		if len(h) != 64 {
			return nil, fmt.Errorf("data.gavel.keys: key %q is not a hex SHA-256", h)
		}
		if k.KeyID == "" {
			return nil, fmt.Errorf("data.gavel.keys[%s…]: key_id is required", h[:8])
		}
	}
	return d, nil
}

// ModelIDs lists aliases and catalog ids, sorted, for GET /v1/models.
func (d *Data) ModelIDs() []string {
	ids := make([]string, 0, len(d.Aliases)+len(d.Catalog))
	for a := range d.Aliases {
		ids = append(ids, a)
	}
	for id := range d.Catalog {
		if _, dup := d.Aliases[id]; !dup {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}
