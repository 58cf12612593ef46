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
			for _, piece := range []int{1, 7, 64, 1000} {
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

// TestTallyBoundedOnLongStream writes 8 MiB in small pieces and checks that the tally
// never holds more than its bound, with the default segment size.
func TestTallyBoundedOnLongStream(t *testing.T) {
	var c Counter
	var tl Tally
	tl.Start(&c, "gpt-4o")
	chunk := strings.Repeat("lorem ipsum dolor sit amet ", 4) // 108 bytes, a few tokens
	noSpace := strings.Repeat("語", 36)                        // 108 bytes, no boundary
	held := 0
	for i := 0; tl.Len() < 8<<20; i++ {
		s := chunk
		if i%3 == 0 && i > 40000 {
			s = noSpace
		}
		tl.WriteString(s)
		held = max(held, tl.Retained())
	}
	if held > tallyMax+len(chunk) {
		t.Fatalf("held %d bytes, want at most %d", held, tallyMax+len(chunk))
	}
	if tl.Total() <= 0 {
		t.Fatal("no tokens counted")
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
