package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gavel-gw/gavel/adapters"
)

// Key names an entry: the scope whose callers share it ("team:search", "global"), the
// target the request was meant for ("openai/gpt-4o") and the hash of what goes upstream.
type Key struct {
	Scope string
	Model string
	Hash  string // hex SHA-256
	// s is String's result when RequestKey made the key: built once with the hash, not
	// again for every lookup, store and flight of the request.
	s string
}

// String is the key as L1 and L2 store it. Scope and model come first so that a purge by
// scope or model can match a prefix.
func (k Key) String() string {
	if k.s != "" {
		return k.s
	}
	return k.Scope + "|" + k.Model + "|" + k.Hash
}

// ScopeID is the scope part of a key for a decision's scope and the caller's record:
// "key:<key id>", "team:<team>", "project:<project>" or "global".
func ScopeID(scope, keyID, team, project string) string {
	switch scope {
	case "key":
		return "key:" + keyID
	case "project":
		return "project:" + project
	case "global":
		return "global"
	default:
		return "team:" + team
	}
}

// keyVersion starts every hash: a change of the encoding below changes it, so that
// entries a replica of another version stored in Redis are never read as this one's.
const keyVersion = "gavel-cache-v2\x00"

// RequestKey hashes a chat request as it goes upstream (redacted by the executor's
// Prepare), for target: the model is the target's, and what does not change the answer
// (stream, stream_options, user, metadata, store) is left out; stream is hashed on its own,
// since a streamed entry holds chunks and a buffered one a completion. maxTokens is the
// decision's cap on max_tokens (0: none), which does change the answer.
//
// The request is encoded field by field straight into the hash, without building its JSON
// or any map: every field is tagged and every string and list length-prefixed, so two
// requests share a key exactly when every member that reaches the upstream is equal.
// Raw JSON members (tool parameters, response_format, fields gavel has no type for) are
// hashed without the whitespace between their tokens, as the upstream parses them.
func RequestKey(scope, target string, req *adapters.ChatRequest, stream bool, maxTokens int) (Key, error) {
	var e encoder
	e.h = sha256.New()
	e.raw(keyVersion)
	if stream {
		e.byte('s')
	} else {
		e.byte('b')
	}
	e.int(int64(maxTokens))
	e.request(target, req)
	e.flush()
	// The sum and its hex digits use the encoder's buffer, already on the heap for the hash;
	// the key's string is made once, its hash a part of it.
	sum := e.h.Sum(e.buf[:0])
	hexSum := e.buf[sha256.Size : sha256.Size+hex.EncodedLen(sha256.Size)]
	hex.Encode(hexSum, sum)
	s := scope + "|" + target + "|" + string(hexSum) // one allocation
	return Key{Scope: scope, Model: target, Hash: s[len(s)-len(hexSum):], s: s}, nil
}

// encoder writes the canonical encoding of a request into a hash through a buffer, so
// that the hash sees few, large writes and nothing is allocated per field.
type encoder struct {
	h   hash.Hash
	n   int
	buf [512]byte
}

func (e *encoder) flush() {
	if e.n > 0 {
		e.h.Write(e.buf[:e.n])
		e.n = 0
	}
}

func (e *encoder) byte(b byte) {
	if e.n == len(e.buf) {
		e.flush()
	}
	e.buf[e.n] = b
	e.n++
}

// raw writes s as it is (no length): fixed strings and the bytes of a length-prefixed one.
func (e *encoder) raw(s string) {
	for len(s) > 0 {
		if e.n == len(e.buf) {
			e.flush()
		}
		c := copy(e.buf[e.n:], s)
		e.n += c
		s = s[c:]
	}
}

func (e *encoder) uint(v uint64) {
	if len(e.buf)-e.n < binary.MaxVarintLen64 {
		e.flush()
	}
	e.n += binary.PutUvarint(e.buf[e.n:], v)
}

func (e *encoder) int(v int64) {
	if len(e.buf)-e.n < binary.MaxVarintLen64 {
		e.flush()
	}
	e.n += binary.PutVarint(e.buf[e.n:], v)
}

// str is a string with its length, so that ("ab","c") and ("a","bc") differ. A byte that
// is not UTF-8 goes upstream as U+FFFD (encoding/json replaces it), and is hashed so.
func (e *encoder) str(s string) {
	if utf8.ValidString(s) {
		e.uint(uint64(len(s)))
		e.raw(s)
		return
	}
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			n += len(string(utf8.RuneError))
		} else {
			n += size
		}
		i += size
	}
	e.uint(uint64(n))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			e.raw(string(utf8.RuneError))
		} else {
			e.raw(s[i : i+size])
		}
		i += size
	}
}

// Optional members: a presence byte, then the value.

func (e *encoder) intp(p *int) {
	if p == nil {
		e.byte(0)
		return
	}
	e.byte(1)
	e.int(int64(*p))
}

func (e *encoder) int64p(p *int64) {
	if p == nil {
		e.byte(0)
		return
	}
	e.byte(1)
	e.int(*p)
}

