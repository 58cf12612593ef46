package similarity

import (
	"math"
	"strings"
	"testing"
)

func TestCosine(t *testing.T) {
	long := strings.Repeat("the quick brown fox jumps over the lazy dog ", 2000)
	for _, tc := range []struct {
		name   string
		a, b   string
		lo, hi float64
	}{
		{"identical", "Paris is the capital of France.", "Paris is the capital of France.", 1, 1},
		{"case and punctuation ignored", "Paris, is the CAPITAL of France!", "paris is the capital of france", 1, 1},
		{"both empty", "", "", 1, 1},
		{"one empty", "", "hello world", 0, 0},
		{"only punctuation is empty", "...!?", "hello", 0, 0},
		{"disjoint", "alpha beta gamma", "delta epsilon zeta", 0, 0.001},
		{"similar answers", "The capital of France is Paris.", "Paris is the capital city of France.", 0.5, 0.95},
		{"order matters a little", "dog bites man", "man bites dog", 0.4, 0.99},
		{"unrelated sentences", "I cannot help with that request.", "The answer is 42 because of arithmetic.", 0, 0.3},
		{"non-ASCII words", "日本 の 首都 は 東京", "日本 の 首都 は 東京", 1, 1},
		{"long inputs are bounded", long, long + " extra words at the end", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Cosine(tc.a, tc.b)
			if got < tc.lo-1e-9 || got > tc.hi+1e-9 {
				t.Errorf("Cosine = %v, want in [%v, %v]", got, tc.lo, tc.hi)
			}
			if back := Cosine(tc.b, tc.a); math.Abs(back-got) > 1e-12 {
				t.Errorf("not symmetric: %v vs %v", got, back)
			}
		})
	}
}

func TestCosineAllocatesNothing(t *testing.T) {
	a, b := strings.Repeat("some words here ", 500), strings.Repeat("other words there ", 500)
	if n := testing.AllocsPerRun(100, func() { Cosine(a, b) }); n != 0 {
		t.Errorf("Cosine allocates %v times per call", n)
	}
}

func FuzzCosine(f *testing.F) {
	f.Add("hello world", "hello there world")
	f.Add("", "x")
	f.Add("\xff\xfe", "ünïcödé")
	f.Fuzz(func(t *testing.T, a, b string) {
		s := Cosine(a, b)
		if math.IsNaN(s) || s < 0 || s > 1 {
			t.Fatalf("Cosine(%q, %q) = %v, outside [0, 1]", a, b, s)
		}
		if self := Cosine(a, a); self != 1 {
			t.Fatalf("Cosine(%q, itself) = %v, want 1", a, self)
		}
	})
}

func BenchmarkCosine(b *testing.B) {
	x := strings.Repeat("The capital of France is Paris, a city on the Seine. ", 80)
	y := strings.Repeat("Paris is the capital city of France and sits on the Seine. ", 80)
	b.SetBytes(int64(len(x) + len(y)))
	b.ReportAllocs()
	for b.Loop() {
		Cosine(x, y)
	}
}
