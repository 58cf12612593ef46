package tokens

import "math"

// Byte classes. Every byte of the input falls in exactly one; the estimate is a sum over
// adjacent pairs of classes (previous byte, this byte) of a per-pair weight, so it sees
// both what a byte is and where it stands: the first letter of a word, a lower-case letter
// after a capital (camelCase), the first byte of a digit run, a Cyrillic letter after a
// space rather than inside a word, and so on.
const (
	cLower   = iota // a-z
	cUpper          // A-Z
	cDigit          // 0-9
	cSpace          // ' '
	cNewline        // \n \r; also the class "before" the first byte
	cCtl            // \t and other ASCII controls
	cPunct          // ASCII punctuation and symbols
	cCont           // UTF-8 continuation byte 0x80-0xBF
	cLatin1         // lead C2-C3: U+0080-00FF (é, ü, ñ, ©, NBSP)
	cLatinX         // lead C4-CD: Latin Extended-A/B, IPA, combining marks (ł, ş, č)
	cGreek          // lead CE-CF
	cCyr            // lead D0-D4: Cyrillic
	cHebrew         // lead D5-D7: Armenian, Hebrew
	cArabic         // lead D8-DF: Arabic, Syriac, Thaana, NKo
	cIndic          // lead E0: U+0800-0FFF, Devanagari … Thai, Tibetan
	cE1             // lead E1: U+1000-1FFF, Georgian, Khmer, Vietnamese Latin, Greek Extended
	cSym            // lead E2: U+2000-2FFF, general punctuation (“ ” — …), arrows, math, boxes
	cKana           // lead E3: U+3000-3FFF, CJK punctuation (、。「」), Hiragana, Katakana
	cHan            // lead E4-E9: CJK Unified Ideographs
	cHangul         // lead EA-ED: Hangul syllables (and Yi, rare)
	cCompat         // lead EE-EF: private use, CJK compatibility, fullwidth forms (，！：)
	cFour           // lead F0-F4: four-byte sequences, mostly emoji
	cBad            // bytes that never occur in UTF-8 (C0, C1, F5-FF)
	numClasses
)

// byteClass maps every byte to its class.
var byteClass = func() (t [256]uint8) {
	for b := range 256 {
		var c uint8
		switch {
		case b >= 'a' && b <= 'z':
			c = cLower
		case b >= 'A' && b <= 'Z':
			c = cUpper
		case b >= '0' && b <= '9':
			c = cDigit
		case b == ' ':
			c = cSpace
		case b == '\n' || b == '\r':
			c = cNewline
		case b < 0x20 || b == 0x7f:
			c = cCtl
		case b < 0x80:
			c = cPunct
		case b < 0xC0:
			c = cCont
		case b < 0xC2:
			c = cBad
		case b < 0xC4:
			c = cLatin1
		case b < 0xCE:
			c = cLatinX
		case b < 0xD0:
			c = cGreek
		case b < 0xD5:
			c = cCyr
		case b < 0xD8:
			c = cHebrew
		case b < 0xE0:
			c = cArabic
		case b == 0xE0:
			c = cIndic
		case b == 0xE1:
			c = cE1
		case b == 0xE2:
			c = cSym
		case b == 0xE3:
			c = cKana
		case b < 0xEA:
			c = cHan
		case b < 0xEE:
			c = cHangul
		case b < 0xF0:
			c = cCompat
		case b < 0xF5:
			c = cFour
		default:
			c = cBad
		}
		t[b] = c
	}
	return t
}()

// classSet is a set of byte classes.
type classSet uint32

func set(cs ...int) classSet {
	var s classSet
	for _, c := range cs {
		s |= 1 << c
	}
	return s
}

func (s classSet) has(c int) bool { return s&(1<<c) != 0 }

var (
	allClasses = classSet(1<<numClasses - 1)
	letters    = set(cLower, cUpper)
	leads2     = set(cLatin1, cLatinX, cGreek, cCyr, cHebrew, cArabic)
	leads3     = set(cIndic, cE1, cSym, cKana, cHan, cHangul, cCompat)
	nonASCII   = leads2 | leads3 | set(cCont, cFour, cBad)
	ascii      = allClasses &^ nonASCII
	// wordLeads start a letter of an alphabetic script; wordish bytes continue a word.
	wordLeads   = letters | leads2 | set(cIndic, cE1)
	wordish     = wordLeads | set(cCont)
	ideographic = set(cSym, cKana, cHan, cHangul, cCompat, cFour)
)

// A feature is a set of (previous class, class) pairs; its count in a text is how many
// adjacent byte pairs fall in the set. The estimate is linear in the feature counts.
type feature struct {
	name      string
	prev, cur classSet
}

