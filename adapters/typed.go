package adapters

// Typed fields a translated backend may have no place for. A provider that translates the
// canonical request (FieldTranslator) names them in UnsupportedFields by these names, as it
// names extra fields, and the gateway refuses or drops them like extra fields.

// ImageDetailField names the detail of image parts (image_url.detail), which a provider
// that sizes images itself cannot honour.
const ImageDetailField = PartFieldPrefix + "image_url.detail"

// Sets reports whether the request sets the typed field name (a JSON name, or
// ImageDetailField) to a value that asks something of the model: n above 1, logprobs true,
// parallel_tool_calls false, penalties other than 0, a response_format other than text, an
// image detail other than auto, any value of the others. A default value asks nothing, so
// a backend that cannot express the field loses nothing by not sending it.
func (r *ChatRequest) Sets(name string) bool {
	switch name {
	case "frequency_penalty":
		return r.FrequencyPenalty != nil && *r.FrequencyPenalty != 0
	case "presence_penalty":
		return r.PresencePenalty != nil && *r.PresencePenalty != 0
	case "logit_bias":
		return len(r.LogitBias) > 0
	case "logprobs":
		return r.Logprobs != nil && *r.Logprobs
	case "top_logprobs":
		return r.TopLogprobs != nil && *r.TopLogprobs > 0
	case "metadata":
		return len(r.Metadata) > 0
	case "n":
		return r.N != nil && *r.N > 1
	case "parallel_tool_calls":
		return r.ParallelToolCalls != nil && !*r.ParallelToolCalls && len(r.Tools) > 0
	case "reasoning_effort":
		return r.ReasoningEffort != ""
	case "response_format":
		return ResponseFormatType(r.ResponseFormat) != ""
	case "seed":
		return r.Seed != nil
	case "service_tier":
		return r.ServiceTier != "" && r.ServiceTier != "auto"
	case "store":
		return r.Store != nil && *r.Store
	case "user":
		return r.User != ""
	case ImageDetailField:
		for i := range r.Messages {
			if c := r.Messages[i].Content; c != nil {
				for j := range c.Parts {
					if img := c.Parts[j].ImageURL; img != nil && img.Detail != "" && img.Detail != "auto" {
						return true
					}
				}
			}
		}
	}
	return false
}

// SetFields lists, in the order given, which of names the request Sets.
func (r *ChatRequest) SetFields(names ...string) []string {
	var out []string
	for _, n := range names {
		if r.Sets(n) {
			out = append(out, n)
		}
	}
	return out
}

// ResponseFormatType is response_format's type, "" when it asks for nothing (absent,
// null, or "text"), "invalid" when it is not an object with a string type.
func ResponseFormatType(raw []byte) string {
	var s scanner
	s.b = raw
	s.ws()
	if s.i >= len(raw) || raw[s.i] == 'n' {
		return ""
	}
	typ := "invalid"
	s.object(func(name, value []byte, _ int) error {
		if string(name) == "type" && len(value) >= 2 && value[0] == '"' {
			typ = decodeName(value[1 : len(value)-1])
		}
		return nil
	})
	if typ == "text" {
		return ""
	}
	return typ
}

// Advisory reports whether losing the named field leaves the answer as the client relies
// on it: store (OpenAI's retention of the completion), service_tier (which of OpenAI's
// capacity pools serves it), metadata (OpenAI's tags for stored completions), user (an
// abuse-monitoring identifier) and image detail (a resolution hint). A translated backend
// that cannot express one drops it whatever its drop_params says, and says so in
// X-Gavel-Dropped-Params; a field whose loss changes the answer (seed, logprobs, n,
// response_format…) is refused unless drop_params is drop.
func Advisory(name string) bool {
	switch name {
	case "store", "service_tier", "metadata", "user", ImageDetailField:
		return true
	}
	return false
}

// clearTyped removes the typed field name from r, a copy WithoutFields owns (its messages
// and parts are copies too). It reports whether name is a typed field.
func (r *ChatRequest) clearTyped(name string) bool {
	switch name {
	case "frequency_penalty":
		r.FrequencyPenalty = nil
	case "presence_penalty":
		r.PresencePenalty = nil
	case "logit_bias":
		r.LogitBias = nil
	case "logprobs":
		r.Logprobs = nil
	case "top_logprobs":
		r.TopLogprobs = nil
	case "metadata":
		r.Metadata = nil
	case "n":
		r.N = nil
	case "parallel_tool_calls":
		r.ParallelToolCalls = nil
	case "reasoning_effort":
		r.ReasoningEffort = ""
	case "response_format":
		r.ResponseFormat = nil
	case "seed":
		r.Seed = nil
	case "service_tier":
		r.ServiceTier = ""
	case "store":
		r.Store = nil
	case "user":
		r.User = ""
	case ImageDetailField:
		for i := range r.Messages {
			if c := r.Messages[i].Content; c != nil {
				for j := range c.Parts {
					if img := c.Parts[j].ImageURL; img != nil && img.Detail != "" {
						cp := *img
						cp.Detail = ""
						c.Parts[j].ImageURL = &cp
					}
				}
			}
		}
	default:
		return false
	}
	return true
}

// ReasoningBudgets are the thinking budgets, in tokens, that OpenAI's reasoning_effort
// levels translate to for a backend that budgets its thinking in tokens (Anthropic's
// thinking.budget_tokens, Gemini's thinkingConfig.thinkingBudget). minimal is Anthropic's
// smallest budget; xhigh the largest every Gemini 2.5 thinking model accepts. "none" is
// not here: it means no thinking, which each backend says its own way.
var ReasoningBudgets = map[string]int{
	"minimal": 1024,
	"low":     2048,
	"medium":  8192,
	"high":    16384,
	"xhigh":   24576,
}
