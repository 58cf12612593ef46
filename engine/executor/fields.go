package executor

import (
	"fmt"

	"github.com/gavel-gw/gavel/adapters"
)

// DropParams is what the gateway does with a request's extra fields (members gavel has no
// typed field for) that a provider of another protocol cannot express: the provider's
// drop_params setting.
type DropParams string

// The drop_params settings.
const (
	// DropParamsError refuses the request with a 400 that names the fields and the
	// provider, so that nothing the client asked for is lost without a word. The default.
	DropParamsError DropParams = "error"
	// DropParamsDrop sends the request without them and says so: X-Gavel-Dropped-Params
	// and dropped_params in the decision log.
	DropParamsDrop DropParams = "drop"
)

// Valid reports whether d is a known setting ("" means the default).
func (d DropParams) Valid() bool {
	return d == "" || d == DropParamsError || d == DropParamsDrop
}

// CodeUnsupportedParameter is the error code of a request refused under DropParamsError.
const CodeUnsupportedParameter = "unsupported_parameter"

// fit makes req expressible by the target's provider: unchanged when the provider speaks
// the request's protocol or understands every field, else refused or stripped of what it
// cannot express, per the provider's drop_params. A field whose loss leaves the answer as
// the client relies on it (adapters.Advisory: store, service_tier…) is dropped whatever
// drop_params says. dropped names what was stripped; it is never silent.
func (e *Executor) fit(p *pipeline, req *adapters.ChatRequest) (_ *adapters.ChatRequest, dropped []string, _ error) {
	ft, ok := p.prov.(adapters.FieldTranslator)
	if !ok {
		return req, nil, nil
	}
	names := ft.UnsupportedFields(req)
	if len(names) == 0 {
		return req, nil, nil
	}
	if e.drop[p.target.Provider] != DropParamsDrop {
		var lossy []string
		for _, n := range names {
			if !adapters.Advisory(n) {
				lossy = append(lossy, n)
			}
		}
		if len(lossy) > 0 {
			return nil, nil, &adapters.Error{Provider: p.target.Provider, Kind: adapters.KindBadRequest, Code: CodeUnsupportedParameter,
				Param: lossy[0], Message: fmt.Sprintf("Provider %s cannot express the request's %s; remove them, or set "+
					"drop_params: drop on the provider in gavel.yaml to have them dropped (and reported in X-Gavel-Dropped-Params).",
					p.target.Provider, adapters.QuoteNames(lossy))}
		}
	}
	return req.WithoutFields(names), names, nil
}
