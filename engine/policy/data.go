package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/gavel-gw/gavel/engine/decision"
	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/tokens"
)

// Data is the typed view Go needs of data.gavel: the catalog for /v1/models and costs, and
// the virtual keys for authentication. Rego reads the same documents directly.
type Data struct {
	Catalog map[string]CatalogEntry `json:"catalog"`
	Aliases map[string]Alias        `json:"aliases"`
	Keys    map[string]KeyRecord    `json:"keys"`
	// Budgets tell gavel whose spend to look up for input.spend; the decision says which
	// ones to enforce. A budget of scope "shadow" has the experiment whose shadow spend it
	// caps as its ID, or "*" for every experiment without a budget of its own (each capped
	// separately); gavel enforces it on shadow requests, never on a caller's request.
	Budgets []decision.Budget `json:"budgets"`
	// RateLimits tell gavel whose usage to look up for input.rate. Their IDs are empty:
	// the caller's id in the scope is filled in per request.
	RateLimits []ledger.RateLimit `json:"-"`
	// Faults are the chaos drills of the default library's drill rule (faults.rego); an
	// engine with faults disabled refuses a bundle that lists any. Gavel reads only their
	// number: the rule reads their shape.
	Faults []json.RawMessage `json:"faults"`
}

// rateLimitJSON is the contract's shape of a data.gavel.rate_limits entry.
type rateLimitJSON struct {
	Scope string `json:"scope"`
	RPM   int64  `json:"rpm"`
	TPM   int64  `json:"tpm"`
}

