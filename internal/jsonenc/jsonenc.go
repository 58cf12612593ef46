// Package jsonenc appends JSON values to a byte slice the way encoding/json writes them,
// byte for byte, without reflection: the hot-path encoders of the wire types (chat
// answers and chunks, upstream requests, Responses events) are written with it, and their
// fuzz tests hold them to json.Marshal.
package jsonenc

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// OptString appends *s as a JSON string, nil as null.
func OptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return String(b, *s)
}

// StringMap appends m as encoding/json does: keys sorted, nil as null.
func StringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	switch len(m) {
	case 0:
	case 1:
		for k, v := range m {
			b = String(b, k)
			b = append(b, ':')
			b = String(b, v)
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
			b = String(b, k)
			b = append(b, ':')
			b = String(b, m[k])
		}
	}
	return append(b, '}')
}

// Float appends f as encoding/json writes a float64 (ES6 number formatting). f must not be
// NaN or infinite, which json.Marshal refuses (see Finite).
func Float(b []byte, f float64) []byte {
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

// RawList appends a list of raw JSON values; nil is null.
func RawList(b []byte, l []json.RawMessage) []byte {
	if l == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, r := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = Raw(b, r)
	}
	return append(b, ']')
}

// Raw appends valid JSON compacted, with <, >, &, U+2028 and U+2029 escaped, as
// json.Marshal writes a json.RawMessage; nil or empty as null. JSON as a client sends it
// mostly needs neither, and is copied as it is.
func Raw(b []byte, r json.RawMessage) []byte {
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

// String appends s as a JSON string the way encoding/json writes it: HTML
// characters, control characters, U+2028 and U+2029 escaped, invalid UTF-8 replaced.
func String(b []byte, s string) []byte { return appendString(b, s, &htmlSafe, true) }

// StringUEscapes is String with \b and \f written as \u0008 and \u000c, as
// engine/policy's appendString writes the policy input's strings (the decision log's
// request).
func StringUEscapes(b []byte, s string) []byte { return appendString(b, s, &htmlSafe, false) }

// SlogString appends s as log/slog's JSON handler writes it: encoding/json's escaping
// without the HTML escapes, and \b and \f as \u escapes.
func SlogString(b []byte, s string) []byte { return appendString(b, s, &plainSafe, false) }

// The ASCII bytes each flavour writes unescaped: all but the control characters, '"' and
// '\\' (and for encoding/json '<', '>' and '&').
var htmlSafe, plainSafe = func() (h, p [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		p[c] = c != '"' && c != '\\'
		h[c] = p[c] && c != '<' && c != '>' && c != '&'
	}
	return h, p
}()

// appendString is String's and SlogString's one escaper; short writes \b and \f as such.
func appendString(b []byte, s string, safe *[utf8.RuneSelf]bool, short bool) []byte {
	b = append(b, '"')
	html := safe == &htmlSafe
	start := 0
	for i := 0; i < len(s); {
		// Skip the words that need nothing, then go byte by byte through the next one,
		// which holds a byte that may (or the string's tail). Short strings (most keys and
		// many values) go byte by byte without the call.
		if len(s)-i >= 8 {
			i += plainRun(s[i:], html)
		}
		for end := min(i+8, len(s)); i < end; {
			c := s[i]
			if c < utf8.RuneSelf {
				if safe[c] {
					i++
					continue
				}
				b = append(b, s[start:i]...)
				switch {
				case c == '"' || c == '\\':
					b = append(b, '\\', c)
				case c == '\n':
					b = append(b, '\\', 'n')
				case c == '\r':
					b = append(b, '\\', 'r')
				case c == '\t':
					b = append(b, '\\', 't')
				case c == '\b' && short:
					b = append(b, '\\', 'b')
				case c == '\f' && short:
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
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Eight bytes at a time: most of a string is ASCII that needs no escape, and testing a
// word for the bytes that do costs about what testing one byte against the table does.
const (
	lsbs = 0x0101010101010101
	msbs = 0x8080808080808080
)

// plainRun is the length of the prefix of s, in whole 8-byte words, that holds no byte
// appendString must look at: none under 0x20 or over 0x7F, no '"' or '\\' (with html, no
// '<', '>' or '&' either). The rest, from the first word holding such a byte, is left to
// appendString's byte loop.
func plainRun[T string | []byte](s T, html bool) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		t := s[i : i+8] // one bounds check; the compiler loads the word in one move
		w := uint64(t[0]) | uint64(t[1])<<8 | uint64(t[2])<<16 | uint64(t[3])<<24 |
			uint64(t[4])<<32 | uint64(t[5])<<40 | uint64(t[6])<<48 | uint64(t[7])<<56
		// A byte under 0x20 borrows into its high bit (the borrow cannot start anywhere
		// else), a byte over 0x7F has it set; either makes the word stop the run.
		m := w | (w - 0x20*lsbs)
		m |= hasZero(w ^ ('"' * lsbs))
		m |= hasZero(w ^ ('\\' * lsbs))
		if html {
			m |= hasZero((w | 0x02*lsbs) ^ ('>' * lsbs)) // '<' (0x3C) or '>' (0x3E)
			m |= hasZero(w ^ ('&' * lsbs))
		}
		if m&msbs != 0 {
			break
		}
	}
	return i
}

// hasZero has a byte's high bit set (and maybe those of the bytes above it) when w has a
// zero byte, and none set when it has none.
func hasZero(w uint64) uint64 { return (w - lsbs) &^ w & msbs }

// Finite reports whether json.Marshal can encode f.
func Finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
