package adapters

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"

	"github.com/gavel-gw/gavel/internal/jsonenc"
)

// The canonical wire types encode themselves without reflection: every chat answer,
// every stream chunk and every request sent to an OpenAI-compatible upstream goes through
// these, and through encoding/json each cost a dozen allocations and most of the time of
// writing it. AppendJSON writes what json.Marshal writes, byte for byte (FuzzAppendJSON
// holds each type to it), and fails where json.Marshal fails: a NaN or infinite float,
// a json.RawMessage that is not valid JSON.

// errNotFinite and errInvalidRaw are the encoders' failures, where json.Marshal fails.
var (
	errNotFinite  = errors.New("json: unsupported value: NaN or infinite float")
	errInvalidRaw = errors.New("json: invalid raw JSON value")
)

// enc is an encoding in progress: the first failure is kept and the rest is appended
// regardless, so that the encoders read as straight lists of fields.
type enc struct {
	b   []byte
	err error
}

func (e *enc) raw(s string) { e.b = append(e.b, s...) }

func (e *enc) str(s string) { e.b = jsonenc.String(e.b, s) }

func (e *enc) int(n int64) { e.b = strconv.AppendInt(e.b, n, 10) }

func (e *enc) bool(v bool) { e.b = strconv.AppendBool(e.b, v) }

func (e *enc) float(f float64) {
	if !jsonenc.Finite(f) {
		e.err = errNotFinite
		e.b = append(e.b, '0')
		return
	}
	e.b = jsonenc.Float(e.b, f)
}

// rawJSON writes a json.RawMessage as json.Marshal does: compacted and HTML-escaped;
// nil as null.
func (e *enc) rawJSON(r json.RawMessage) {
	if r == nil {
		e.raw("null")
		return
	}
	if !json.Valid(r) {
		e.err = errInvalidRaw
		e.raw("null")
		return
	}
	e.b = jsonenc.Raw(e.b, r)
}

// extras writes extra fields before an object's closing brace: the name as a JSON string
// and the value as it was received (verbatim), or as json.Marshal would re-encode it
// (compact).
func (e *enc) extras(f Fields, compact bool) {
	for _, x := range f {
		e.b = append(e.b, ',')
		e.str(x.Name)
		e.b = append(e.b, ':')
		if compact {
			e.rawJSON(x.Value)
		} else {
			e.b = append(e.b, x.Value...)
		}
	}
}

// Extra-field modes of a request's encoding.
const (
	extrasNone     = iota // json.Marshal: typed fields only
	extrasVerbatim        // MarshalWire: extra values as received
	extrasCompact         // AppendWire: json.Marshal of MarshalWire's bytes
)

// AppendJSON appends the response's JSON to b, as json.Marshal writes it.
func (r *ChatResponse) AppendJSON(b []byte) ([]byte, error) {
	e := enc{b: b}
	e.raw(`{"id":`)
	e.str(r.ID)
	e.raw(`,"object":`)
	e.str(r.Object)
	e.raw(`,"created":`)
	e.int(r.Created)
	e.raw(`,"model":`)
	e.str(r.Model)
	e.raw(`,"choices":`)
	if r.Choices == nil {
		e.raw("null")
	} else {
		e.b = append(e.b, '[')
		for i := range r.Choices {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			c := &r.Choices[i]
			e.raw(`{"index":`)
			e.int(int64(c.Index))
			e.raw(`,"message":`)
			e.message(&c.Message, extrasNone)
			e.raw(`,"finish_reason":`)
			e.str(c.FinishReason)
			if len(c.Logprobs) > 0 {
				e.raw(`,"logprobs":`)
				e.rawJSON(c.Logprobs)
			}
			e.b = append(e.b, '}')
		}
		e.b = append(e.b, ']')
	}
	e.usage(r.Usage)
	e.tail(r.SystemFingerprint, r.ServiceTier)
	return e.b, e.err
}

// AppendJSON appends the chunk's JSON to b, as json.Marshal writes it.
func (c *ChatChunk) AppendJSON(b []byte) ([]byte, error) {
	if l := c.layout; l != nil && l.fits(c) {
		return l.appendText(b, *c.Choices[0].Delta.Content), nil
	}
	return c.appendJSON(b, nil)
}

