package responses

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Every event a stream sends, and the response object the lifecycle events carry,
// encode themselves without reflection: AppendJSON writes what json.Marshal would, byte
// for byte (FuzzAppendJSON and FuzzResponseAppendJSON hold them to it), into the
// caller's buffer. A stream writes the response object three times and an added and a
// done event per item and content part; through encoding/json those cost a Responses
// stream a fifth more CPU than a chat stream of the same answer.
//
// The json.RawMessage fields (tools, tool_choice, text.format) hold JSON that was
// decoded from the client's request, so it is valid; they are written compacted and
// HTML-escaped, as json.Marshal writes a RawMessage. A nil or empty RawMessage is
// written as null (json.Marshal writes null for nil and fails on empty).

// AppendJSON appends the event's JSON to b.
func (e *textDeltaEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"item_id":`...)
	b = appendString(b, e.ItemID)
	b = append(b, `,"output_index":`...)
	b = strconv.AppendInt(b, int64(e.OutputIndex), 10)
	b = append(b, `,"content_index":`...)
	b = strconv.AppendInt(b, int64(e.ContentIndex), 10)
	b = append(b, `,"delta":`...)
	b = appendString(b, e.Delta)
	b = append(b, `,"logprobs":`...)
	b = appendRawList(b, e.Logprobs)
	b = append(b, `,"sequence_number":`...)
	b = strconv.AppendInt(b, int64(e.SequenceNumber), 10)
	return append(b, '}')
}

// AppendJSON appends the event's JSON to b.
func (e *textDoneEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"item_id":`...)
	b = appendString(b, e.ItemID)
	b = append(b, `,"output_index":`...)
	b = strconv.AppendInt(b, int64(e.OutputIndex), 10)
	b = append(b, `,"content_index":`...)
	b = strconv.AppendInt(b, int64(e.ContentIndex), 10)
	b = append(b, `,"text":`...)
	b = appendString(b, e.Text)
	b = append(b, `,"logprobs":`...)
	b = appendRawList(b, e.Logprobs)
	b = append(b, `,"sequence_number":`...)
	b = strconv.AppendInt(b, int64(e.SequenceNumber), 10)
	return append(b, '}')
}

// AppendJSON appends the event's JSON to b.
func (e *argsDeltaEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"item_id":`...)
	b = appendString(b, e.ItemID)
	b = append(b, `,"output_index":`...)
	b = strconv.AppendInt(b, int64(e.OutputIndex), 10)
	b = append(b, `,"delta":`...)
	b = appendString(b, e.Delta)
	b = append(b, `,"sequence_number":`...)
	b = strconv.AppendInt(b, int64(e.SequenceNumber), 10)
	return append(b, '}')
}

// AppendJSON appends the event's JSON to b.
func (e *argsDoneEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"item_id":`...)
	b = appendString(b, e.ItemID)
	b = append(b, `,"name":`...)
	b = appendString(b, e.Name)
	b = append(b, `,"output_index":`...)
	b = strconv.AppendInt(b, int64(e.OutputIndex), 10)
	b = append(b, `,"arguments":`...)
	b = appendString(b, e.Arguments)
	b = append(b, `,"sequence_number":`...)
	b = strconv.AppendInt(b, int64(e.SequenceNumber), 10)
	return append(b, '}')
}

// AppendJSON appends the event's JSON to b.
func (e *lifecycleEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"response":`...)
	if e.Response == nil {
		b = append(b, "null"...)
	} else {
		b = e.Response.AppendJSON(b)
	}
	b = append(b, `,"sequence_number":`...)
	b = strconv.AppendInt(b, int64(e.SequenceNumber), 10)
	return append(b, '}')
}

// AppendJSON appends the event's JSON to b.
func (e *itemEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"output_index":`...)
	b = strconv.AppendInt(b, int64(e.OutputIndex), 10)
	b = append(b, `,"item":`...)
	b = e.Item.AppendJSON(b)
	b = append(b, `,"sequence_number":`...)
	b = strconv.AppendInt(b, int64(e.SequenceNumber), 10)
	return append(b, '}')
}

