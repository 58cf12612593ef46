package tokens

import (
	"flag"
	"fmt"
	"go/format"
	"math"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"
)

var (
	calibrate = flag.Bool("calibrate", false, "fit the estimator's coefficients to the corpus and print them")
	lambda    = flag.Float64("lambda", 0.02, "with -calibrate: ridge weight pulling coefficients to the prior")
	l1Rounds  = flag.Int("l1", 8, "with -calibrate: reweighting rounds towards least absolute error")
)

// featureCounts returns how many adjacent byte pairs of text fall in each feature: the
// quantities Estimate weighs, computed the slow, readable way.
func featureCounts(text string) []float64 {
	var pairs [numClasses][numClasses]int
	prev := cNewline
	for i := 0; i < len(text); i++ {
		c := int(byteClass[text[i]])
		pairs[prev][c]++
		prev = c
	}
	out := make([]float64, len(features))
	for p := range numClasses {
		for c := range numClasses {
			if n := pairs[p][c]; n > 0 {
				for _, f := range pairFeatures(p, c) {
					out[f] += float64(n)
				}
			}
		}
	}
	return out
}

// fixed are the coefficients that are structure rather than something to fit. Both
// encodings' pre-tokenizers cut digit runs into groups of three: a third of a token per
// digit. A character's cost is put on its lead byte, with nothing on the continuation
// bytes, so that two-, three- and four-byte characters do not share a coefficient.
var fixed = map[int]float64{cDigit: 1.0 / 3, cCont: 0}

// prior is where the fit pulls coefficients that the corpus says little about: a quarter
// token per ASCII byte, one token per character of a non-ASCII script (on its lead byte),
// two per emoji, nothing for continuation bytes and transitions.
func prior() []float64 {
	p := make([]float64, len(features))
	for c := range numClasses {
		switch {
		case c == cCont:
		case c == cFour:
			p[c] = 2
		case c == cBad:
			p[c] = 1
		case nonASCII.has(c):
			p[c] = 1
		default:
			p[c] = 0.25
		}
	}
	return p
}

// fit minimises the weighted squared relative error of x·β against y, plus
// lambda·|β-prior|², by solving the normal equations. files[i] is the "category/file" of
// sample i: each category weighs the same in total, and so does each file within its
// category, whatever their numbers of chunks. l1 > 0 runs that many rounds of iteratively
// reweighted least squares, which moves the fit towards the least mean absolute relative
// error.
func fit(xs [][]float64, ys []float64, files []string, lambda float64, l1 int) []float64 {
	n, k := len(xs), len(features)
	perFile := map[string]int{}
	filesPerCat := map[string]int{}
	for _, f := range files {
		if perFile[f]++; perFile[f] == 1 {
			filesPerCat[path.Dir(f)]++
		}
	}
	base := make([]float64, n)
	for i, f := range files {
		base[i] = categoryWeight(path.Dir(f)) / (float64(filesPerCat[path.Dir(f)]*perFile[f]) * ys[i] * ys[i])
	}
	pr := prior()
	w := append([]float64(nil), base...)
	var beta []float64
	for round := 0; round <= l1; round++ {
		a := make([][]float64, k)
		b := make([]float64, k)
		for j := range k {
			a[j] = make([]float64, k)
			a[j][j] = lambda
			b[j] = lambda * pr[j]
		}
		for i := range n {
			for j := range k {
				if xs[i][j] == 0 {
					continue
				}
				b[j] += w[i] * xs[i][j] * ys[i]
				for m := range k {
					a[j][m] += w[i] * xs[i][j] * xs[i][m]
				}
			}
		}
		beta = solveConstrained(a, b)
		for i := range n {
			r := math.Abs(dot(xs[i], beta)-ys[i]) / ys[i]
			w[i] = base[i] / math.Max(r, 0.01)
		}
	}
	return beta
}

// pairFloor is the least weight a pair may have: nothing for a continuation byte (its
// character was paid for on the lead byte), a tenth of a token for a non-ASCII character,
// 1/64 of a token for any other byte. So no byte is free and a run of any one character,
// which BPE merges little, is not estimated at next to nothing.
func pairFloor(prev, cur int) float64 {
	switch {
	case cur == cCont:
		return 0
	case nonASCII.has(cur):
		return 0.1
	}
	return 1.0 / 64
}

// solveConstrained solves the normal equations a·β = b with the fixed coefficients held
// and every pair weight (the sum of the coefficients of the pair's features) kept at or
// above its pairFloor, by a one-sided penalty: the pairs below their floor are pulled to
// it by a heavy quadratic penalty and the system solved again, until the set of such
// pairs stops changing. A pinned pair whose fit would rather rise ends up a hair above its
// floor and is released in the next round; one that would rather fall stays a hair below.
func solveConstrained(a [][]float64, b []float64) []float64 {
	const penalty = 1e4
	k := len(b)
	var active [][2]int
	for range 200 {
		a2 := make([][]float64, k)
		b2 := append([]float64(nil), b...)
		for j := range k {
			a2[j] = append([]float64(nil), a[j]...)
		}
		for _, pc := range active {
			fs := pairFeatures(pc[0], pc[1])
			for _, j := range fs {
				for _, m := range fs {
					a2[j][m] += penalty
				}
				b2[j] += penalty * pairFloor(pc[0], pc[1])
			}
		}
		for j, v := range fixed {
			a2[j] = make([]float64, k)
			a2[j][j], b2[j] = 1, v
		}
		beta := solve(a2, b2)
		var next [][2]int
		for p := range numClasses {
			for c := range numClasses {
				var w float64
				for _, f := range pairFeatures(p, c) {
					w += beta[f]
				}
				if w < pairFloor(p, c)-1e-12 {
					next = append(next, [2]int{p, c})
				}
			}
		}
		if slices.Equal(next, active) {
			return beta
		}
		active = next
	}
	panic("calibrate: constraints do not settle")
}