// appendJSON is AppendJSON in full; text, when set, is where it wrote the first
// choice's text's string (chunk layouts).
func (c *ChatChunk) appendJSON(b []byte, text *[2]int) ([]byte, error) {
	e := enc{b: b}
	e.raw(`{"id":`)
	e.str(c.ID)
	e.raw(`,"object":`)
	e.str(c.Object)
	e.raw(`,"created":`)
	e.int(c.Created)
	e.raw(`,"model":`)
	e.str(c.Model)
	e.raw(`,"choices":`)
	if c.Choices == nil {
		e.raw("null")
	} else {
		e.b = append(e.b, '[')
		for i := range c.Choices {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			ch := &c.Choices[i]
			e.raw(`{"index":`)
			e.int(int64(ch.Index))
			e.raw(`,"delta":{`)
			d := &ch.Delta
			first := true
			field := func(name string) {
				if !first {
					e.b = append(e.b, ',')
				}
				first = false
				e.raw(name)
			}
			if d.Role != "" {
				field(`"role":`)
				e.str(d.Role)
			}
			if d.Content != nil {
				field(`"content":`)
				at := len(e.b)
				e.str(*d.Content)
				if text != nil && i == 0 {
					text[0], text[1] = at, len(e.b)
				}
			}
			if d.Refusal != nil {
				field(`"refusal":`)
				e.str(*d.Refusal)
			}
			if len(d.ToolCalls) > 0 {
				field(`"tool_calls":`)
				e.toolCalls(d.ToolCalls)
			}
			e.raw(`},"finish_reason":`)
			if ch.FinishReason == nil {
				e.raw("null")
			} else {
				e.str(*ch.FinishReason)
			}
			if len(ch.Logprobs) > 0 {
				e.raw(`,"logprobs":`)
				e.rawJSON(ch.Logprobs)
			}
			e.b = append(e.b, '}')
		}
		e.b = append(e.b, ']')
	}
	e.usage(c.Usage)
	e.tail(c.SystemFingerprint, c.ServiceTier)
	return e.b, e.err
}

// tail writes the optional end of a response or chunk and closes it.
func (e *enc) tail(fingerprint, tier string) {
	if fingerprint != "" {
		e.raw(`,"system_fingerprint":`)
		e.str(fingerprint)
	}
	if tier != "" {
		e.raw(`,"service_tier":`)
		e.str(tier)
	}
	e.b = append(e.b, '}')
}

func (e *enc) usage(u *Usage) {
	if u == nil {
		return
	}
	e.raw(`,"usage":{"prompt_tokens":`)
	e.int(int64(u.PromptTokens))
	e.raw(`,"completion_tokens":`)
	e.int(int64(u.CompletionTokens))
	e.raw(`,"total_tokens":`)
	e.int(int64(u.TotalTokens))
	if d := u.PromptTokensDetails; d != nil {
		e.raw(`,"prompt_tokens_details":{"cached_tokens":`)
		e.int(int64(d.CachedTokens))
		if d.AudioTokens != 0 {
			e.raw(`,"audio_tokens":`)
			e.int(int64(d.AudioTokens))
		}
		e.b = append(e.b, '}')
	}
	if d := u.CompletionTokensDetails; d != nil {
		e.raw(`,"completion_tokens_details":{"reasoning_tokens":`)
		e.int(int64(d.ReasoningTokens))
		if d.AudioTokens != 0 {
			e.raw(`,"audio_tokens":`)
			e.int(int64(d.AudioTokens))
		}
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, '}')
}

