package adapters

import (
	"bytes"
	"encoding/json"

	"github.com/gavel-gw/gavel/internal/jsonenc"
)

// The chunks of text of one stream differ only in their text: id, object, created,
// model, fingerprint, tier, the choice's index and logprobs are the same in each. So a
// ChunkDecoder that has decoded one such chunk in full keeps its layout: the bytes around
// the text's string as the upstream sent them (in) and as AppendJSON writes them (out).
// A later chunk that is the same bytes around one JSON string is the same chunk with
// another text, because a JSON parse of what comes before the string does not depend on
// what follows, and a string token ends at its closing quote; and its encoding is out's
// prefix, the text's encoding and out's suffix, because AppendJSON writes the text in one
// place and nothing else it writes depends on it. Such a chunk is decoded by comparing
// the fixed parts and reading the string, and encoded by copying out's parts around the
// text's encoding: for an upstream that writes chunks as gavel does (the fake upstream)
// the bytes pass through unchanged, and for one that does not (vLLM's and OpenAI's
// field orders, OpenAI's "usage":null) they are rewritten without a full decode or
// encode. Either way the client gets what the full encoder writes, byte for byte. One top-level member that
// the decoder drops may vary too when its value is a string (OpenAI's random
// "obfuscation" padding): it is read as a string, as the full decoder reads it, and
// dropped.
//
// A chunk keeps its layout (ChatChunk.layout) for AppendJSON, which uses it only while
// the chunk still fits it (fits): a chunk changed after it was decoded (a copy without
// its usage, a continuation's new identity) is encoded in full.

// chunkLayout is the layout of a stream's chunks of text. It is not changed once made:
// chunks kept by the cache refer to it.
type chunkLayout struct {
	// in is the fixed bytes of the chunk as the upstream sent it: before the text's
	// string and after it (in[0], in[2]); with a dropped string that may vary (dropped),
	// in[1] is between the two strings, and dropFirst says which comes first.
	in        [3][]byte
	dropped   bool
	dropFirst bool
	// out is around the text's encoding, as AppendJSON writes them.
	outPre, outSuf []byte
	base           ChatChunk
	index          int
	logprobs       json.RawMessage
	hits           int // chunks decoded through it (by the decoder's goroutine only)
}

// maxStaleLayouts is how many layouts a stream may learn in a row that no chunk reuses
// before its decoder stops learning them: an upstream whose chunks differ in more than
// their text (a counter, a timestamp) would otherwise pay for a layout with every chunk.
const maxStaleLayouts = 3

// laidOut reports whether c is a chunk of text whose layout can be kept: one choice whose
// delta is only its text, no finish, no usage.
func laidOut(c *ChatChunk) bool {
	if len(c.Choices) != 1 || c.Usage != nil {
		return false
	}
	ch := &c.Choices[0]
	d := &ch.Delta
	return d.Content != nil && d.Role == "" && d.Refusal == nil && len(d.ToolCalls) == 0 && ch.FinishReason == nil
}

// fits reports whether c is, but for its text, the chunk l was learned from; then
// AppendJSON writes outPre, the text's encoding and outSuf. Every field AppendJSON writes
// is compared (TestChunkLayoutSeesEveryField changes each in turn).
func (l *chunkLayout) fits(c *ChatChunk) bool {
	if !laidOut(c) {
		return false
	}
	ch := &c.Choices[0]
	b := &l.base
	return c.ID == b.ID && c.Object == b.Object && c.Created == b.Created && c.Model == b.Model &&
		c.SystemFingerprint == b.SystemFingerprint && c.ServiceTier == b.ServiceTier &&
		ch.Index == l.index && bytes.Equal(ch.Logprobs, l.logprobs)
}

// appendText appends the encoding of a chunk that fits l, with text as its text.
func (l *chunkLayout) appendText(b []byte, text string) []byte {
	b = append(b, l.outPre...)
	b = jsonenc.String(b, text)
	return append(b, l.outSuf...)
}

// Laid decodes data when it is a chunk of text in the layout of the stream's chunks
// before it (as Decode would decode it); nil otherwise.
func (cd *ChunkDecoder) Laid(data []byte) *ChatChunk {
	l := cd.layout
	if l == nil {
		return nil
	}
	c := l.decode(data)
	if c != nil {
		l.hits++
		cd.stale = 0
	}
	return c
}

// decode decodes data when it is a chunk of text in l's layout; nil otherwise. Each
// string is read as the full decoder reads it (fastDec.rawString), so a chunk it accepts
// is one the full decoder accepts and decodes the same way.
func (l *chunkLayout) decode(data []byte) *ChatChunk {
	d := fastDec{b: data, ok: true, answer: true}
	if !d.fixed(l.in[0]) {
		return nil
	}
	if l.dropped && l.dropFirst && (!d.dropped() || !d.fixed(l.in[1])) {
		return nil
	}
	if d.i >= len(data) || data[d.i] != '"' {
		return nil
	}
	a := new(chunkAlloc)
	d.str(&a.content)
	if !d.ok {
		return nil
	}
	if l.dropped && !l.dropFirst {
		if !d.fixed(l.in[1]) || !d.dropped() || !d.fixed(l.in[2]) {
			return nil
		}
	} else if !d.fixed(l.in[2]) {
		return nil
	}
	if d.i != len(data) {
		return nil
	}
	c := &a.chunk
	*c = l.base
	a.choice[0] = ChunkChoice{Index: l.index, Delta: Delta{Content: &a.content}, Logprobs: l.logprobs}
	c.Choices = a.choice[:1:1]
	return c
}

// fixed consumes b when the input goes on with it.
func (d *fastDec) fixed(b []byte) bool {
	if !bytes.HasPrefix(d.b[d.i:], b) {
		return false
	}
	d.i += len(b)
	return true
}

// dropped consumes a string a layout lets vary.
func (d *fastDec) dropped() bool {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return false
	}
	d.rawString()
	return d.ok
}

// learn keeps the layout of c, a chunk of text decoded in full from data, whose text's
// string is data[at:end] and whose last top-level member dropped had the string value
// data[dropAt:dropEnd] (dropEnd 0: none), and gives it to c. It does nothing for a chunk
// of another kind or one AppendJSON cannot encode.
func (cd *ChunkDecoder) learn(data []byte, c *ChatChunk, at, end, dropAt, dropEnd int) {
	if cd.stale >= maxStaleLayouts || !laidOut(c) || at <= 0 || end <= at || end > len(data) {
		return
	}
	if cd.layout != nil && cd.layout.hits == 0 {
		cd.stale++
	}
	var mark [2]int
	enc, err := c.appendJSON(make([]byte, 0, len(data)+64), &mark)
	if err != nil || mark[1] == 0 {
		return
	}
	in := bytes.Clone(data) // the in parts are slices of it, the strings left in place
	l := &chunkLayout{outPre: enc[:mark[0]:mark[0]], outSuf: enc[mark[1]:],
		base: *c, index: c.Choices[0].Index, logprobs: c.Choices[0].Logprobs}
	switch {
	case dropEnd == 0:
		l.in = [3][]byte{in[:at:at], nil, in[end:]}
	case dropAt >= end:
		l.dropped = true
		l.in = [3][]byte{in[:at:at], in[end:dropAt:dropAt], in[dropEnd:]}
	case dropEnd <= at:
		l.dropped, l.dropFirst = true, true
		l.in = [3][]byte{in[:dropAt:dropAt], in[dropEnd:at:at], in[end:]}
	default:
		return
	}
	l.base.Choices = nil
	l.base.layout = l
	c.layout = l
	cd.layout = l
}
