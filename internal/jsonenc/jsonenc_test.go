package jsonenc

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// String writes what encoding/json writes for a string, byte for byte.
func FuzzString(f *testing.F) {
	for _, s := range []string{"", "plain", `"quoted" \ back`, "<a href='x'>&amp;</a>", "\b\f\n\r\t\x00\x1f\x7f",
		"\u2028\u2029", "caf\xe9 \xff\xfe", "日本語 ✓"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := String(nil, s); string(got) != string(want) {
			t.Fatalf("String(%q) = %s, want %s", s, got, want)
		}
	})
}

// SlogString writes what log/slog's JSON handler writes for a string (the slogjson
// tests hold the whole line); here, against String where the two agree: no HTML
// characters, no \b or \f.
func FuzzSlogString(f *testing.F) {
	for _, s := range []string{"", "plain text of some length", `"quoted" \ back`, "\n\r\t\x00\x1f\x7f", "\u2028\u2029", "caf\xe9 \xff\xfe", "日本語 ✓"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsAny(s, "<>&\b\f") {
			return
		}
		if got, want := SlogString(nil, s), String(nil, s); string(got) != string(want) {
			t.Fatalf("SlogString(%q) = %s, want %s", s, got, want)
		}
	})
}

// Every byte value at every position of a word, and across word boundaries: the
// word-at-a-time scan must stop wherever the byte loop would have acted.
func TestStringEveryByteEveryPosition(t *testing.T) {
	for c := 0; c < 256; c++ {
		for n := 1; n <= 24; n++ {
			for at := 0; at < n; at++ {
				b := []byte(strings.Repeat("a", n))
				b[at] = byte(c)
				s := string(b)
				want, _ := json.Marshal(s)
				if got := String(nil, s); string(got) != string(want) {
					t.Fatalf("String(%q) = %s, want %s", s, got, want)
				}
			}
		}
	}
}

// A typical message text, as a chat request carries it.
var benchText = "Summarise the benefits of policy-as-code for routing LLM traffic across providers in two sentences, please."

func BenchmarkString(b *testing.B) {
	buf := make([]byte, 0, 256)
	for _, tc := range []struct {
		name string
		f    func([]byte, string) []byte
	}{{"html", String}, {"slog", SlogString}, {"uescapes", StringUEscapes}, {"policy", policyAppendString}} {
		for _, s := range []struct{ name, s string }{{"short", "openai/gpt-4o-mini"}, {"text", benchText}} {
			b.Run(tc.name+"/"+s.name, func(b *testing.B) {
				for b.Loop() {
					buf = tc.f(buf[:0], s.s)
				}
			})
		}
	}
}

// StringUEscapes writes what engine/policy's appendString writes (a copy of it below, as
// of this test), so that it can take its place.
func FuzzStringUEscapes(f *testing.F) {
	for _, s := range []string{"", "plain text of some length", `"quoted" \ back`, "<a href='x'>&amp;</a>", "\b\f\n\r\t\x00\x1f\x7f",
		"\u2028\u2029", "caf\xe9 \xff\xfe", "日本語 ✓"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := StringUEscapes(nil, s), policyAppendString(nil, s); string(got) != string(want) {
			t.Fatalf("StringUEscapes(%q) = %s, want %s", s, got, want)
		}
	})
}

func policyAppendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
