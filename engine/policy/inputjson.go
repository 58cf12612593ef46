package policy

import (
	"strconv"

	"github.com/gavel-gw/gavel/internal/jsonenc"
)

// AppendJSON appends the request's input.request as JSON. With mask, message texts are
// replaced by their size, as decision logs keep them. It exists so that logging a decision
// does not convert the OPA value back through generic maps on every request.
func (r *Request) AppendJSON(b []byte, mask bool) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"endpoint":`...)
	b = appendString(b, r.Endpoint)
	b = append(b, `,"protocol":`...)
	b = appendString(b, r.protocol())
	b = append(b, `,"model":`...)
	b = appendString(b, r.Model)
	b = append(b, `,"stream":`...)
	b = strconv.AppendBool(b, r.Stream)
	b = append(b, `,"messages":[`...)
	for i, m := range r.Messages {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"role":`...)
		b = appendString(b, m.Role)
		b = append(b, `,"text":`...)
		if mask {
			b = append(b, `"[masked `...)
			b = strconv.AppendInt(b, int64(len(m.Text)), 10)
			b = append(b, ` bytes]"`...)
		} else {
			b = appendString(b, m.Text)
		}
		b = append(b, '}')
	}
	b = append(b, `],"has_tools":`...)
	b = strconv.AppendBool(b, r.HasTools)
	b = append(b, `,"has_images":`...)
	b = strconv.AppendBool(b, r.HasImages)
	b = append(b, `,"has_code":`...)
	b = strconv.AppendBool(b, r.HasCode)
	b = append(b, `,"max_tokens":`...)
	b = strconv.AppendInt(b, int64(r.MaxTokens), 10)
	b = append(b, `,"est_input_tokens":`...)
	b = strconv.AppendInt(b, int64(r.EstInputTokens), 10)
	b = append(b, `,"metadata":{`...)
	first := true
	for k, v := range r.Metadata {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, v)
	}
	b = append(b, `},"fields":[`...)
	for i, f := range r.Fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, f)
	}
	b = append(b, `],"bucket":`...)
	b = strconv.AppendInt(b, int64(r.Bucket), 10)
	b = append(b, `,"sample":`...)
	b = strconv.AppendInt(b, int64(r.Sample), 10)
	b = append(b, `,"n":`...)
	b = strconv.AppendInt(b, int64(r.n()), 10)
	b = append(b, `,"turns":`...)
	b = strconv.AppendInt(b, int64(r.Turns), 10)
	if r.Temperature != nil {
		b = append(b, `,"temperature":`...)
		b = strconv.AppendFloat(b, *r.Temperature, 'g', -1, 64)
	}
	if r.Seed != nil {
		b = append(b, `,"seed":`...)
		b = strconv.AppendInt(b, *r.Seed, 10)
	}
	return append(b, '}')
}

// AppendJSONString appends s as a JSON string literal.
func AppendJSONString(b []byte, s string) []byte { return appendString(b, s) }

// appendString writes s as a JSON string: valid UTF-8 passes through, invalid bytes become
// U+FFFD, control characters and the HTML-significant ones are escaped (\b and \f as
// \u0008 and \u000c): jsonenc's scanner, eight bytes at a time.
func appendString(b []byte, s string) []byte { return jsonenc.StringUEscapes(b, s) }