// message writes a message; its extra fields (and its content parts') per mode.
func (e *enc) message(m *Message, mode int) {
	e.raw(`{"role":`)
	e.str(m.Role)
	if m.Content != nil {
		e.raw(`,"content":`)
		if m.Content.Parts == nil {
			e.str(m.Content.Text)
		} else {
			e.b = append(e.b, '[')
			for i := range m.Content.Parts {
				if i > 0 {
					e.b = append(e.b, ',')
				}
				e.part(&m.Content.Parts[i], mode)
			}
			e.b = append(e.b, ']')
		}
	}
	if m.Name != "" {
		e.raw(`,"name":`)
		e.str(m.Name)
	}
	if len(m.ToolCalls) > 0 {
		e.raw(`,"tool_calls":`)
		e.toolCalls(m.ToolCalls)
	}
	if m.ToolCallID != "" {
		e.raw(`,"tool_call_id":`)
		e.str(m.ToolCallID)
	}
	if m.Refusal != "" {
		e.raw(`,"refusal":`)
		e.str(m.Refusal)
	}
	if mode != extrasNone {
		e.extras(m.Extra, mode == extrasCompact)
	}
	e.b = append(e.b, '}')
}

func (e *enc) part(p *ContentPart, mode int) {
	e.raw(`{"type":`)
	e.str(p.Type)
	if p.Text != "" {
		e.raw(`,"text":`)
		e.str(p.Text)
	}
	if p.ImageURL != nil {
		e.raw(`,"image_url":{"url":`)
		e.str(p.ImageURL.URL)
		if p.ImageURL.Detail != "" {
			e.raw(`,"detail":`)
			e.str(p.ImageURL.Detail)
		}
		e.b = append(e.b, '}')
	}
	if len(p.InputAudio) > 0 {
		e.raw(`,"input_audio":`)
		e.rawJSON(p.InputAudio)
	}
	if len(p.File) > 0 {
		e.raw(`,"file":`)
		e.rawJSON(p.File)
	}
	if mode != extrasNone {
		e.extras(p.Extra, mode == extrasCompact)
	}
	e.b = append(e.b, '}')
}

func (e *enc) toolCalls(calls []ToolCall) {
	e.b = append(e.b, '[')
	for i := range calls {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		tc := &calls[i]
		e.b = append(e.b, '{')
		if tc.Index != nil {
			e.raw(`"index":`)
			e.int(int64(*tc.Index))
			e.b = append(e.b, ',')
		}
		if tc.ID != "" {
			e.raw(`"id":`)
			e.str(tc.ID)
			e.b = append(e.b, ',')
		}
		if tc.Type != "" {
			e.raw(`"type":`)
			e.str(tc.Type)
			e.b = append(e.b, ',')
		}
		e.raw(`"function":{`)
		if tc.Function.Name != "" {
			e.raw(`"name":`)
			e.str(tc.Function.Name)
			e.b = append(e.b, ',')
		}
		e.raw(`"arguments":`)
		e.str(tc.Function.Arguments)
		e.raw(`}}`)
	}
	e.b = append(e.b, ']')
}

// AppendJSON appends the request's JSON to b, as json.Marshal writes it: the typed
// fields only.
func (r *ChatRequest) AppendJSON(b []byte) ([]byte, error) {
	return r.appendJSON(b, extrasNone)
}

// AppendWire appends the body an OpenAI-compatible upstream is sent for r: MarshalWire's
// members (the typed fields and every extra field) as json.Marshal writes a
// json.RawMessage of them, extra values compacted and HTML-escaped.
func (r *ChatRequest) AppendWire(b []byte) ([]byte, error) {
	return r.appendJSON(b, extrasCompact)
}

// SizeHint is about how many bytes the request's encoding takes: its texts and a margin
// for the rest, so that an encoding into a buffer of this size rarely grows it.
func (r *ChatRequest) SizeHint() int {
	n := 256 + len(r.Model)
	for i := range r.Messages {
		m := &r.Messages[i]
		n += 48
		if m.Content != nil {
			n += len(m.Content.Text)
			for j := range m.Content.Parts {
				n += 48 + len(m.Content.Parts[j].Text)
			}
		}
		for _, f := range m.Extra {
			n += len(f.Name) + len(f.Value) + 4
		}
	}
	for _, f := range r.Extra {
		n += len(f.Name) + len(f.Value) + 4
	}
	for i := range r.Tools {
		n += 64 + len(r.Tools[i].Function.Description) + len(r.Tools[i].Function.Parameters)
	}
	return n
}

