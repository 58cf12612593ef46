package gemini

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/gavel-gw/gavel/adapters"
)

// dummyThoughtSignature stands in for the thoughtSignature Gemini 3 requires on the first
// functionCall part of every model turn it is sent back. The real signature cannot make
// the round trip through an OpenAI client, which keeps only id, name and arguments of a
// tool call; this is the value Google documents for history the model did not produce
// itself, and earlier models ignore it.
const dummyThoughtSignature = "skip_thought_signature_validator"

// badRequest is a translation failure: the request cannot be expressed for Gemini. The
// provider fills in its name.
func badRequest(format string, args ...any) *adapters.Error {
	return &adapters.Error{Kind: adapters.KindBadRequest, Message: fmt.Sprintf(format, args...)}
}

// translateRequest converts a canonical request into a GenerateContentRequest. It never
// modifies req. Its errors are *adapters.Error of KindBadRequest without a provider.
func translateRequest(req *adapters.ChatRequest) (*generateRequest, error) {
	if names := refused(req); len(names) > 0 {
		return nil, badRequest("the Gemini API cannot express %s", adapters.QuoteNames(names))
	}
	out := &generateRequest{Contents: make([]content, 0, len(req.Messages))}

	// Gemini knows a tool result by function name, OpenAI by tool_call_id: remember the
	// name each id was given by the latest assistant message that used it.
	callNames := map[string]string{}
	var system []part
	for i := range req.Messages {
		m := &req.Messages[i]
		var role string
		var parts []part
		var err error
		switch m.Role {
		case "system", "developer":
			parts, err = textParts(m.Content, m.Role)
		case "user":
			role = "user"
			parts, err = userParts(m.Content)
		case "assistant":
			role = "model"
			parts, err = assistantParts(m, callNames)
		case "tool", "function":
			role = "user"
			parts, err = toolResultParts(m, callNames)
		default:
			return nil, badRequest("messages[%d]: role %q is not supported", i, m.Role)
		}
		if err != nil {
			if e := adapters.AsError(err); e != nil {
				e.Message = fmt.Sprintf("messages[%d]: %s", i, e.Message)
			}
			return nil, err
		}
		if role == "" {
			system = append(system, parts...)
			continue
		}
		if len(parts) == 0 {
			continue // an empty message: Gemini rejects a content without parts
		}
		if n := len(out.Contents); n > 0 && out.Contents[n-1].Role == role {
			// Gemini wants turns to alternate; consecutive messages of one side, such as
			// the results of parallel tool calls, become one turn.
			out.Contents[n-1].Parts = append(out.Contents[n-1].Parts, parts...)
			continue
		}
		out.Contents = append(out.Contents, content{Role: role, Parts: parts})
	}
	if len(out.Contents) == 0 {
		return nil, badRequest("Gemini needs at least one user or assistant message with content")
	}
	for i := range out.Contents {
		if out.Contents[i].Role != "model" {
			continue
		}
		for j := range out.Contents[i].Parts {
			if p := &out.Contents[i].Parts[j]; p.FunctionCall != nil {
				p.ThoughtSignature = dummyThoughtSignature
				break
			}
		}
	}
	if len(system) > 0 {
		out.SystemInstruction = &content{Parts: system}
	}

	if err := translateTools(req, out); err != nil {
		return nil, err
	}
	gc, err := translateGenerationConfig(req)
	if err != nil {
		return nil, err
	}
	out.GenerationConfig = gc
	return out, nil
}

// textParts takes the text of a system or developer message; Gemini's systemInstruction
// is text only.
func textParts(c *adapters.Content, role string) ([]part, error) {
	if c == nil {
		return nil, nil
	}
	if c.Parts == nil {
		if c.Text == "" {
			return nil, nil
		}
		return []part{{Text: c.Text}}, nil
	}
	out := make([]part, 0, len(c.Parts))
	for _, p := range c.Parts {
		if p.Type != "text" {
			return nil, badRequest("%s content part of type %q is not supported by Gemini's system instruction", role, p.Type)
		}
		if p.Text != "" {
			out = append(out, part{Text: p.Text})
		}
	}
	return out, nil
}

