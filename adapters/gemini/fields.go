package gemini

import (
	"sort"

	"github.com/gavel-gw/gavel/adapters"
)

// expressible are the extra fields (adapters.ChatRequest.ExtraNames) the Gemini API has a
// place for: top_k as generationConfig.topK. Gemini has no per-part cache breakpoints (its
// caching is implicit, or explicit through cachedContents), no end-user identifier and no
// chat-template arguments.
var expressible = map[string]bool{
	"top_k": true,
}

// inexpressible are the typed fields the Gemini API has no place for: logit_bias;
// logprobs (Gemini's responseLogprobs exists, but its logprobsResult is not translated
// back into OpenAI's choice.logprobs); parallel_tool_calls=false (Gemini may always call
// several functions); OpenAI's storage and capacity options, metadata and user; image
// detail (Gemini's mediaResolution is per request, not per image). seed, the penalties, n,
// response_format and reasoning_effort are mapped (translateGenerationConfig).
var inexpressible = []string{
	"logit_bias", "logprobs", "metadata", "parallel_tool_calls", "service_tier", "store",
	"top_logprobs", "user", adapters.ImageDetailField,
}

// UnsupportedFields names the request's fields, extra (as ExtraNames names them) and typed
// (as adapters.ChatRequest.Sets names them), the Gemini API cannot express; the gateway
// refuses or drops them (drop_params) before the request reaches Chat.
func (p *Provider) UnsupportedFields(req *adapters.ChatRequest) []string {
	return unsupported(req)
}

func unsupported(req *adapters.ChatRequest) []string {
	out := req.SetFields(inexpressible...)
	if req.HasExtra() {
		for _, name := range req.ExtraNames() {
			if !expressible[name] {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out
}

// refused is what translateRequest refuses of unsupported's list: advisory fields, whose
// loss changes nothing the client relies on, are left out of the translation (the gateway
// reports them), the others are refused so that no caller loses them silently.
func refused(req *adapters.ChatRequest) []string {
	var out []string
	for _, n := range unsupported(req) {
		if !adapters.Advisory(n) {
			out = append(out, n)
		}
	}
	return out
}

// thinkingBudget translates reasoning_effort into thinkingConfig.thinkingBudget, from
// adapters.ReasoningBudgets; "none" is a budget of 0, which turns thinking off.
func thinkingBudget(effort string) (*thinkingConfig, error) {
	if effort == "" {
		return nil, nil
	}
	if effort == "none" {
		return &thinkingConfig{ThinkingBudget: new(int)}, nil
	}
	b, ok := adapters.ReasoningBudgets[effort]
	if !ok {
		return nil, badRequest("reasoning_effort %q is not one of none, minimal, low, medium, high, xhigh", effort)
	}
	return &thinkingConfig{ThinkingBudget: &b}, nil
}
