package tokens

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// benchText returns size bytes of the corpus, all categories interleaved a file at a
// time, cut at a UTF-8 boundary.
func benchText(b *testing.B, size int) string {
	b.Helper()
	paths, err := filepath.Glob("testdata/corpus/*/*")
	if err != nil || len(paths) == 0 {
		b.Fatalf("corpus: %v", err)
	}
	sort.Strings(paths)
	var all strings.Builder
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		all.Write(data)
	}
	text := strings.Repeat(all.String(), size/all.Len()+1)[:size]
	return strings.ToValidUTF8(text, "")
}

func BenchmarkEstimate(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"8KB", 8 << 10}, {"64KB", 64 << 10}} {
		b.Run(size.name, func(b *testing.B) {
			text := benchText(b, size.n)
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n = Estimate(text)
			}
			b.ReportMetric(float64(n), "tokens")
		})
	}
}
