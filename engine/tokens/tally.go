package tokens

import "unicode/utf8"

// Tally segment sizes. A streamed completion is counted a segment at a time so that
// gavel never holds more of it than tallyMax bytes, however long the stream: 32 KiB is
// about 8k tokens, more than most whole answers, so an ordinary stream is still counted
// once, after it ended; only the rare long one pays for counting while it is relayed.
const (
	tallySegment = 32 << 10 // pending text this long is counted up to its last word boundary
	tallyMax     = 64 << 10 // pending text this long without a word boundary is cut anyway
)

// Tally counts the tokens of a text that arrives in pieces (a completion streamed by an
// upstream that reports no usage) while holding only a bounded tail of it.
//
// Text is counted in segments cut where the tokenizer's pre-tokenisation would split
// anyway: before a space that separates two ASCII letters ("word| word"). Both cl100k_base
// and o200k_base end a letter run at the space and start the next piece with it, so such
// a cut changes nothing and the sum of the segments' counts equals the whole text's. Text
// with no such boundary in tallyMax bytes (CJK, scripts without spaces, base64) is cut at
// a rune boundary instead, which loses the BPE merges across the cut: at most two tokens
// either way per forced cut (measured on the corpus: about one), and forced cuts come at
// most once per 48 KiB, over 10k tokens, so the count stays within 0.02% of the whole
// text's. TestTallyMatchesWholeText holds both bounds on the corpus.
//
// The zero Tally is not ready: Start it with a Counter and a model. It is not safe for
// concurrent use.
type Tally struct {
	c       *Counter
	model   string
	pending []byte // written, not yet counted: less than tallyMax bytes between writes
	tokens  int    // counted so far
	written int64  // bytes written in all
	scanned int    // pending[1:scanned] holds no word boundary: later scans stop there
	seg     int    // segment size; tallySegment when 0 (tests set it small)
	forced  int    // cuts not at a word boundary, each of which may shift the count
}

// Start readies t to count text for model with c, forgetting anything written before.
func (t *Tally) Start(c *Counter, model string) {
	*t = Tally{c: c, model: model, pending: t.pending[:0], seg: t.seg}
}

// WriteString adds s to the text. It counts the completed segments once enough text is
// pending, so the memory held stays below about twice the segment size (plus s).
func (t *Tally) WriteString(s string) {
	if s == "" {
		return
	}
	t.written += int64(len(s))
	t.pending = append(t.pending, s...)
	seg := t.seg
	if seg == 0 {
		seg = tallySegment
	}
	for len(t.pending) >= seg {
		cut := lastWordBoundary(t.pending, t.scanned)
		if cut <= 0 {
			if len(t.pending) < 2*seg {
				t.scanned = len(t.pending) - 1
				return
			}
			cut = runeCut(t.pending, len(t.pending)-seg/2)
			t.forced++
		}
		t.count(t.pending[:cut])
		t.pending = t.pending[:copy(t.pending, t.pending[cut:])]
		// What is left came after the last boundary (or the forced cut): it holds none.
		t.scanned = max(0, len(t.pending)-1)
	}
}

// Len is the number of bytes written since Start.
func (t *Tally) Len() int64 { return t.written }

// Retained is the number of bytes t holds (not yet counted).
func (t *Tally) Retained() int { return len(t.pending) }

// Total counts what is pending and returns the tokens of everything written since Start.
// It releases the pending text; what is written after it is counted on top.
func (t *Tally) Total() int {
	if len(t.pending) > 0 {
		t.count(t.pending)
		t.pending = nil
	}
	return t.tokens
}

// count adds the tokens of b, estimated when the tokenizer cannot be loaded.
func (t *Tally) count(b []byte) {
	text := string(b) // the codec takes a string; the copy is one segment's garbage
	n, err := t.c.Count(t.model, text)
	if err != nil {
		n = Estimate(text)
	}
	t.tokens += n
}

// lastWordBoundary is the index of the last space in b at or after from that sits between
// two ASCII letters, 0 when there is none. Bytes are compared, which is safe in UTF-8: no
// byte of a multi-byte rune is an ASCII letter or a space.
func lastWordBoundary(b []byte, from int) int {
	for i := len(b) - 2; i > 0 && i >= from; i-- {
		if b[i] == ' ' && isLetter(b[i-1]) && isLetter(b[i+1]) {
			return i
		}
	}
	return 0
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// runeCut moves i back to the start of the rune it falls in, so a cut never splits one.
func runeCut(b []byte, i int) int {
	for j := i; j > 0 && j > i-utf8.UTFMax; j-- {
		if utf8.RuneStart(b[j]) {
			return j
		}
	}
	return i
}
