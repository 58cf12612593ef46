package tokens

import (
	"strings"
	"sync"
	"testing"
)

var counter Counter

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		model, text string
		want        int
	}{
		{"gpt-4o", "", 0},
		{"gpt-4", "", 0},
		// OpenAI's cookbook: "tiktoken is great!" is 6 tokens in cl100k_base.
		{"gpt-4", "tiktoken is great!", 6},
		{"gpt-3.5-turbo", "tiktoken is great!", 6},
		{"gpt-4o", "hello world", 2},
		{"gpt-4", "hello world", 2},
		// Digit runs split in threes in both encodings.
		{"gpt-4o", "123456789", 3},
		{"gpt-4", "1234567890", 4},
		// Special tokens are plain text here.
		{"gpt-4o", "<|endoftext|>", 7},
	} {
		got, err := counter.Count(tc.model, tc.text)
		if err != nil || got != tc.want {
			t.Errorf("Count(%q, %q) = %d, %v; want %d", tc.model, tc.text, got, err, tc.want)
		}
	}
}

// TestCountByEncoding: models of one encoding count alike, and the two encodings differ
// where they should (non-Latin scripts).
func TestCountByEncoding(t *testing.T) {
	hi := "नमस्ते, क्या आप मुझे सरल भाषा में समझा सकते हैं कि मशीन लर्निंग क्या है?"
	count := func(model string) int {
		n, err := counter.Count(model, hi)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	o := count("gpt-4o")
	for _, m := range []string{"openai/gpt-4o-mini", "gpt-4.1", "o3-mini", "gpt-5", "some-other-model"} {
		if n := count(m); n != o {
			t.Errorf("Count(%s) = %d, Count(gpt-4o) = %d", m, n, o)
		}
	}
	cl := count("gpt-4")
	for _, m := range []string{"gpt-3.5-turbo", "azure/gpt-35-turbo", "text-embedding-3-small"} {
		if n := count(m); n != cl {
			t.Errorf("Count(%s) = %d, Count(gpt-4) = %d", m, n, cl)
		}
	}
	if cl < 2*o {
		t.Errorf("Hindi: cl100k %d tokens, o200k %d; cl100k should need far more", cl, o)
	}
}

// TestCountInvalidUTF8 counts bad bytes as tiktoken counts the text they decode to: one
// U+FFFD per bad sequence.
func TestCountInvalidUTF8(t *testing.T) {
	for _, model := range []string{"gpt-4o", "gpt-4"} {
		bad, err := counter.Count(model, "abc\xff\xfedef")
		if err != nil {
			t.Fatal(err)
		}
		good, err := counter.Count(model, "abc\uFFFDdef")
		if err != nil {
			t.Fatal(err)
		}
		if bad != good {
			t.Errorf("%s: %d tokens for invalid UTF-8, %d for its replacement", model, bad, good)
		}
	}
}

// TestCountConcurrent shares one Counter (and each encoding's single codec) between
// goroutines, from its first use on; run with -race.
func TestCountConcurrent(t *testing.T) {
	var c Counter
	texts := []string{"The quick brown fox.", "東京都の天気は晴れです。", "func main() {\n\tfmt.Println(42)\n}", strings.Repeat("Привет, мир! ", 50)}
	want := map[[2]string]int{}
	for _, m := range []string{"gpt-4o", "gpt-4"} {
		for _, s := range texts {
			n, err := counter.Count(m, s)
			if err != nil {
				t.Fatal(err)
			}
			want[[2]string{m, s}] = n
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				m := []string{"gpt-4o", "gpt-4"}[(g+i)%2]
				s := texts[(g*7+i)%len(texts)]
				if n, err := c.Count(m, s); err != nil || n != want[[2]string{m, s}] {
					t.Errorf("Count(%s, %.20q) = %d, %v; want %d", m, s, n, err, want[[2]string{m, s}])
				}
			}
		}()
	}
	wg.Wait()
}

// TestEstimateCloseToCount relates the two halves of the package on texts that are not
// in the corpus: a paragraph of each kind, within the per-category bounds.
func TestEstimateCloseToCount(t *testing.T) {
	for _, tc := range []struct {
		text  string
		limit float64 // relative error allowed
	}{
		{"Could you summarise the attached meeting notes in five bullet points, and list any action items with their owners and due dates? Keep it under 150 words.", 0.15},
		{"SELECT user_id, COUNT(*) AS n FROM events WHERE created_at > now() - interval '7 days' GROUP BY user_id HAVING COUNT(*) > 10 ORDER BY n DESC;", 0.25},
		{`{"model":"gpt-4o","messages":[{"role":"user","content":"Hi there"}],"temperature":0.2,"max_tokens":256,"stream":true}`, 0.25},
		{"Die Besprechung wurde auf Donnerstag um 15 Uhr verschoben. Bitte bringen Sie die aktualisierten Zahlen für das dritte Quartal mit.", 0.25},
	} {
		for _, model := range []string{"gpt-4o", "gpt-4"} {
			want, err := counter.Count(model, tc.text)
			if err != nil {
				t.Fatal(err)
			}
			got := EstimateModel(model, tc.text)
			if e := float64(got-want) / float64(want); e > tc.limit || e < -tc.limit {
				t.Errorf("%s: estimate %d, count %d (%+.0f%%) for %.50q", model, got, want, 100*e, tc.text)
			}
		}
	}
}

func BenchmarkCount(b *testing.B) {
	text := benchText(b, 8<<10)
	for _, model := range []string{"gpt-4o", "gpt-4"} {
		b.Run(model+"/8KB", func(b *testing.B) {
			if _, err := counter.Count(model, text); err != nil { // load outside the timing
				b.Fatal(err)
			}
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n, _ = counter.Count(model, text)
			}
			b.ReportMetric(float64(n), "tokens")
		})
	}
}