func (r *ChatRequest) appendJSON(b []byte, mode int) ([]byte, error) {
	e := enc{b: b}
	e.raw(`{"model":`)
	e.str(r.Model)
	e.raw(`,"messages":`)
	if r.Messages == nil {
		e.raw("null")
	} else {
		e.b = append(e.b, '[')
		for i := range r.Messages {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.message(&r.Messages[i], mode)
		}
		e.b = append(e.b, ']')
	}
	if r.Stream {
		e.raw(`,"stream":true`)
	}
	if r.StreamOptions != nil {
		if r.StreamOptions.IncludeUsage {
			e.raw(`,"stream_options":{"include_usage":true}`)
		} else {
			e.raw(`,"stream_options":{}`)
		}
	}
	e.optInt(`,"max_tokens":`, r.MaxTokens)
	e.optInt(`,"max_completion_tokens":`, r.MaxCompletionTokens)
	e.optFloat(`,"temperature":`, r.Temperature)
	e.optFloat(`,"top_p":`, r.TopP)
	e.optInt(`,"n":`, r.N)
	if len(r.Stop) > 0 {
		e.raw(`,"stop":[`)
		for i, s := range r.Stop {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.str(s)
		}
		e.b = append(e.b, ']')
	}
	e.optFloat(`,"presence_penalty":`, r.PresencePenalty)
	e.optFloat(`,"frequency_penalty":`, r.FrequencyPenalty)
	if len(r.LogitBias) > 0 {
		e.raw(`,"logit_bias":`)
		e.intMap(r.LogitBias)
	}
	e.optBool(`,"logprobs":`, r.Logprobs)
	e.optInt(`,"top_logprobs":`, r.TopLogprobs)
	if r.Seed != nil {
		e.raw(`,"seed":`)
		e.int(*r.Seed)
	}
	if r.User != "" {
		e.raw(`,"user":`)
		e.str(r.User)
	}
	if len(r.Tools) > 0 {
		e.raw(`,"tools":[`)
		for i := range r.Tools {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			t := &r.Tools[i]
			e.raw(`{"type":`)
			e.str(t.Type)
			e.raw(`,"function":{"name":`)
			e.str(t.Function.Name)
			if t.Function.Description != "" {
				e.raw(`,"description":`)
				e.str(t.Function.Description)
			}
			if len(t.Function.Parameters) > 0 {
				e.raw(`,"parameters":`)
				e.rawJSON(t.Function.Parameters)
			}
			e.optBool(`,"strict":`, t.Function.Strict)
			e.raw(`}}`)
		}
		e.b = append(e.b, ']')
	}
	if len(r.ToolChoice) > 0 {
		e.raw(`,"tool_choice":`)
		e.rawJSON(r.ToolChoice)
	}
	e.optBool(`,"parallel_tool_calls":`, r.ParallelToolCalls)
	if len(r.ResponseFormat) > 0 {
		e.raw(`,"response_format":`)
		e.rawJSON(r.ResponseFormat)
	}
	if r.ReasoningEffort != "" {
		e.raw(`,"reasoning_effort":`)
		e.str(r.ReasoningEffort)
	}
	if r.ServiceTier != "" {
		e.raw(`,"service_tier":`)
		e.str(r.ServiceTier)
	}
	e.optBool(`,"store":`, r.Store)
	if len(r.Metadata) > 0 {
		e.raw(`,"metadata":`)
		e.b = jsonenc.StringMap(e.b, r.Metadata)
	}
	if mode != extrasNone {
		e.extras(r.Extra, mode == extrasCompact)
	}
	e.b = append(e.b, '}')
	return e.b, e.err
}

func (e *enc) optInt(name string, n *int) {
	if n != nil {
		e.raw(name)
		e.int(int64(*n))
	}
}

func (e *enc) optFloat(name string, f *float64) {
	if f != nil {
		e.raw(name)
		e.float(*f)
	}
}

func (e *enc) optBool(name string, v *bool) {
	if v != nil {
		e.raw(name)
		e.bool(*v)
	}
}

// intMap writes a map[string]int as encoding/json does: keys sorted.
func (e *enc) intMap(m map[string]int) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.b = append(e.b, '{')
	for i, k := range keys {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.str(k)
		e.b = append(e.b, ':')
		e.int(int64(m[k]))
	}
	e.b = append(e.b, '}')
}
