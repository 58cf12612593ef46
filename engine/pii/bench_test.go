package pii

import (
	"strings"
	"testing"
)

// mixedText returns about size bytes of realistic prompt text: the negative corpus
// (prose, code, config, logs) with a sentence holding PII every 4 KB or so.
func mixedText(b *testing.B, size int, pii bool) string {
	var neg strings.Builder
	for _, text := range loadNegatives(b) {
		neg.WriteString(text)
	}
	filler := neg.String()
	items := []string{
		"\nPlease reach Jane at jane.doe@example.com or +1 415 555 2671 before Friday.\n",
		"\nThe card on file is 4111 1111 1111 1111; the refund goes to DE89 3704 0044 0532 0130 00.\n",
		"\nssh deploy@10.20.30.40 failed, retried from 2001:db8::1 with key AKIAIOSFODNN7EXAMPLE.\n",
		"\nHer SSN is 536-22-1234 and her work phone (212) 555-0147.\n",
	}
	var out strings.Builder
	for i, k := 0, 0; out.Len() < size; i++ {
		chunk := filler[i*4096%len(filler):]
		if len(chunk) > 4096 {
			chunk = chunk[:4096]
		}
		out.WriteString(chunk)
		if pii {
			out.WriteString(items[k%len(items)])
			k++
		}
	}
	return out.String()[:size]
}

func BenchmarkScan(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"8KB", 8 << 10}, {"64KB", 64 << 10}} {
		b.Run(size.name, func(b *testing.B) {
			text := mixedText(b, size.n, true)
			found := 0
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				all.Scan(text, func(Finding) { found++ })
			}
			b.ReportMetric(float64(found)/float64(b.N), "findings/op")
		})
	}
}

func BenchmarkCountsClean(b *testing.B) {
	text := mixedText(b, 64<<10, false)
	if c := all.Counts(text); c != nil {
		b.Fatalf("clean text has findings: %v", c)
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if all.Counts(text) != nil {
			b.Fatal("findings")
		}
	}
}

func BenchmarkRedact(b *testing.B) {
	text := mixedText(b, 64<<10, true)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, n := Redact(text, nil, all); n == 0 {
			b.Fatal("nothing redacted")
		}
	}
}