// AppendJSON appends the event's JSON to b.
func (e *partEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"item_id":`...)
	b = appendString(b, e.ItemID)
	b = append(b, `,"output_index":`...)
	b = strconv.AppendInt(b, int64(e.OutputIndex), 10)
	b = append(b, `,"content_index":`...)
	b = strconv.AppendInt(b, int64(e.ContentIndex), 10)
	b = append(b, `,"part":`...)
	b = e.Part.AppendJSON(b)
	b = append(b, `,"sequence_number":`...)
	b = strconv.AppendInt(b, int64(e.SequenceNumber), 10)
	return append(b, '}')
}

// AppendJSON appends the event's JSON to b.
func (e *errorEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"code":`...)
	b = appendString(b, e.Code)
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message)
	b = append(b, `,"param":`...)
	b = appendOptString(b, e.Param)
	b = append(b, `,"sequence_number":`...)
	b = strconv.AppendInt(b, int64(e.SequenceNumber), 10)
	return append(b, '}')
}

// AppendJSON appends the response object's JSON to b, as json.Marshal writes it.
func (r *Response) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"object":`...)
	b = appendString(b, r.Object)
	b = append(b, `,"created_at":`...)
	b = strconv.AppendInt(b, r.CreatedAt, 10)
	b = append(b, `,"status":`...)
	b = appendString(b, r.Status)
	b = append(b, `,"background":`...)
	b = strconv.AppendBool(b, r.Background)
	b = append(b, `,"error":`...)
	if r.Error == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"code":`...)
		b = appendString(b, r.Error.Code)
		b = append(b, `,"message":`...)
		b = appendString(b, r.Error.Message)
		b = append(b, '}')
	}
	b = append(b, `,"incomplete_details":`...)
	if r.IncompleteDetails == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"reason":`...)
		b = appendString(b, r.IncompleteDetails.Reason)
		b = append(b, '}')
	}
	b = append(b, `,"instructions":`...)
	b = appendOptString(b, r.Instructions)
	b = append(b, `,"max_output_tokens":`...)
	if r.MaxOutputTokens == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(*r.MaxOutputTokens), 10)
	}
	b = append(b, `,"model":`...)
	b = appendString(b, r.Model)
	b = append(b, `,"output":`...)
	if r.Output == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.Output {
			if i > 0 {
				b = append(b, ',')
			}
			b = r.Output[i].AppendJSON(b)
		}
		b = append(b, ']')
	}
	b = append(b, `,"parallel_tool_calls":`...)
	b = strconv.AppendBool(b, r.ParallelToolCalls)
	b = append(b, `,"previous_response_id":`...)
	b = appendOptString(b, r.PreviousResponseID)
	b = append(b, `,"reasoning":{"effort":`...)
	b = appendOptString(b, r.Reasoning.Effort)
	b = append(b, `,"summary":`...)
	b = appendOptString(b, r.Reasoning.Summary)
	b = append(b, `},"service_tier":`...)
	b = appendString(b, r.ServiceTier)
	b = append(b, `,"store":`...)
	b = strconv.AppendBool(b, r.Store)
	b = append(b, `,"temperature":`...)
	b = appendFloat(b, r.Temperature)
	b = append(b, `,"text":{"format":`...)
	b = appendRaw(b, r.Text.Format)
	b = append(b, `,"verbosity":`...)
	b = appendString(b, r.Text.Verbosity)
	b = append(b, `},"tool_choice":`...)
	b = appendRaw(b, r.ToolChoice)
	b = append(b, `,"tools":`...)
	b = appendRawList(b, r.Tools)
	b = append(b, `,"top_logprobs":`...)
	b = strconv.AppendInt(b, int64(r.TopLogprobs), 10)
	b = append(b, `,"top_p":`...)
	b = appendFloat(b, r.TopP)
	b = append(b, `,"truncation":`...)
	b = appendString(b, r.Truncation)
	b = append(b, `,"usage":`...)
	if r.Usage == nil {
		b = append(b, "null"...)
	} else {
		u := r.Usage
		b = append(b, `{"input_tokens":`...)
		b = strconv.AppendInt(b, int64(u.InputTokens), 10)
		b = append(b, `,"input_tokens_details":{"cached_tokens":`...)
		b = strconv.AppendInt(b, int64(u.InputTokensDetails.CachedTokens), 10)
		b = append(b, `},"output_tokens":`...)
		b = strconv.AppendInt(b, int64(u.OutputTokens), 10)
		b = append(b, `,"output_tokens_details":{"reasoning_tokens":`...)
		b = strconv.AppendInt(b, int64(u.OutputTokensDetails.ReasoningTokens), 10)
		b = append(b, `},"total_tokens":`...)
		b = strconv.AppendInt(b, int64(u.TotalTokens), 10)
		b = append(b, '}')
	}
	b = append(b, `,"user":`...)
	b = appendOptString(b, r.User)
	b = append(b, `,"metadata":`...)
	b = appendStringMap(b, r.Metadata)
	return append(b, '}')
}

// AppendJSON appends the item's JSON to b, as its MarshalJSON writes it.
func (o *OutputItem) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, o.ID)
	if o.Type == ItemFunctionCall {
		b = append(b, `,"type":"function_call","status":`...)
		b = appendString(b, o.Status)
		b = append(b, `,"arguments":`...)
		b = appendString(b, o.Arguments)
		b = append(b, `,"call_id":`...)
		b = appendString(b, o.CallID)
		b = append(b, `,"name":`...)
		b = appendString(b, o.Name)
		return append(b, '}')
	}
	b = append(b, `,"type":"message","status":`...)
	b = appendString(b, o.Status)
	b = append(b, `,"content":[`...)
	for i := range o.Content {
		if i > 0 {
			b = append(b, ',')
		}
		b = o.Content[i].AppendJSON(b)
	}
	return append(b, `],"role":"assistant"}`...)
}

// AppendJSON appends the part's JSON to b.
func (p *OutputText) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, p.Type)
	b = append(b, `,"annotations":`...)
	b = appendRawList(b, p.Annotations)
	b = append(b, `,"logprobs":`...)
	b = appendRawList(b, p.Logprobs)
	b = append(b, `,"text":`...)
	b = appendString(b, p.Text)
	return append(b, '}')
}

func appendOptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

// appendStringMap appends m as encoding/json does: keys sorted, nil as null.
func appendStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	switch len(m) {
	case 0:
	case 1:
		for k, v := range m {
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, v)
		}
	default:
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, m[k])
		}
	}
	return append(b, '}')
}

// appendFloat appends f as encoding/json writes a float64 (ES6 number formatting). The
// response's floats are validated sampling parameters, never NaN or infinite.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendRawList appends a list of raw JSON values; nil is null.
func appendRawList(b []byte, l []json.RawMessage) []byte {
	if l == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, r := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRaw(b, r)
	}
	return append(b, ']')
}

// appendRaw appends valid JSON compacted, with <, >, &, U+2028 and U+2029 escaped, as
// json.Marshal writes a json.RawMessage; nil or empty as null. JSON as a client sends it
// mostly needs neither, and is copied as it is.
func appendRaw(b []byte, r json.RawMessage) []byte {
	if len(r) == 0 {
		return append(b, "null"...)
	}
	plain := true
	for _, c := range r {
		switch c {
		case ' ', '\t', '\n', '\r', '<', '>', '&', 0xE2:
			plain = false
		}
		if !plain {
			break
		}
	}
	if plain {
		return append(b, r...)
	}
	start, inString, escaped := 0, false, false
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case c == '<' || c == '>' || c == '&':
			b = append(b, r[start:i]...)
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			start = i + 1
		case c == 0xE2 && i+2 < len(r) && r[i+1] == 0x80 && r[i+2]&^1 == 0xA8:
			b = append(b, r[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r[i+2]&0xF])
			i += 2
			start = i + 1
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			b = append(b, r[start:i]...)
			start = i + 1
		}
	}
	return append(b, r[start:]...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json writes it: HTML
// characters, control characters, U+2028 and U+2029 escaped, invalid UTF-8 replaced.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
