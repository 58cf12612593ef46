package server

import (
	"strings"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/tokens"
)

// charge is the one place a request's usage is priced and counted: tokens and cost by
// provider, model and the caller's team (only the server knows the caller), then the
// ledger hold is settled with that cost. priced is false when the upstream streamed without
// usage: the real tokenizer then counts off the request's path and charges later.
func (s *Server) charge(x *exchange) (cost int64, priced bool) {
	l := usageLabels{experiment: experimentOfExchange(x)}
	if x.caller != nil {
		l.team = x.caller.Record.Team
	}
	if x.decision != nil && x.decision.AB != nil {
		l.arm = x.decision.AB.Arm
	}
	var catalog map[string]policy.CatalogEntry
	if x.rev != nil {
		catalog = x.rev.Data.Catalog
	}
	if x.usage == nil && x.streamed.Len() > 0 {
		hd, route, prompt, completion := x.hold, x.route, x.prompt, x.streamed.String()
		go func() {
			u := s.countUsage(route, prompt, completion)
			hd.settle(u, s.account(catalog, route, l, u))
		}()
		return 0, false
	}
	if x.usage != nil {
		cost = s.account(catalog, x.route, l, x.usage)
	}
	x.hold.settle(x.usage, cost)
	return cost, true
}

// account prices usage at the catalog rate of the route taken and counts it.
func (s *Server) account(catalog map[string]policy.CatalogEntry, route string, l usageLabels, u *adapters.Usage) int64 {
	provider, model, _ := strings.Cut(route, "/")
	var price tokens.Price
	if e, ok := catalog[route]; ok { // route is the catalog id: no string built per request
		price = tokens.Price{InputMicroUSDPerMTok: e.Price.InputMicroUSDPerMTok, OutputMicroUSDPerMTok: e.Price.OutputMicroUSDPerMTok}
	}
	cached := 0
	if u.PromptTokensDetails != nil {
		cached = u.PromptTokensDetails.CachedTokens
	}
	cost := tokens.Cost(price, u.PromptTokens, cached, u.CompletionTokens)
	s.o.Metrics.Tokens(provider, model, l.team, u.PromptTokens, u.CompletionTokens)
	s.o.Metrics.Cost(provider, model, l.team, cost)
	s.o.Metrics.ExperimentCost(l.experiment, l.arm, cost)
	return cost
}

// usageLabels are who a request's usage is counted against.
type usageLabels struct{ team, experiment, arm string }

// experimentOfExchange is the experiment a request belongs to ("" when none).
func experimentOfExchange(x *exchange) string {
	if x.decision == nil {
		return ""
	}
	return experimentOf(x.decision)
}
