package responses

import (
	"strconv"
	"unicode/utf8"
)

// The events a stream sends most (one per text or arguments piece) encode themselves
// without reflection: AppendJSON writes what json.Marshal would, byte for byte (the fuzz
// test holds them to it), into the caller's buffer.

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
	b = append(b, `,"logprobs":[],"sequence_number":`...)
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