// features are the estimator's inputs, in the order of coefficients. The first numClasses
// are plain byte counts per class; the rest are transitions.
var features = func() []feature {
	names := [numClasses]string{"lower", "upper", "digit", "space", "newline", "ctl", "punct",
		"cont", "latin1", "latinx", "greek", "cyrillic", "hebrew", "arabic", "indic", "e1", "sym",
		"kana", "han", "hangul", "compat", "four", "bad"}
	fs := make([]feature, 0, 48)
	for c := range numClasses {
		fs = append(fs, feature{names[c] + " bytes", allClasses, set(c)})
	}
	fs = append(fs,
		feature{"word start", allClasses &^ wordish, wordLeads},
		feature{"word after space", set(cSpace), wordLeads},
		feature{"word after punct", set(cPunct), wordLeads},
		feature{"upper after upper", set(cUpper), set(cUpper)},
		feature{"camel hump", set(cLower), set(cUpper)},
		feature{"digit run", allClasses &^ set(cDigit), set(cDigit)},
		feature{"digit after space", set(cSpace), set(cDigit)},
		feature{"punct run", allClasses &^ set(cPunct), set(cPunct)},
		feature{"punct after space", set(cSpace), set(cPunct)},
		feature{"space run", set(cSpace), set(cSpace)},
		feature{"indent", set(cNewline), set(cSpace, cCtl)},
		feature{"tab run", set(cCtl), set(cCtl)},
		feature{"newline after punct", set(cPunct), set(cNewline)},
		feature{"blank line", set(cNewline), set(cNewline)},
		feature{"accent after ascii letter", letters, wordLeads &^ letters},
		feature{"ascii letter after accent", set(cCont), letters},
		feature{"ideograph run", ascii, ideographic},
	)
	return fs
}()

// pairFeatures reports which features the pair (prev, cur) counts towards.
func pairFeatures(prev, cur int) []int {
	var out []int
	for i, f := range features {
		if f.prev.has(prev) && f.cur.has(cur) {
			out = append(out, i)
		}
	}
	return out
}

// weightScale is the fixed-point scale of the weights: 1 token = weightScale.
const weightScale = 1 << 12

// weights[prev<<5|cur] is what a byte of class cur that follows a byte of class prev adds
// to the estimate, in 1/weightScale tokens. Only prev, cur < numClasses occur; the table is
// sized for any two bytes so that indexing it needs no bounds check.
type weights [256 << 5]int32

// buildWeights expands per-feature coefficients into the pair table, scaled by bias.
func buildWeights(coef []float64, bias float64) *weights {
	if len(coef) != len(features) {
		panic("tokens: coefficients.go does not match features; run TestCalibrate")
	}
	var w weights
	for p := range numClasses {
		for c := range numClasses {
			var sum float64
			for _, f := range pairFeatures(p, c) {
				sum += coef[f]
			}
			w[p<<5|c] = int32(math.Round(sum * bias * weightScale))
		}
	}
	return &w
}

// Estimate returns a fast estimate of the number of tokens in text under OpenAI's
// o200k_base encoding (gpt-4o, gpt-4.1, gpt-5, the o-series): see the package
// documentation and ACCURACY.md for how close it comes. It reads each byte once,
// allocates nothing and costs about half a microsecond per kilobyte.
func Estimate(text string) int {
	return estimate(o200kWeights, text)
}

// EstimateModel is Estimate calibrated for the encoding of model (EncodingForModel):
// cl100k_base models (gpt-4, gpt-3.5-turbo, the embeddings) need up to 3.6 times as many
// tokens for the same non-Latin text.
func EstimateModel(model, text string) int {
	if EncodingForModel(model) == Cl100kBase {
		return estimate(cl100kWeights, text)
	}
	return estimate(o200kWeights, text)
}

func estimate(w *weights, text string) int {
	var acc0, acc1 int64
	prev := uint8(cNewline)
	s := text
	// Eight bytes a round: the lookups of a round do not depend on each other, so the loop
	// runs at the machine's load throughput rather than its load latency.
	for len(s) >= 8 {
		_ = s[7]
		c0, c1, c2, c3 := byteClass[s[0]], byteClass[s[1]], byteClass[s[2]], byteClass[s[3]]
		c4, c5, c6, c7 := byteClass[s[4]], byteClass[s[5]], byteClass[s[6]], byteClass[s[7]]
		acc0 += int64(w[uint(prev)<<5|uint(c0)]) + int64(w[uint(c0)<<5|uint(c1)]) +
			int64(w[uint(c1)<<5|uint(c2)]) + int64(w[uint(c2)<<5|uint(c3)])
		acc1 += int64(w[uint(c3)<<5|uint(c4)]) + int64(w[uint(c4)<<5|uint(c5)]) +
			int64(w[uint(c5)<<5|uint(c6)]) + int64(w[uint(c6)<<5|uint(c7)])
		prev = c7
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		c := byteClass[s[i]]
		acc0 += int64(w[uint(prev)<<5|uint(c)])
		prev = c
	}
	if acc := acc0 + acc1; acc > 0 {
		return int((acc + weightScale - 1) / weightScale)
	}
	if len(text) > 0 {
		return 1
	}
	return 0
}

// EstimateMessages estimates the prompt tokens of a chat request whose messages have the
// given contents, with OpenAI's framing as its cookbook counts it: 3 tokens around each
// message plus 1 for its role, and 3 that prime the reply.
func EstimateMessages(msgs []string) int {
	n := 3
	for _, m := range msgs {
		n += 4 + Estimate(m)
	}
	return n
}

// upwardBias scales every fitted coefficient. The fit is unbiased on the corpus, but a
// budget reservation should err high rather than low: see ACCURACY.md.
const upwardBias = 1.04

var (
	o200kWeights  = buildWeights(o200kCoefficients[:], upwardBias)
	cl100kWeights = buildWeights(cl100kCoefficients[:], upwardBias)
)
