package pii

import (
	"strings"
	"testing"
)

// FuzzScan checks the scanner's invariants on arbitrary text:
//   - no panic;
//   - findings lie within the text, are non-empty, ordered and disjoint
//     (Start >= previous End), and are of the scanner's types;
//   - Scan is deterministic, Counts agrees with Scan;
//   - Redact replaces exactly the findings of the requested types with their placeholders,
//     so a redacted finding's text survives only where the kept text already had it;
//   - a single-type scanner reports only that type.
//
// Seeds: every positive sample, every line of the negatives, plus testdata/fuzz/FuzzScan.
func FuzzScan(f *testing.F) {
	for _, s := range loadSamples(f) {
		f.Add(s.text)
	}
	for _, text := range loadNegatives(f) {
		for _, l := range strings.Split(text, "\n") {
			f.Add(l)
		}
	}
	emailOnly := NewScanner(Email)
	f.Fuzz(func(t *testing.T, text string) {
		var fs []Finding
		all.Scan(text, func(f Finding) { fs = append(fs, f) })
		prev := 0
		counts := map[Type]int{}
		for _, f := range fs {
			if f.Start < prev || f.End <= f.Start || f.End > len(text) {
				t.Fatalf("bad finding %+v after %d in %d bytes:%s", f, prev, len(text), describe(text, fs))
			}
			if !f.Type.Valid() {
				t.Fatalf("bad type %+v", f)
			}
			prev = f.End
			counts[f.Type]++
		}
		again := 0
		all.Scan(text, func(f Finding) {
			if again >= len(fs) || fs[again] != f {
				t.Fatalf("second scan differs at %d: %+v", again, f)
			}
			again++
		})
		if again != len(fs) {
			t.Fatalf("second scan found %d, first %d", again, len(fs))
		}
		c := all.Counts(text)
		if len(c) != len(counts) {
			t.Fatalf("Counts %v, Scan %v", c, counts)
		}
		for typ, n := range counts {
			if c[typ] != n {
				t.Fatalf("Counts %v, Scan %v", c, counts)
			}
		}

		// Redact a subset of types (the first finding's, or email+secret).
		types := map[Type]bool{Email: true, Secret: true}
		if len(fs) > 0 {
			types = map[Type]bool{fs[0].Type: true}
		}
		var want, kept strings.Builder
		last, n := 0, 0
		var redacted []string
		for _, f := range fs {
			if !types[f.Type] {
				continue
			}
			want.WriteString(text[last:f.Start])
			want.WriteString(placeholders[mustKind(f.Type)])
			kept.WriteString(text[last:f.Start])
			kept.WriteByte(0)
			redacted = append(redacted, text[f.Start:f.End])
			last = f.End
			n++
		}
		want.WriteString(text[last:])
		kept.WriteString(text[last:])
		out, got := Redact(text, types, all)
		if got != n || out != want.String() {
			t.Fatalf("Redact(%q) = %q, %d; want %q, %d", text, out, got, want.String(), n)
		}
		for _, r := range redacted {
			if strings.Contains(out, r) && !strings.Contains(kept.String(), r) {
				t.Fatalf("Redact(%q) = %q still holds %q", text, out, r)
			}
		}

		emailOnly.Scan(text, func(f Finding) {
			if f.Type != Email || f.Start < 0 || f.End > len(text) || f.End <= f.Start {
				t.Fatalf("email scanner: %+v", f)
			}
		})
	})
}

func mustKind(t Type) kind {
	k, ok := kindOf(t)
	if !ok {
		panic(t)
	}
	return k
}
