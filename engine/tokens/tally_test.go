package tokens

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// corpusText is each corpus category's files joined: one long "completion" per category.
func corpusText(t *testing.T) map[string]string {
	t.Helper()
	paths, err := filepath.Glob("testdata/corpus/*/*")
	if err != nil || len(paths) == 0 {
		t.Fatalf("corpus: %v", err)
	}
	sort.Strings(paths)
	out := map[string]*strings.Builder{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		cat := filepath.Base(filepath.Dir(p))
		if out[cat] == nil {
			out[cat] = &strings.Builder{}
		}
		out[cat].Write(b)
	}
	texts := make(map[string]string, len(out))
	for k, v := range out {
		texts[k] = v.String()
	}
	return texts
}

// TestTallyMatchesWholeText feeds each corpus category through a Tally in stream-sized
// pieces, with segments small enough to force hundreds of cuts, and compares the total
// with the whole text counted at once. Cuts at word boundaries must change nothing; forced
// cuts (CJK, scripts without spaces) may cost a couple of tokens each.
func TestTallyMatchesWholeText(t *testing.T) {
	var c Counter
	texts := corpusText(t)
	for _, model := range []string{"gpt-4o", "gpt-4"} {
		for cat, text := range texts {
			whole, err := c.Count(model, text)
			if err != nil {
				t.Fatal(err)
			}
			for _, piece := range []int{7, 1000} {
				const seg = 512
				tl := Tally{seg: seg}
				tl.Start(&c, model)
				maxHeld := 0
				for s := text; len(s) > 0; {
					n := min(piece, len(s))
					tl.WriteString(s[:n])
					s = s[n:]
					maxHeld = max(maxHeld, tl.Retained())
				}
				if tl.Len() != int64(len(text)) {
					t.Fatalf("%s/%s piece %d: Len %d, wrote %d", model, cat, piece, tl.Len(), len(text))
				}
				got := tl.Total()
				// Word-boundary cuts: exact. Forced cuts: a couple of tokens each.
				bound := 2 * tl.forced
				t.Logf("%s/%s piece %d: %d bytes, tally %d, whole %d, %d forced cuts", model, cat, piece, len(text), got, whole, tl.forced)
				if d := got - whole; d > bound || -d > bound {
					t.Errorf("%s/%s piece %d: tally %d, whole text %d (off by %d, bound %d)", model, cat, piece, got, whole, d, bound)
				}
				if limit := 2*seg + piece; maxHeld > limit {
					t.Errorf("%s/%s piece %d: held %d bytes, want at most %d", model, cat, piece, maxHeld, limit)
				}
			}
		}
	}
}

// TestTallyBoundedWithDefaultSegments writes prose, then text without a word boundary
// longer than tallyMax, then prose again, in stream-sized pieces, and checks that the
// tally never holds more than tallyMax plus a piece, with the default segment sizes.
func TestTallyBoundedWithDefaultSegments(t *testing.T) {
	var c Counter
	var tl Tally
	tl.Start(&c, "gpt-4o")
	prose := strings.Repeat("lorem ipsum dolor sit amet ", 4) // 108 bytes
	cjk := strings.Repeat("語", 36)                            // 108 bytes, no boundary
	held := 0
	for _, part := range []struct {
		piece string
		bytes int64
	}{{prose, 96 << 10}, {cjk, 160 << 10}, {prose, 64 << 10}} {
		for end := tl.Len() + part.bytes; tl.Len() < end; {
			tl.WriteString(part.piece)
			held = max(held, tl.Retained())
		}
	}
	if held > tallyMax+len(prose) {
		t.Errorf("held %d bytes, want at most %d", held, tallyMax+len(prose))
	}
	if tl.forced == 0 {
		t.Error("no forced cut: the test did not exercise text without a word boundary")
	}
	if tl.Total() <= 0 {
		t.Error("no tokens counted")
	}
}

func BenchmarkTally(b *testing.B) {
	var c Counter
	text := benchText(b, 256<<10)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	var tl Tally
	for b.Loop() {
		tl.Start(&c, "gpt-4o")
		for s := text; len(s) > 0; {
			n := min(40, len(s))
			tl.WriteString(s[:n])
			s = s[n:]
		}
		tl.Total()
	}
}
