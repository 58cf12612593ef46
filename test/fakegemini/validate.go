package fakegemini

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Fields a GenerateContentRequest may have at the top level, in both spellings the proto3
// JSON parser accepts.
var generateFields = fieldSet("model", "contents", "tools", "toolConfig", "safetySettings",
	"systemInstruction", "generationConfig", "cachedContent")

// The members of Part's "data" oneof.
var dataFields = fieldSet("text", "inlineData", "fileData", "functionCall", "functionResponse",
	"executableCode", "codeExecutionResult")

var embedFields = fieldSet("model", "content", "taskType", "title", "outputDimensionality")

// fieldSet maps each lowerCamelCase name and its snake_case form to the camel name.
func fieldSet(names ...string) map[string]string {
	set := map[string]string{}
	for _, n := range names {
		set[n] = n
		set[snake(n)] = n
	}
	return set
}

// snake is the snake_case form of a lowerCamelCase proto field name.
func snake(camel string) string {
	var sb strings.Builder
	for _, r := range camel {
		if r >= 'A' && r <= 'Z' {
			sb.WriteByte('_')
			r += 'a' - 'A'
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// unknownField returns Gemini's message for the first (sorted) key of obj not in known.
func unknownField(obj map[string]any, known map[string]string, prefix string) string {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := known[k]; !ok {
			return fmt.Sprintf("Invalid JSON payload received. Unknown name %q%s: Cannot find field.", k, prefix)
		}
	}
	return ""
}

// get returns obj's field in either spelling.
func get(obj map[string]any, camel string) (any, bool) {
	if v, ok := obj[camel]; ok {
		return v, true
	}
	v, ok := obj[snake(camel)]
	return v, ok
}

// validateGenerate checks a decoded GenerateContentRequest the way Gemini does for the
// basics and returns the INVALID_ARGUMENT message, or "" when the body is acceptable.
func validateGenerate(body map[string]any) string {
	if msg := unknownField(body, generateFields, ""); msg != "" {
		return msg
	}
	raw, _ := body["contents"]
	contents, ok := raw.([]any)
	if raw != nil && !ok {
		return `Invalid JSON payload received. Unknown name "contents": Proto field is not repeating, cannot start list.`
	}
	if len(contents) == 0 {
		return "* GenerateContentRequest.contents: contents is not specified\n"
	}
	for i, raw := range contents {
		c, ok := raw.(map[string]any)
		if !ok {
			return fmt.Sprintf("Invalid JSON payload received. Expected an object for contents[%d].", i)
		}
		if role, _ := c["role"].(string); role != "" && role != "user" && role != "model" {
			return "Please use a valid role: user, model."
		}
		if msg := validateParts(c["parts"], fmt.Sprintf("GenerateContentRequest.contents[%d]", i)); msg != "" {
			return msg
		}
	}
	if si, ok := get(body, "systemInstruction"); ok {
		c, ok := si.(map[string]any)
		if !ok {
			return "Invalid JSON payload received. Expected an object for system_instruction."
		}
		if msg := validateParts(c["parts"], "GenerateContentRequest.system_instruction"); msg != "" {
			return msg
		}
	}
	return ""
}

// validateParts checks a Content's parts: a non-empty list of parts with one data field each.
func validateParts(raw any, where string) string {
	parts, _ := raw.([]any)
	if len(parts) == 0 {
		return fmt.Sprintf("* %s.parts: contents.parts must not be empty.\n", where)
	}
	for j, raw := range parts {
		p, ok := raw.(map[string]any)
		if !ok {
			return fmt.Sprintf("Invalid JSON payload received. Expected an object for %s.parts[%d].", where, j)
		}
		var set []string
		for k := range p {
			if camel, ok := dataFields[k]; ok {
				set = append(set, camel)
			}
		}
		sort.Strings(set)
		switch {
		case len(set) == 0:
			return fmt.Sprintf("* %s.parts[%d].data: required oneof field 'data' must have one initialized field\n", where, j)
		case len(set) > 1:
			return fmt.Sprintf("Invalid value at '%s.parts[%d].data' (oneof), oneof field 'data' is already set. Cannot set '%s'",
				strings.TrimPrefix(where, "GenerateContentRequest."), j, set[1])
		}
	}
	return ""
}

// validateEmbed checks one EmbedContentRequest for the model of the URL and returns the
// INVALID_ARGUMENT message and the request's text and dimensionality.
func validateEmbed(req map[string]any, model, where string, modelRequired bool) (msg, text string, dims int) {
	if msg := unknownField(req, embedFields, ""); msg != "" {
		return msg, "", 0
	}
	switch m, _ := req["model"].(string); {
	case m == "" && modelRequired:
		return fmt.Sprintf("* %s.model: model is required\n", where), "", 0
	case m != "" && m != "models/"+model:
		return fmt.Sprintf("* %s.model: model %q does not match the model of the URL %q\n", where, m, "models/"+model), "", 0
	}
	c, ok := req["content"].(map[string]any)
	if !ok {
		return fmt.Sprintf("* %s.content: content is required\n", where), "", 0
	}
	parts, _ := c["parts"].([]any)
	if len(parts) == 0 {
		return fmt.Sprintf("* %s.content.parts: contents.parts must not be empty.\n", where), "", 0
	}
	var sb strings.Builder
	for j, raw := range parts {
		p, _ := raw.(map[string]any)
		t, ok := p["text"].(string)
		if !ok {
			return fmt.Sprintf("* %s.content.parts[%d].data: required oneof field 'data' must have one initialized field\n", where, j), "", 0
		}
		sb.WriteString(t)
	}
	dims = DefaultEmbeddingDims
	if v, ok := get(req, "outputDimensionality"); ok {
		n, isNumber := v.(float64)
		if !isNumber || n != math.Trunc(n) {
			return fmt.Sprintf("Invalid value at '%s.output_dimensionality' (TYPE_INT32)", where), "", 0
		}
		if n < 1 || n > MaxEmbeddingDims {
			return fmt.Sprintf("* %s.output_dimensionality: must be between 1 and %d\n", where, MaxEmbeddingDims), "", 0
		}
		dims = int(n)
	}
	return "", sb.String(), dims
}
