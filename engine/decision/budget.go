package decision

import (
	"encoding/json"
	"fmt"

	"github.com/gavel-gw/gavel/engine/ledger"
)

// Budget is a named spend limit as a policy states it: in data.gavel.budgets (where the
// bundle declares it) and in decision.budgets (where the policy applies it to one
// request). The embedded ledger.Budget is exactly what the ledger reserves against, so a
// decision's budgets reach the store without a conversion; Name, SoftBP and DegradeTo are
// what only the policy and the client-facing messages need.
//
// In data.gavel.budgets ID is empty (the pipeline fills in the caller's id for the scope,
// see ForCaller) except for scope "shadow", where it names the experiment (or "*").
type Budget struct {
	ledger.Budget
	Name string
	// SoftBP is the share of the limit (basis points) past which responses warn;
	// DefaultSoftBP (10000) means never.
	SoftBP int
	// DegradeTo names the cheaper alias the default library routes to past SoftBP (read
	// by Rego; data.gavel.budgets only).
	DegradeTo string
}

// DefaultSoftBP is "no soft threshold": the whole limit.
const DefaultSoftBP = 10000

// budgetJSON is the policy contract's shape of a budget (docs/policy-contract.md).
type budgetJSON struct {
	Name      string `json:"name"`
	Scope     string `json:"scope"`
	ID        string `json:"id,omitempty"`
	Period    string `json:"period"`
	LimitMUSD int64  `json:"limit_musd"`
	Hard      *bool  `json:"hard,omitempty"`
	SoftBP    int    `json:"soft_bp,omitempty"`
	DegradeTo string `json:"degrade_to,omitempty"`
}

// UnmarshalJSON reads the contract's shape; hard defaults to true and soft_bp to
// DefaultSoftBP, as in a decision.
func (b *Budget) UnmarshalJSON(raw []byte) error {
	var w budgetJSON
	if err := json.Unmarshal(raw, &w); err != nil {
		return fmt.Errorf("budget: %w", err)
	}
	*b = Budget{Budget: ledger.Budget{Scope: w.Scope, ID: w.ID, Period: w.Period, LimitMicroUSD: w.LimitMUSD, Hard: w.Hard == nil || *w.Hard},
		Name: w.Name, SoftBP: w.SoftBP, DegradeTo: w.DegradeTo}
	if w.SoftBP == 0 {
		b.SoftBP = DefaultSoftBP
	}
	return nil
}

// MarshalJSON writes the contract's shape, so a budget round-trips.
func (b Budget) MarshalJSON() ([]byte, error) {
	hard := b.Hard
	w := budgetJSON{Name: b.Name, Scope: b.Scope, ID: b.ID, Period: b.Period, LimitMUSD: b.LimitMicroUSD, Hard: &hard, DegradeTo: b.DegradeTo}
	if b.SoftBP != DefaultSoftBP {
		w.SoftBP = b.SoftBP
	}
	return json.Marshal(w)
}

// Valid reports whether the budget names a caller scope (or shadow, when shadow is
// true), a known period and a positive limit: what both the bundle's data and a decision
// must satisfy.
func (b *Budget) Valid(shadow bool) bool {
	scopeOK := ledger.CallerScope(b.Scope) || (shadow && b.Scope == ledger.ScopeShadow)
	return b.Name != "" && scopeOK && (b.Period == ledger.PeriodDay || b.Period == ledger.PeriodMonth) && b.LimitMicroUSD > 0
}

// ForCaller is a declared budget as the ledger keeps it for a caller whose id in the
// budget's scope is id: the one place a declaration becomes a concrete budget.
func (b *Budget) ForCaller(id string) ledger.Budget {
	lb := b.Budget
	lb.ID = id
	return lb
}
