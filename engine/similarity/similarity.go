package similarity

import "math"

// MaxBytes bounds the text read from each side: enough to characterise an answer, and it
// keeps a pathological multi-megabyte completion from costing more than a few µs.
const MaxBytes = 16 << 10

// buckets is the size of the hashed count vectors. Two 1024-entry uint16 arrays live on the
// stack; collisions between a few hundred distinct words are rare enough not to matter for
// a drift signal.
const buckets = 1024

// Cosine returns the cosine similarity of a and b in [0, 1]: 1 for the same words in the
// same order, 0 for texts sharing no word. Words are runs of letters and digits (ASCII
// folded to lower case; any non-ASCII byte counts as a letter, so other scripts work);
// each word and each pair of adjacent words adds one to its hashed bucket, so order
// matters a little. Two empty texts are identical (1); one empty text against a
// non-empty one scores 0.
func Cosine(a, b string) float64 {
	var va, vb [buckets]uint16
	na := vector(a, &va)
	nb := vector(b, &vb)
	switch {
	case na == 0 && nb == 0:
		return 1
	case na == 0 || nb == 0:
		return 0
	}
	var dot, sa, sb uint64
	for i := range va {
		x, y := uint64(va[i]), uint64(vb[i])
		dot += x * y
		sa += x * x
		sb += y * y
	}
	if dot == sa && sa == sb {
		return 1 // the same vector; skip the float rounding of a large square root
	}
	s := float64(dot) / math.Sqrt(float64(sa)*float64(sb))
	return min(1, max(0, s))
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// vector adds the hashed word and word-pair counts of s (cut to MaxBytes) into v and
// returns how many words it saw.
func vector(s string, v *[buckets]uint16) int {
	if len(s) > MaxBytes {
		s = s[:MaxBytes]
	}
	words := 0
	var h, prev uint64
	in := false
	add := func(k uint64) {
		i := (k ^ k>>32) % buckets
		if v[i] < math.MaxUint16 {
			v[i]++
		}
	}
	end := func() {
		add(h)
		if words > 0 {
			add(prev*31 ^ h*fnvPrime)
		}
		prev = h
		words++
		in = false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c >= 0x80:
		default:
			if in {
				end()
			}
			continue
		}
		if !in {
			h, in = fnvOffset, true
		}
		h = (h ^ uint64(c)) * fnvPrime
	}
	if in {
		end()
	}
	return words
}
