package tokens

import (
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"
)

// sample is one piece of the calibration corpus with its true token counts.
type sample struct {
	category, file string
	text           string
	o200k, cl100k  int
}

// chunkTarget is the size the corpus files are cut into: pieces of about a kilobyte, at
// line ends, the size of a typical message, so that each category has enough samples for
// a distribution.
const chunkTarget = 1024

var (
	corpusOnce sync.Once
	corpus     []sample
	corpusErr  error
)

// loadCorpus reads testdata/corpus/<category>/<file>, cuts every file into chunks and
// counts each chunk with the real o200k_base and cl100k_base tokenizers.
func loadCorpus(t testing.TB) []sample {
	t.Helper()
	corpusOnce.Do(func() {
		paths, err := filepath.Glob("testdata/corpus/*/*")
		if err != nil || len(paths) == 0 {
			corpusErr = err
			return
		}
		sort.Strings(paths)
		o200k, err := tokenizer.Get(tokenizer.O200kBase)
		if err != nil {
			corpusErr = err
			return
		}
		cl100k, err := tokenizer.Get(tokenizer.Cl100kBase)
		if err != nil {
			corpusErr = err
			return
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				corpusErr = err
				return
			}
			if !utf8.Valid(b) {
				corpusErr = &os.PathError{Op: "read", Path: p, Err: os.ErrInvalid}
				return
			}
			cat := filepath.Base(filepath.Dir(p))
			for _, chunk := range chunks(string(b), chunkTarget) {
				s := sample{category: cat, file: filepath.Base(p), text: chunk}
				s.o200k, _ = o200k.Count(chunk)
				s.cl100k, _ = cl100k.Count(chunk)
				corpus = append(corpus, s)
			}
		}
	})
	if corpusErr != nil || len(corpus) == 0 {
		t.Fatalf("corpus: %v (%d samples)", corpusErr, len(corpus))
	}
	return corpus
}

// chunks cuts text after the first line end at or past target bytes; a last piece shorter
// than target/4 joins the one before it.
func chunks(text string, target int) []string {
	var out []string
	for len(text) > 0 {
		n := len(text)
		if n > target {
			if i := strings.IndexByte(text[target:], '\n'); i >= 0 {
				n = target + i + 1
			}
		}
		out = append(out, text[:n])
		text = text[n:]
	}
	if k := len(out); k > 1 && len(out[k-1]) < target/4 {
		out[k-2] += out[k-1]
		out = out[:k-1]
	}
	return out
}

// errStats summarises relative errors (estimate-actual)/actual.
type errStats struct {
	n          int
	mape       float64 // mean absolute error
	p95        float64 // 95th percentile of the absolute error
	bias       float64 // mean signed error: > 0 overestimates
	worstUnder float64 // largest undercount, as a positive fraction (0 if none)
}

func errorStats(errs []float64) errStats {
	s := errStats{n: len(errs)}
	if len(errs) == 0 {
		return s
	}
	abs := make([]float64, len(errs))
	for i, e := range errs {
		abs[i] = max(e, -e)
		s.mape += abs[i]
		s.bias += e
		s.worstUnder = max(s.worstUnder, -e)
	}
	s.mape /= float64(len(errs))
	s.bias /= float64(len(errs))
	sort.Float64s(abs)
	s.p95 = abs[min(len(abs)-1, int(math.Ceil(0.95*float64(len(abs))))-1)]
	return s
}