// ShadowBudgets returns the budgets of scope "shadow" that cap experiment's shadows: its
// own, else the "*" ones.
func (d *Data) ShadowBudgets(experiment string) []decision.Budget {
	var own, every []decision.Budget
	for _, b := range d.Budgets {
		switch {
		case b.Scope != ledger.ScopeShadow:
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
	// Midstream, "continue", makes the default policy ask for mid-stream continuation of
	// this alias's streams (limits.midstream); "" or "error" leaves them ending with an
	// error event. Checked here so that a typo is refused with the bundle.
	Midstream string `json:"midstream"`
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
	Price         tokens.Price    `json:"price"`
	Fallbacks     []string        `json:"fallbacks"`
}

// Price is the catalog price of id ("provider/model"); zero when the catalog has none.
// It is the one price lookup: reservations, shadows and the charge after a call all use
// it.
func (d *Data) Price(id string) tokens.Price {
	return d.Catalog[id].Price
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
	// Role is the key's rights on gavel's admin endpoints: RoleAdmin (read and write),
	// RoleViewer (read only) or "" (none). Admin: true means RoleAdmin.
	Role string `json:"role" yaml:"role"`
	// Models, when set, are the only models or aliases (as requests name them) the key
	// may use; the default library denies others (403 model_not_allowed).
	Models []string `json:"models" yaml:"models"`
	// RPM and TPM are the key's own requests and tokens per minute (0: none), and
	// BudgetMUSD its own spend limit per BudgetPeriod (day or month; 0: none): the default
	// library enforces them as a key-scope rate limit and a hard budget named key_budget.
	RPM          int64  `json:"rpm" yaml:"rpm"`
	TPM          int64  `json:"tpm" yaml:"tpm"`
	BudgetMUSD   int64  `json:"budget_musd" yaml:"budget_musd"`
	BudgetPeriod string `json:"budget_period" yaml:"budget_period"`
}

// Validate checks the record's role and limits.
func (k KeyRecord) Validate() error {
	if err := ValidateRole(k.Role); err != nil {
		return err
	}
	if k.RPM < 0 || k.TPM < 0 || k.BudgetMUSD < 0 {
		return errors.New("rpm, tpm and budget_musd must not be negative")
	}
	switch {
	case k.BudgetMUSD > 0 && k.BudgetPeriod != ledger.PeriodDay && k.BudgetPeriod != ledger.PeriodMonth:
		return fmt.Errorf("budget_period must be %q or %q with a budget, got %q", ledger.PeriodDay, ledger.PeriodMonth, k.BudgetPeriod)
	case k.BudgetMUSD == 0 && k.BudgetPeriod != "":
		return errors.New("budget_period without budget_musd")
	}
	for _, m := range k.Models {
		if m == "" {
			return errors.New("models: empty model name")
		}
	}
	return nil
}

// Roles a key may have on the admin endpoints.
const (
	RoleAdmin  = "admin"
	RoleViewer = "viewer"
)

// EffectiveRole is the key's role with the older admin flag folded in.
func (k KeyRecord) EffectiveRole() string {
	if k.Admin {
		return RoleAdmin
	}
	return k.Role
}

// ValidateRole refuses a role other than admin, viewer or none.
func ValidateRole(role string) error {
	switch role {
	case "", RoleAdmin, RoleViewer:
		return nil
	}
	return fmt.Errorf("role %q: must be %q, %q or empty", role, RoleAdmin, RoleViewer)
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
	var rl struct {
		RateLimits []rateLimitJSON `json:"rate_limits"`
	}
	if err := json.Unmarshal(b, &rl); err != nil {
		return nil, fmt.Errorf("data.gavel: %w", err)
	}
	for _, r := range rl.RateLimits {
		d.RateLimits = append(d.RateLimits, ledger.RateLimit{Scope: r.Scope, RequestsPerMinute: r.RPM, TokensPerMinute: r.TPM})
	}
	for id, e := range d.Catalog {
		if e.Provider == "" || e.Model == "" {
			return nil, fmt.Errorf("data.gavel.catalog[%q]: provider and model are required", id)
		}
	}
	for name, a := range d.Aliases {
		if a.HedgeMS < 0 || a.HedgeMS > decision.MaxHedgeDelayMS || a.HedgeMax < 0 || a.HedgeMax > decision.MaxHedgeMax {
			return nil, fmt.Errorf("data.gavel.aliases[%q]: hedge_ms must be 0–%d and hedge_max 0–%d", name, decision.MaxHedgeDelayMS, decision.MaxHedgeMax)
		}
		if a.Midstream != "" && a.Midstream != decision.MidstreamError && a.Midstream != decision.MidstreamContinue {
			return nil, fmt.Errorf("data.gavel.aliases[%q]: midstream must be %q or %q, got %q", name, decision.MidstreamError, decision.MidstreamContinue, a.Midstream)
		}
	}
	for i, b := range d.Budgets {
		if !b.Valid(true) {
			return nil, fmt.Errorf("data.gavel.budgets[%d]: need name, scope (key|user|team|project|global|shadow), period (day|month) and limit_musd > 0", i)
		}
		if (b.Scope == ledger.ScopeShadow) != (b.ID != "") {
			return nil, fmt.Errorf("data.gavel.budgets[%d]: id (an experiment name or \"*\") is required with scope shadow and not allowed with any other scope", i)
		}
	}
	for i, r := range d.RateLimits {
		if !ledger.CallerScope(r.Scope) || r.RequestsPerMinute < 0 || r.TokensPerMinute < 0 {
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
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("data.gavel.keys[%s…]: %w", h[:8], err)
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

// Chain is what a request for model may be routed to before any degradation: an alias's
// candidates, or a catalog id followed by its fallbacks (as the default policy's plan
// builds its chains). Ids the catalog does not have are left out.
func (d *Data) Chain(model string) []decision.Target {
	ids := []string(nil)
	if a, ok := d.Aliases[model]; ok {
		ids = a.Candidates
	} else if e, ok := d.Catalog[model]; ok {
		ids = append([]string{model}, e.Fallbacks...)
	}
	out := make([]decision.Target, 0, len(ids))
	for _, id := range ids {
		if e, ok := d.Catalog[id]; ok {
			out = append(out, decision.Target{Provider: e.Provider, Model: e.Model})
		}
	}
	return out
}
