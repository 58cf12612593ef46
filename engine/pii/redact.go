package pii

import "strings"

// placeholders replace redacted findings, one per type: "[REDACTED_" + upper-case type + "]".
var placeholders = func() (p [numKinds]string) {
	for k, t := range kindTypes {
		p[k] = "[REDACTED_" + strings.ToUpper(string(t)) + "]"
	}
	return p
}()

// defaultScanner serves Redact when it is given no Scanner.
var defaultScanner = NewScanner()

// Redact replaces every finding of s (every type when s is nil) whose type is in types
// with its placeholder, such as "[REDACTED_EMAIL]", and returns the new text and the
// number of replacements. A nil or empty types redacts every type s finds: an empty set
// is far more likely a mistake than a wish to pass PII through. When nothing is replaced,
// Redact returns text itself and allocates nothing.
func Redact(text string, types map[Type]bool, s *Scanner) (string, int) {
	if s == nil {
		s = defaultScanner
	}
	all := len(types) == 0
	var b strings.Builder
	last, count := 0, 0
	s.scan(text, func(k kind, start, end int) {
		if !all && !types[kindTypes[k]] {
			return
		}
		if count == 0 {
			b.Grow(len(text) + 32)
		}
		b.WriteString(text[last:start])
		b.WriteString(placeholders[k])
		last = end
		count++
	})
	if count == 0 {
		return text, 0
	}
	b.WriteString(text[last:])
	return b.String(), count
}

// Redactor adapts Redact to the executor's Redactor interface: type names as the policy
// writes them.
type Redactor struct {
	Scanner *Scanner
}

// Redact masks the named types in text; unknown names are ignored (the decision parser
// has already rejected them).
func (r Redactor) Redact(text string, types []string) string {
	set := make(map[Type]bool, len(types))
	for _, t := range types {
		if Type(t).Valid() {
			set[Type(t)] = true
		}
	}
	if len(set) == 0 {
		return text
	}
	out, _ := Redact(text, set, r.Scanner)
	return out
}