// categoryWeight is how much a category counts in the fit. English prose and chat
// prompts, what a gateway sees most and where a low estimate matters most, count double.
func categoryWeight(cat string) float64 {
	switch cat {
	case "prose", "chat":
		return 2
	}
	return 1
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// solve solves a·x = b by Gaussian elimination with partial pivoting.
func solve(a [][]float64, b []float64) []float64 {
	n := len(b)
	for col := range n {
		p := col
		for r := col + 1; r < n; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[p][col]) {
				p = r
			}
		}
		a[col], a[p] = a[p], a[col]
		b[col], b[p] = b[p], b[col]
		for r := col + 1; r < n; r++ {
			f := a[r][col] / a[col][col]
			for c := col; c < n; c++ {
				a[r][c] -= f * a[col][c]
			}
			b[r] -= f * b[col]
		}
	}
	x := make([]float64, n)
	for r := n - 1; r >= 0; r-- {
		s := b[r]
		for c := r + 1; c < n; c++ {
			s -= a[r][c] * x[c]
		}
		x[r] = s / a[r][r]
	}
	return x
}

// TestCalibrate fits the coefficients for each encoding, logs the fit's in-sample and
// cross-validated (leave-one-file-out) errors, and rewrites coefficients.go. It runs only
// with -calibrate:
//
//	go test ./engine/tokens -run TestCalibrate -calibrate -v
func TestCalibrate(t *testing.T) {
	if !*calibrate {
		t.Skip("a manual tool, not a test: run with -calibrate (never in CI)")
	}
	samples := loadCorpus(t)
	xs := make([][]float64, len(samples))
	cats := make([]string, len(samples))
	for i, s := range samples {
		xs[i] = featureCounts(s.text)
		cats[i] = s.category + "/" + s.file
	}
	lambda, l1 := *lambda, *l1Rounds
	var src strings.Builder
	fmt.Fprintf(&src, `// Code generated by "go test -run TestCalibrate -calibrate -lambda %g -l1 %d"; DO NOT EDIT.

package tokens

// The estimator's coefficients, one per feature (see features), in tokens: fitted by
// TestCalibrate to the real tokenizers' counts of testdata/corpus. Estimate scales them by
// upwardBias.
`, lambda, l1)
	for _, enc := range []struct {
		name string
		y    func(sample) int
	}{{"o200k", func(s sample) int { return s.o200k }}, {"cl100k", func(s sample) int { return s.cl100k }}} {
		ys := make([]float64, len(samples))
		for i, s := range samples {
			ys[i] = float64(enc.y(s))
		}
		beta := fit(xs, ys, cats, lambda, l1)

		// Leave one file out: refit without the file, predict its samples.
		cv := make([]float64, len(samples))
		files := map[string]bool{}
		for _, s := range samples {
			files[s.category+"/"+s.file] = true
		}
		for f := range files {
			var txs [][]float64
			var tys []float64
			var tcats []string
			for i, s := range samples {
				if s.category+"/"+s.file != f {
					txs, tys, tcats = append(txs, xs[i]), append(tys, ys[i]), append(tcats, cats[i])
				}
			}
			b := fit(txs, tys, tcats, lambda, l1)
			for i, s := range samples {
				if s.category+"/"+s.file == f {
					cv[i] = dot(xs[i], b)
				}
			}
		}
		report := func(label string, pred func(i int) float64) {
			byCat := map[string][]float64{}
			for i, s := range samples {
				e := (pred(i) - ys[i]) / ys[i]
				byCat[s.category] = append(byCat[s.category], e)
				byCat["ALL"] = append(byCat["ALL"], e)
			}
			keys := make([]string, 0, len(byCat))
			for k := range byCat {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var b strings.Builder
			fmt.Fprintf(&b, "%s %s:", enc.name, label)
			for _, k := range keys {
				st := errorStats(byCat[k])
				fmt.Fprintf(&b, "\n  %-9s MAPE %5.1f%%  p95 %5.1f%%  bias %+5.1f%%  worst under %5.1f%%", k, st.mape*100, st.p95*100, st.bias*100, st.worstUnder*100)
			}
			t.Log(b.String())
		}
		report("in-sample", func(i int) float64 { return dot(xs[i], beta) })
		report("leave-one-file-out", func(i int) float64 { return cv[i] })

		fmt.Fprintf(&src, "\n// %sCoefficients are fitted to %s_base counts.\nvar %sCoefficients = [...]float64{\n", enc.name, enc.name, enc.name)
		for j, f := range features {
			fmt.Fprintf(&src, "\t%.4f, // %s\n", beta[j], f.name)
		}
		src.WriteString("}\n")
	}
	out, err := format.Source([]byte(src.String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("coefficients.go", out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log("wrote coefficients.go")
}
