package adapters

import (
	"bytes"
	"encoding/json"

	"github.com/gavel-gw/gavel/internal/jsonenc"
)

// The chunks of text of one stream differ only in their text: id, object, created,
// model, fingerprint, tier, the choice's index and logprobs are the same in each. So a
// ChunkDecoder that has decoded one such chunk in full keeps its layout: the bytes before
// and after the text's string as the upstream sent them (in) and as AppendJSON writes
// them (out). A later chunk that is in's prefix, one JSON string and in's suffix is the
// same chunk with another text, because a JSON parse of the prefix does not depend on
// what follows it and a string token ends at its closing quote; and its encoding is out's
// prefix, the text's encoding and out's suffix, because AppendJSON writes the text in one
// place and nothing else it writes depends on it. Such a chunk is then decoded by
// comparing the two fixed parts and reading the string, and encoded by copying them
// around the text's encoding: for an upstream that writes chunks as gavel does (vLLM,
// the fake upstream) the bytes pass through unchanged, and for one that does not
// (OpenAI's field order and "usage":null) they are rewritten without a full decode or
// encode. Either way the client gets what the full encoder writes, byte for byte.
//
// A chunk keeps its layout (ChatChunk.layout) for AppendJSON, which uses it only while
// the chunk still fits it (fits): a chunk changed after it was decoded (a copy without
// its usage, a continuation's new identity) is encoded in full.

// chunkLayout is the layout of a stream's chunks of text. It is not changed once made:
// chunks kept by the cache refer to it.
type chunkLayout struct {
	inPre, inSuf   []byte // around the text's string, as the upstream sent them
	outPre, outSuf []byte // around the text's encoding, as AppendJSON writes them
	base           ChatChunk
	index          int
	logprobs       json.RawMessage
	hits           int // chunks decoded through it (by the decoder's goroutine only)
}

// maxStaleLayouts is how many layouts a stream may learn in a row that no chunk reuses
// before its decoder stops learning them: an upstream whose chunks differ in more than
// their text (a counter, a timestamp, OpenAI's random "obfuscation" padding) would
// otherwise pay for a layout with every chunk.
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

// decode decodes data when it is a chunk of text in l's layout; nil otherwise.
func (l *chunkLayout) decode(data []byte) *ChatChunk {
	n := len(data) - len(l.inSuf)
	if n < len(l.inPre)+2 || data[len(l.inPre)] != '"' || !bytes.HasPrefix(data, l.inPre) || !bytes.HasSuffix(data, l.inSuf) {
		return nil
	}
	d := fastDec{b: data[:n], i: len(l.inPre), ok: true, answer: true}
	a := new(chunkAlloc)
	d.str(&a.content)
	if !d.ok || d.i != n {
		return nil // not one string: the text's closing quote is not where the suffix starts
	}
	c := &a.chunk
	*c = l.base
	a.choice[0] = ChunkChoice{Index: l.index, Delta: Delta{Content: &a.content}, Logprobs: l.logprobs}
	c.Choices = a.choice[:1:1]
	return c
}

// learn keeps the layout of c, a chunk of text decoded in full from data, whose text's
// string is data[at:end], and gives it to c. It does nothing for a chunk of another kind
// or one AppendJSON cannot encode.
func (cd *ChunkDecoder) learn(data []byte, c *ChatChunk, at, end int) {
	if cd.stale >= maxStaleLayouts || !laidOut(c) || at <= 0 || end <= at || end > len(data) {
		return
	}
	if cd.layout != nil && cd.layout.hits == 0 {
		cd.stale++
	}
	// One buffer: in's parts, then the encoding, of which out's parts are kept (append
	// copies what buf holds if it has to grow it).
	buf := make([]byte, 0, 2*len(data)+64)
	buf = append(buf, data[:at]...)
	buf = append(buf, data[end:]...)
	var mark [2]int
	enc, err := c.appendJSON(buf, &mark)
	if err != nil || mark[1] == 0 {
		return
	}
	inPre, inSuf := enc[:at:at], enc[at:len(data)-(end-at):len(data)-(end-at)]
	out := enc[len(inPre)+len(inSuf):]
	mark[0] -= len(inPre) + len(inSuf)
	mark[1] -= len(inPre) + len(inSuf)
	l := &chunkLayout{inPre: inPre, inSuf: inSuf, outPre: out[:mark[0]:mark[0]], outSuf: out[mark[1]:],
		base: *c, index: c.Choices[0].Index, logprobs: c.Choices[0].Logprobs}
	l.base.Choices = nil
	l.base.layout = l
	c.layout = l
	cd.layout = l
}
