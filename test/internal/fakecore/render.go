package fakecore

import (
	"bytes"
	"encoding/json"
	"net/http"
	"unicode/utf8"
)

// Chunks returns n, or def when n <= 0.
func Chunks(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// Split cuts s into at most n pieces of about equal length on rune boundaries (JSON would
// mangle a split rune). Joining the pieces gives s back; an empty s gives no piece.
func Split(s string, n int) []string {
	runes := utf8.RuneCountInString(s)
	if runes == 0 {
		return nil
	}
	n = min(n, runes)
	pieces := make([]string, 0, n)
	for i := range n {
		size := runes / n
		if i < runes%n {
			size++
		}
		end := 0
		for range size {
			_, w := utf8.DecodeRuneInString(s[end:])
			end += w
		}
		pieces = append(pieces, s[:end])
		s = s[end:]
	}
	return pieces
}

// Marshal encodes v compactly: no HTML escaping, no trailing newline. It panics if v
// cannot be encoded (the fakes only encode their own types).
func Marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("fakecore: encoding response: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// ExtraHeaders returns a copy of header with the given name/value pairs set where the
// value is not empty; nil when header is empty and no value is set.
func ExtraHeaders(header http.Header, pairs ...string) http.Header {
	set := false
	for i := 1; i < len(pairs); i += 2 {
		set = set || pairs[i] != ""
	}
	if !set && len(header) == 0 {
		return nil
	}
	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	for i := 1; i < len(pairs); i += 2 {
		if pairs[i] != "" {
			h.Set(pairs[i-1], pairs[i])
		}
	}
	return h
}

// IsJSONObject reports whether s is a JSON object.
func IsJSONObject(s string) bool {
	var obj map[string]any
	return json.Unmarshal([]byte(s), &obj) == nil && obj != nil
}

// CompactObject is the JSON object s, compacted; "" gives {}.
func CompactObject(s string) json.RawMessage {
	if s == "" {
		return json.RawMessage("{}")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		return json.RawMessage(s)
	}
	return buf.Bytes()
}

// FailAt replaces the events from the one at index after (clamped to the events, and
// never after the last one) on by the single event failure.
func FailAt(events [][]byte, after int, failure []byte) [][]byte {
	n := min(max(after, 0), len(events)-1)
	return append(events[:n:n], failure)
}

// Join puts events back to back and returns them with the end offset of each.
func Join(events [][]byte) ([]byte, []int) {
	var body []byte
	ends := make([]int, 0, len(events))
	for _, e := range events {
		body = append(body, e...)
		ends = append(ends, len(body))
	}
	return body, ends
}