func userParts(c *adapters.Content) ([]part, error) {
	if c == nil {
		return nil, nil
	}
	if c.Parts == nil {
		if c.Text == "" {
			return nil, nil
		}
		return []part{{Text: c.Text}}, nil
	}
	out := make([]part, 0, len(c.Parts))
	for j, p := range c.Parts {
		switch p.Type {
		case "text":
			if p.Text != "" {
				out = append(out, part{Text: p.Text})
			}
		case "image_url":
			if p.ImageURL == nil || p.ImageURL.URL == "" {
				return nil, badRequest("content[%d]: image_url without a url", j)
			}
			ip, err := imagePart(p.ImageURL.URL)
			if err != nil {
				return nil, err
			}
			out = append(out, ip)
		case "input_audio":
			var a struct {
				Data   string `json:"data"`
				Format string `json:"format"`
			}
			if json.Unmarshal(p.InputAudio, &a) != nil || a.Data == "" || !isToken(a.Format) {
				return nil, badRequest("content[%d]: input_audio needs base64 data and a format", j)
			}
			format := strings.ToLower(a.Format)
			out = append(out, part{InlineData: &blob{MimeType: "audio/" + format, Data: a.Data}})
		case "file":
			var f struct {
				FileData string `json:"file_data"`
				FileID   string `json:"file_id"`
				Filename string `json:"filename"`
			}
			if json.Unmarshal(p.File, &f) != nil || f.FileData == "" {
				return nil, badRequest("content[%d]: only files sent inline as file_data reach Gemini; OpenAI file ids do not", j)
			}
			b, ok := parseDataURL(f.FileData)
			if !ok {
				if strings.HasPrefix(f.FileData, "data:") {
					return nil, badRequest("content[%d]: file_data must be a base64 data: URL", j)
				}
				b = &blob{MimeType: mimeFromName(f.Filename, "application/pdf"), Data: f.FileData}
			}
			out = append(out, part{InlineData: b})
		default:
			return nil, badRequest("content[%d]: content part of type %q is not supported by Gemini", j, p.Type)
		}
	}
	return out, nil
}

// imagePart turns an image URL into inline data (data: URLs) or a file reference.
func imagePart(raw string) (part, error) {
	if strings.HasPrefix(raw, "data:") {
		b, ok := parseDataURL(raw)
		if !ok {
			return part{}, badRequest("image data: URL must be base64-encoded (data:image/png;base64,...)")
		}
		return part{InlineData: b}, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return part{}, badRequest("image url must be an http(s) or base64 data: URL")
	}
	return part{FileData: &fileData{MimeType: mimeFromName(u.Path, "image/jpeg"), FileURI: raw}}, nil
}

// parseDataURL splits data:MIME;base64,DATA. Parameters before ";base64" (charset=…)
// are dropped; a missing MIME type is taken to be JPEG, the common unlabelled image.
func parseDataURL(s string) (*blob, bool) {
	rest, ok := strings.CutPrefix(s, "data:")
	if !ok {
		return nil, false
	}
	meta, data, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, false
	}
	params := strings.Split(meta, ";")
	if len(params) < 2 || !strings.EqualFold(params[len(params)-1], "base64") {
		return nil, false
	}
	mime := strings.TrimSpace(strings.ToLower(params[0]))
	if mime == "" {
		mime = "image/jpeg"
	}
	return &blob{MimeType: mime, Data: data}, true
}

var mimeByExt = map[string]string{
	".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
	".gif": "image/gif", ".heic": "image/heic", ".heif": "image/heif", ".pdf": "application/pdf",
	".txt": "text/plain", ".wav": "audio/wav", ".mp3": "audio/mp3", ".mp4": "video/mp4",
}

// mimeFromName guesses a MIME type from a file name's extension. A fixed table, not
// mime.TypeByExtension, keeps the guess independent of the host's mime.types.
func mimeFromName(name, fallback string) string {
	if t, ok := mimeByExt[strings.ToLower(path.Ext(name))]; ok {
		return t
	}
	return fallback
}

// isToken reports whether s is a short lower-case-able word, safe inside a MIME type.
func isToken(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if (c < 'a' || c > 'z') && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return true
}