func (e *encoder) floatp(p *float64) {
	if p == nil {
		e.byte(0)
		return
	}
	e.byte(1)
	f := *p
	if f == 0 {
		f = 0 // -0 encodes as 0 in JSON: the upstream sees the same number
	}
	e.uint(math.Float64bits(f))
}

func (e *encoder) boolp(p *bool) {
	switch {
	case p == nil:
		e.byte(0)
	case *p:
		e.byte(2)
	default:
		e.byte(1)
	}
}

// json is a raw JSON value without the whitespace between its tokens, length-prefixed:
// the upstream parses {"a": 1} and {"a":1} alike. Absent (nil) and an explicit null
// differ only as the client sent them, and both mean "not set" to an upstream.
func (e *encoder) json(b json.RawMessage) {
	e.uint(uint64(e.compact(b, false)))
	e.compact(b, true)
}

// compact walks b without the whitespace between its tokens, writing what is left when
// write is set, and returns its length: json's length prefix and its bytes are one walk.
func (e *encoder) compact(b json.RawMessage, write bool) int {
	n := 0
	in, esc := false, false
	for _, c := range b {
		if !in && (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			continue
		}
		n++
		if write {
			e.byte(c)
		}
		switch {
		case esc:
			esc = false
		case in && c == '\\':
			esc = true
		case c == '"':
			in = !in
		}
	}
	return n
}

// fields are members gavel has no typed field for, in the order the client sent them.
func (e *encoder) fields(f adapters.Fields) {
	e.uint(uint64(len(f)))
	for i := range f {
		e.str(f[i].Name)
		e.json(f[i].Value)
	}
}

// request encodes every member of r that reaches the upstream, each behind its own tag
// (TestRequestKeyCoversEveryField sets each one in turn and wants a new key). Stream,
// StreamOptions, User, Metadata and Store do not change the answer and are left out.
func (e *encoder) request(target string, r *adapters.ChatRequest) {
	e.byte('M')
	e.str(target)
	e.byte('m')
	e.uint(uint64(len(r.Messages)))
	for i := range r.Messages {
		e.message(&r.Messages[i])
	}
	e.byte('t')
	e.intp(r.MaxTokens)
	e.intp(r.MaxCompletionTokens)
	e.floatp(r.Temperature)
	e.floatp(r.TopP)
	e.intp(r.N)
	e.uint(uint64(len(r.Stop)))
	for _, s := range r.Stop {
		e.str(s)
	}
	e.floatp(r.PresencePenalty)
	e.floatp(r.FrequencyPenalty)
	e.logitBias(r.LogitBias)
	e.boolp(r.Logprobs)
	e.intp(r.TopLogprobs)
	e.int64p(r.Seed)
	e.byte('T')
	e.uint(uint64(len(r.Tools)))
	for i := range r.Tools {
		t := &r.Tools[i]
		e.str(t.Type)
		e.str(t.Function.Name)
		e.str(t.Function.Description)
		e.json(t.Function.Parameters)
		e.boolp(t.Function.Strict)
	}
	e.json(r.ToolChoice)
	e.boolp(r.ParallelToolCalls)
	e.json(r.ResponseFormat)
	e.str(r.ReasoningEffort)
	e.str(r.ServiceTier)
	e.byte('x')
	e.fields(r.Extra)
}

func (e *encoder) message(m *adapters.Message) {
	e.str(m.Role)
	switch c := m.Content; {
	case c == nil:
		e.byte(0)
	case c.Parts == nil:
		e.byte(1)
		e.str(c.Text)
	default:
		e.byte(2)
		e.uint(uint64(len(c.Parts)))
		for i := range c.Parts {
			p := &c.Parts[i]
			e.str(p.Type)
			e.str(p.Text)
			if p.ImageURL == nil {
				e.byte(0)
			} else {
				e.byte(1)
				e.str(p.ImageURL.URL)
				e.str(p.ImageURL.Detail)
			}
			e.json(p.InputAudio)
			e.json(p.File)
			e.fields(p.Extra)
		}
	}
	e.str(m.Name)
	e.uint(uint64(len(m.ToolCalls)))
	for i := range m.ToolCalls {
		tc := &m.ToolCalls[i]
		e.intp(tc.Index)
		e.str(tc.ID)
		e.str(tc.Type)
		e.str(tc.Function.Name)
		e.str(tc.Function.Arguments)
	}
	e.str(m.ToolCallID)
	e.str(m.Refusal)
	e.fields(m.Extra)
}

// logitBias is a map: its entries are hashed in key order. Requests with a bias are rare;
// only they pay for the sort.
func (e *encoder) logitBias(m map[string]int) {
	e.uint(uint64(len(m)))
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		e.str(k)
		e.int(int64(m[k]))
	}
}

// Filter selects entries for a purge; an empty field matches everything.
type Filter struct {
	Scope string // a scope id, as ScopeID makes it ("team:search")
	Model string // "provider/model"
}

// match reports whether the L1 key k is selected.
func (f Filter) match(k string) bool {
	scope, rest, _ := strings.Cut(k, "|")
	model, _, _ := strings.Cut(rest, "|")
	return (f.Scope == "" || f.Scope == scope) && (f.Model == "" || f.Model == model)
}
