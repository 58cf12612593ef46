package gemini

import "github.com/gavel-gw/gavel/adapters"

// expressible are the extra fields (adapters.ChatRequest.ExtraNames) the Gemini API has a
// place for: top_k as generationConfig.topK. Gemini has no per-part cache breakpoints (its
// caching is implicit, or explicit through cachedContents), no end-user identifier and no
// chat-template arguments.
var expressible = map[string]bool{
	"top_k": true,
}

// UnsupportedFields names the request's extra fields the Gemini API cannot express; the
// gateway refuses or drops them (drop_params) before the request reaches Chat.
func (p *Provider) UnsupportedFields(req *adapters.ChatRequest) []string {
	return unsupported(req)
}

func unsupported(req *adapters.ChatRequest) []string {
	if !req.HasExtra() {
		return nil
	}
	var out []string
	for _, name := range req.ExtraNames() {
		if !expressible[name] {
			out = append(out, name)
		}
	}
	return out
}