func assistantParts(m *adapters.Message, callNames map[string]string) ([]part, error) {
	var out []part
	if m.Content != nil {
		if text := m.Content.String(); text != "" {
			out = append(out, part{Text: text})
		}
	}
	for j, tc := range m.ToolCalls {
		if tc.Type != "" && tc.Type != "function" {
			return nil, badRequest("tool_calls[%d]: type %q is not supported by Gemini", j, tc.Type)
		}
		if tc.Function.Name == "" {
			return nil, badRequest("tool_calls[%d]: function name is required", j)
		}
		args, err := argsObject(tc.Function.Arguments)
		if err != nil {
			return nil, badRequest("tool_calls[%d] (%s): arguments must be a JSON object: %v", j, tc.Function.Name, err)
		}
		if tc.ID != "" {
			callNames[tc.ID] = tc.Function.Name
		}
		out = append(out, part{FunctionCall: &functionCall{Name: tc.Function.Name, Args: args}})
	}
	return out, nil
}

// argsObject validates tool call arguments: Gemini's args is a Struct, so only a JSON
// object (or nothing) will do.
func argsObject(s string) (json.RawMessage, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return json.RawMessage("{}"), nil
	}
	if !json.Valid([]byte(s)) {
		return nil, fmt.Errorf("invalid JSON")
	}
	if s[0] != '{' {
		return nil, fmt.Errorf("not an object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func toolResultParts(m *adapters.Message, callNames map[string]string) ([]part, error) {
	// The id decides; a name on the message (the legacy "function" role's, or one some
	// clients add to tool messages) is the fallback.
	name, ok := callNames[m.ToolCallID]
	if !ok || m.ToolCallID == "" {
		name = m.Name
	}
	if name == "" {
		return nil, badRequest("tool message refers to tool_call_id %q, which no earlier assistant message called", m.ToolCallID)
	}
	text := m.Content.String()
	var response json.RawMessage
	if t := strings.TrimSpace(text); t != "" && t[0] == '{' && json.Valid([]byte(t)) {
		var buf bytes.Buffer
		_ = json.Compact(&buf, []byte(t)) // valid, so it compacts
		response = buf.Bytes()
	} else {
		response, _ = json.Marshal(struct {
			Content string `json:"content"`
		}{text})
	}
	return []part{{FunctionResponse: &functionResponse{Name: name, Response: response}}}, nil
}

func translateTools(req *adapters.ChatRequest, out *generateRequest) error {
	if len(req.Tools) > 0 {
		decls := make([]functionDeclaration, 0, len(req.Tools))
		for i, t := range req.Tools {
			if t.Type != "" && t.Type != "function" {
				return badRequest("tools[%d]: type %q is not supported by Gemini", i, t.Type)
			}
			if t.Function.Name == "" {
				return badRequest("tools[%d]: function name is required", i)
			}
			d := functionDeclaration{Name: t.Function.Name, Description: t.Function.Description}
			if len(bytes.TrimSpace(t.Function.Parameters)) > 0 && !isNull(bytes.TrimSpace(t.Function.Parameters)) {
				params, err := sanitizeSchema(t.Function.Parameters, false)
				if err != nil {
					return badRequest("tools[%d] (%s): parameters: %v", i, t.Function.Name, err)
				}
				// A function without arguments has no parameters: Gemini rejects an
				// OBJECT schema whose properties are empty.
				if hasProperties(params) {
					d.Parameters = params
				}
			}
			decls = append(decls, d)
		}
		out.Tools = []tool{{FunctionDeclarations: decls}}
	}

	choice := bytes.TrimSpace(req.ToolChoice)
	if len(choice) == 0 || isNull(choice) {
		return nil
	}
	var mode string
	var allowed []string
	if choice[0] == '"' {
		var s string
		if err := json.Unmarshal(choice, &s); err != nil {
			return badRequest("tool_choice: %v", err)
		}
		switch s {
		case "auto":
			mode = "AUTO"
		case "none":
			mode = "NONE"
		case "required":
			mode = "ANY"
		default:
			return badRequest("tool_choice %q is not supported", s)
		}
	} else {
		var obj struct {
			Type     string `json:"type"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		if err := json.Unmarshal(choice, &obj); err != nil {
			return badRequest("tool_choice: %v", err)
		}
		if obj.Type != "function" || obj.Function.Name == "" {
			return badRequest("tool_choice must be auto, none, required or {\"type\":\"function\",\"function\":{\"name\":...}}")
		}
		mode, allowed = "ANY", []string{obj.Function.Name}
	}
	if len(req.Tools) == 0 && mode != "NONE" {
		// OpenAI rejects a tool_choice without tools; Gemini would too, less clearly.
		return badRequest("tool_choice is set but no tools are declared")
	}
	if len(req.Tools) == 0 {
		return nil // "none" without tools: nothing to configure
	}
	out.ToolConfig = &toolConfig{FunctionCallingConfig: functionCallingConfig{Mode: mode, AllowedFunctionNames: allowed}}
	return nil
}

// hasProperties reports whether a sanitised schema declares any property.
func hasProperties(schema json.RawMessage) bool {
	if schema == nil {
		return false
	}
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
		AnyOf      []json.RawMessage          `json:"anyOf"`
	}
	if json.Unmarshal(schema, &s) != nil {
		return true // let Gemini judge
	}
	return len(s.Properties) > 0 || len(s.AnyOf) > 0
}

func translateGenerationConfig(req *adapters.ChatRequest) (*generationConfig, error) {
	gc := &generationConfig{
		Temperature:    req.Temperature,
		TopP:           req.TopP,
		CandidateCount: req.N,
	}
	if raw, ok := req.Extra.Get("top_k"); ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		k, err := strconv.Atoi(string(bytes.TrimSpace(raw)))
		if err != nil || k < 1 {
			return nil, badRequest("top_k must be a positive integer")
		}
		gc.TopK = &k
	}
	gc.MaxOutputTokens = req.MaxCompletionTokens
	if gc.MaxOutputTokens == nil {
		gc.MaxOutputTokens = req.MaxTokens
	}
	for _, s := range req.Stop {
		if s != "" {
			gc.StopSequences = append(gc.StopSequences, s)
		}
	}
	if req.Seed != nil {
		if *req.Seed < math.MinInt32 || *req.Seed > math.MaxInt32 {
			return nil, badRequest("seed %d does not fit Gemini's 32-bit seed", *req.Seed)
		}
		gc.Seed = req.Seed
	}
	// Zero is the default; not sending it spares models that reject penalties altogether.
	if req.PresencePenalty != nil && *req.PresencePenalty != 0 {
		gc.PresencePenalty = req.PresencePenalty
	}
	if req.FrequencyPenalty != nil && *req.FrequencyPenalty != 0 {
		gc.FrequencyPenalty = req.FrequencyPenalty
	}

	if rf := bytes.TrimSpace(req.ResponseFormat); len(rf) > 0 && !isNull(rf) {
		var f struct {
			Type       string `json:"type"`
			JSONSchema *struct {
				Schema json.RawMessage `json:"schema"`
			} `json:"json_schema"`
		}
		if err := json.Unmarshal(rf, &f); err != nil {
			return nil, badRequest("response_format: %v", err)
		}
		switch f.Type {
		case "text", "":
		case "json_object":
			gc.ResponseMimeType = "application/json"
		case "json_schema":
			gc.ResponseMimeType = "application/json"
			if f.JSONSchema != nil && len(bytes.TrimSpace(f.JSONSchema.Schema)) > 0 && !isNull(bytes.TrimSpace(f.JSONSchema.Schema)) {
				schema, err := sanitizeSchema(f.JSONSchema.Schema, true)
				if err != nil {
					return nil, badRequest("response_format.json_schema.schema: %v", err)
				}
				gc.ResponseSchema = schema
			}
		default:
			return nil, badRequest("response_format type %q is not supported by Gemini", f.Type)
		}
	}
	tc, err := thinkingBudget(req.ReasoningEffort)
	if err != nil {
		return nil, err
	}
	gc.ThinkingConfig = tc
	if gc.Temperature == nil && gc.TopP == nil && gc.TopK == nil && gc.CandidateCount == nil && gc.MaxOutputTokens == nil &&
		gc.StopSequences == nil && gc.Seed == nil && gc.PresencePenalty == nil && gc.FrequencyPenalty == nil &&
		gc.ResponseMimeType == "" && gc.ThinkingConfig == nil {
		return nil, nil
	}
	return gc, nil
}

// toChatResponse converts a GenerateContentResponse. id and created are the response's
// envelope, chosen by the caller.
func toChatResponse(g *generateResponse, model, id string, created int64) (*adapters.ChatResponse, *adapters.Error) {
	if len(g.Candidates) == 0 {
		return nil, noCandidates(g)
	}
	out := &adapters.ChatResponse{
		ID:      id,
		Object:  adapters.ObjectChatCompletion,
		Created: created,
		Model:   firstNonEmpty(string(g.ModelVersion), model),
		Choices: make([]adapters.Choice, len(g.Candidates)),
		Usage:   toUsage(&g.UsageMetadata),
	}
	calls := 0
	var text strings.Builder
	for i := range g.Candidates {
		c := &g.Candidates[i]
		text.Reset()
		msg := adapters.Message{Role: "assistant"}
		for _, p := range c.Content.Parts {
			switch {
			case p.Thought:
				// A thought summary is not the answer, and OpenAI's message has no field
				// for it; reasoning tokens are still counted in usage.
			case p.FunctionCall != nil:
				msg.ToolCalls = append(msg.ToolCalls, adapters.ToolCall{
					ID:       callID(calls),
					Type:     "function",
					Function: adapters.FunctionCall{Name: p.FunctionCall.Name, Arguments: compactArgs(p.FunctionCall.Args)},
				})
				calls++
			default:
				text.WriteString(p.Text)
			}
		}
		finish := finishReason(c.FinishReason, len(msg.ToolCalls) > 0)
		switch {
		case text.Len() > 0:
			msg.Content = adapters.TextContent(text.String())
		case len(msg.ToolCalls) == 0 && finish != adapters.FinishContentFilter:
			msg.Content = adapters.TextContent("")
		}
		out.Choices[i] = adapters.Choice{Index: i, Message: msg, FinishReason: finish}
	}
	return out, nil
}

// noCandidates explains a response without candidates: a blocked prompt, or nothing.
func noCandidates(g *generateResponse) *adapters.Error {
	if g.PromptFeedback != nil && g.PromptFeedback.BlockReason != "" {
		reason := g.PromptFeedback.BlockReason // the caller cleans upstream text
		return &adapters.Error{Kind: adapters.KindContentFilter, Code: reason,
			Message: "Gemini blocked the prompt (" + reason + ")"}
	}
	return &adapters.Error{Kind: adapters.KindProtocol, Message: "Gemini returned no candidates"}
}

// finishReason maps Gemini's FinishReason onto OpenAI's.
func finishReason(r string, toolCalls bool) string {
	switch r {
	case "MAX_TOKENS":
		return adapters.FinishLength
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
		"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION":
		return adapters.FinishContentFilter
	}
	if toolCalls && (r == "STOP" || r == "" || r == "FINISH_REASON_UNSPECIFIED") {
		return adapters.FinishToolCalls
	}
	return adapters.FinishStop
}

// toUsage converts usageMetadata; nil when Gemini sent none. Tool-use prompt tokens
// (tokens of results of Gemini's built-in tools) are billed as input, so they count
// as prompt tokens and prompt + completion stays equal to total.
func toUsage(u *usageMetadata) *adapters.Usage {
	if *u == (usageMetadata{}) {
		return nil
	}
	out := &adapters.Usage{
		PromptTokens:     u.PromptTokenCount + u.ToolUsePromptTokenCount,
		CompletionTokens: u.CandidatesTokenCount + u.ThoughtsTokenCount,
		TotalTokens:      u.TotalTokenCount,
	}
	if out.TotalTokens == 0 {
		out.TotalTokens = out.PromptTokens + out.CompletionTokens
	}
	if u.CachedContentTokenCount > 0 {
		out.PromptTokensDetails = &adapters.PromptTokensDetails{CachedTokens: u.CachedContentTokenCount}
	}
	if u.ThoughtsTokenCount > 0 {
		out.CompletionTokensDetails = &adapters.CompletionTokensDetails{ReasoningTokens: u.ThoughtsTokenCount}
	}
	return out
}

// callID names the n-th tool call of a response. Gemini gives calls no id (or one that
// is not stable across model versions), so the id is the ordinal: deterministic, and
// resolved back to a function name by the request translation.
func callID(n int) string { return "call_" + strconv.Itoa(n) }

// compactArgs renders functionCall args as OpenAI's arguments string.
func compactArgs(args json.RawMessage) string {
	args = bytes.TrimSpace(args)
	if len(args) == 0 || isNull(args) {
		return "{}"
	}
	var buf bytes.Buffer
	if json.Compact(&buf, args) != nil {
		return "{}"
	}
	return buf.String()
}

func isNull(raw []byte) bool { return bytes.Equal(raw, []byte("null")) }

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
