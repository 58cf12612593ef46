// Package rawjson edits the top level of a JSON object without decoding and re-encoding
// the rest of it: a passthrough adapter rewrites a client's "model" (and output bound)
// while every other byte, unknown fields and their formatting included, reaches the
// upstream as the client sent it.
package rawjson

import (
	"bytes"
	"errors"
	"strconv"
)

// ErrNotObject is returned for a body that is not one valid JSON object.
var ErrNotObject = errors.New("body is not a JSON object")

// member is one top-level member: the byte offsets of its key (quotes included) and its
// value.
type member struct {
	keyStart, keyEnd, valStart, valEnd int
}

// members lists the top-level members of obj, which must be valid JSON.
func members(obj []byte) ([]member, error) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil, ErrNotObject
	}
	i++
	var out []member
	for {
		i = skipSpace(obj, i)
		if i < len(obj) && obj[i] == '}' {
			return out, nil
		}
		if i >= len(obj) || obj[i] != '"' {
			return nil, ErrNotObject
		}
		var m member
		m.keyStart = i
		i = skipString(obj, i)
		m.keyEnd = i
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != ':' {
			return nil, ErrNotObject
		}
		i = skipSpace(obj, i+1)
		m.valStart = i
		i = skipValue(obj, i)
		m.valEnd = i
		out = append(out, m)
		i = skipSpace(obj, i)
		if i < len(obj) && obj[i] == ',' {
			i++
			continue
		}
		if i < len(obj) && obj[i] == '}' {
			return out, nil
		}
		return nil, ErrNotObject
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the offset after the string starting at b[i] ('"').
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the offset after the value starting at b[i]; b is valid JSON.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}

// keyIs reports whether the quoted key raw (escapes possible) spells key. Keys with
// escapes are decoded, so "mod\u0065l" is "model" here as it is for any JSON reader.
func keyIs(raw []byte, key string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return len(raw) == len(key)+2 && string(raw[1:len(raw)-1]) == key
	}
	s, err := strconv.Unquote(string(raw))
	if err != nil {
		return unquoteJSON(raw) == key
	}
	return s == key
}

// unquoteJSON decodes a JSON string strconv cannot (JSON escapes \/ that Go lacks).
func unquoteJSON(raw []byte) string {
	s, err := strconv.Unquote(string(bytes.ReplaceAll(raw, []byte(`\/`), []byte(`/`))))
	if err != nil {
		return ""
	}
	return s
}

// Get returns the raw value of the top-level key in obj (the last one, as JSON decoders
// read duplicates), and whether it is there.
func Get(obj []byte, key string) ([]byte, bool, error) {
	if !bytesValid(obj) {
		return nil, false, ErrNotObject
	}
	ms, err := members(obj)
	if err != nil {
		return nil, false, err
	}
	for i := len(ms) - 1; i >= 0; i-- {
		m := ms[i]
		if keyIs(obj[m.keyStart:m.keyEnd], key) {
			return obj[m.valStart:m.valEnd], true, nil
		}
	}
	return nil, false, nil
}

// Set returns a copy of obj whose top-level key has the raw JSON value: every occurrence
// of key is replaced (a duplicate key cannot show the upstream another value than the one
// gavel judged), or the member is added first when there is none. Everything else is
// copied byte for byte. value must be valid JSON.
func Set(obj []byte, key string, value []byte) ([]byte, error) {
	if !bytesValid(obj) {
		return nil, ErrNotObject
	}
	if !bytesValid(value) {
		return nil, errors.New("rawjson: value is not valid JSON")
	}
	ms, err := members(obj)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(obj)+len(value)+len(key)+4)
	last := 0
	found := false
	for _, m := range ms {
		if !keyIs(obj[m.keyStart:m.keyEnd], key) {
			continue
		}
		found = true
		out = append(out, obj[last:m.valStart]...)
		out = append(out, value...)
		last = m.valEnd
	}
	if found {
		return append(out, obj[last:]...), nil
	}
	open := bytes.IndexByte(obj, '{') + 1
	out = append(out, obj[:open]...)
	out = append(out, quote(key)...)
	out = append(out, ':')
	out = append(out, value...)
	if len(ms) > 0 {
		out = append(out, ',')
	}
	return append(out, obj[open:]...), nil
}

// SetString is Set with a string value.
func SetString(obj []byte, key, value string) ([]byte, error) {
	return Set(obj, key, quote(value))
}

// quote renders s as a JSON string.
func quote(s string) []byte {
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
