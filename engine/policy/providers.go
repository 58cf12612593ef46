package policy

import (
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/gavel-gw/gavel/engine/signals"
)

var (
	kpHealthy   = ast.StringTerm("healthy")
	kpCircuit   = ast.StringTerm("circuit")
	kpErrorRate = ast.StringTerm("error_rate_bp")
	kpRequests  = ast.StringTerm("requests")
	kpP50       = ast.StringTerm("p50_ms")
	kpP95       = ast.StringTerm("p95_ms")
	kpTTFT      = ast.StringTerm("ttft_p95_ms")
	kpInFlight  = ast.StringTerm("in_flight")
	kpModels    = ast.StringTerm("models")
)

// ProvidersValue renders a signals snapshot as input.providers. The planner calls it when
// the snapshot is refreshed, never per request. It lives here, beside OPA, so that
// engine/signals (and the executor that feeds it) does not link OPA.
func ProvidersValue(snap []signals.ProviderStats) ast.Value {
	items := make([][2]*ast.Term, 0, len(snap))
	for _, p := range snap {
		models := make([][2]*ast.Term, 0, len(p.Models))
		for m, s := range p.Models {
			models = append(models, ast.Item(ast.StringTerm(m), ast.NewTerm(statsObject(s, ast.BooleanTerm(p.Healthy)))))
		}
		obj := statsObject(p.Stats, ast.BooleanTerm(p.Healthy))
		obj.Insert(kpModels, ast.NewTerm(ast.NewObject(models...)))
		items = append(items, ast.Item(ast.StringTerm(p.Name), ast.NewTerm(obj)))
	}
	return ast.NewObject(items...)
}

func statsObject(s signals.Stats, healthy *ast.Term) ast.Object {
	obj := ast.NewObject(
		ast.Item(kpCircuit, ast.StringTerm(string(s.Circuit))),
		ast.Item(kpRequests, ast.IntNumberTerm(s.Requests)),
		ast.Item(kpErrorRate, ast.IntNumberTerm(s.ErrorRateBP)),
		ast.Item(kpP50, ast.IntNumberTerm(s.P50MS)),
		ast.Item(kpP95, ast.IntNumberTerm(s.P95MS)),
		ast.Item(kpTTFT, ast.IntNumberTerm(s.TTFTP95MS)),
		ast.Item(kpInFlight, ast.IntNumberTerm(s.InFlight)),
	)
	if healthy != nil {
		obj.Insert(kpHealthy, healthy)
	}
	return obj
}
