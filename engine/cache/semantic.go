package cache

import (
	"container/list"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

// DefaultSemanticMaxBytes bounds the semantic index when Options.SemanticMaxBytes is not
// set: 16 MiB hold about 2,600 vectors of 1,536 dimensions.
const DefaultSemanticMaxBytes = 16 << 20

// itemOverhead is what an indexed vector costs besides its floats: its key's strings,
// the item, its list element and its slot in the maps, rounded up.
const itemOverhead = 256

// Partition is what a semantic entry may be matched against: requests identical but for
// their last user turn, in the same scope, for the same target and embedded with the same
// model. Scope and Model are the exact key's (a purge by scope or model selects them).
type Partition struct {
	Scope string
	Model string
	Hash  string
}

// String is the partition as the index keys it.
func (p Partition) String() string { return p.Scope + "|" + p.Model + "|" + p.Hash }

// ErrNotSemantic is SemanticPartition's answer for a request a semantic lookup must not
// match: not exactly one user turn, a last message that is not the user's, or a turn with
// parts other than text (an image changes the answer but is not embedded).
var ErrNotSemantic = errors.New("cache: not a single-turn text request")

// SemanticPartition returns the partition of a chat request as it goes upstream and the
// text of its last user turn, which is what gets embedded. Everything else in the request
// (system prompt, earlier assistant messages, every parameter that changes the answer) is
// hashed into the partition with RequestKey, with the scope, the target, stream and the
// decision's max_tokens, and embed, the embeddings target ("provider/model"): vectors of
// different models are not comparable. A request with more than one user turn is
// ErrNotSemantic, whatever the policy asked: a conversation is matched exactly.
func SemanticPartition(scope, target, embed string, req *adapters.ChatRequest, stream bool, maxTokens int) (Partition, string, error) {
	n := len(req.Messages)
	if n == 0 || req.Messages[n-1].Role != "user" {
		return Partition{}, "", ErrNotSemantic
	}
	for i := range n - 1 {
		if req.Messages[i].Role == "user" {
			return Partition{}, "", ErrNotSemantic
		}
	}
	last := req.Messages[n-1]
	text, ok := plainText(last.Content)
	if !ok || strings.TrimSpace(text) == "" {
		return Partition{}, "", ErrNotSemantic
	}
	r := *req
	r.Messages = make([]adapters.Message, n)
	copy(r.Messages, req.Messages)
	last.Content = nil
	r.Messages[n-1] = last
	k, err := RequestKey(scope, target, &r, stream, maxTokens)
	if err != nil {
		return Partition{}, "", err
	}
	h := sha256.New()
	h.Write([]byte("gavel-semantic-v1\x00"))
	h.Write([]byte(embed))
	h.Write([]byte{0})
	h.Write([]byte(k.Hash))
	var sum [sha256.Size]byte
	return Partition{Scope: scope, Model: target, Hash: hex.EncodeToString(h.Sum(sum[:0]))}, text, nil
}

// plainText is a message content's text when it has nothing but text.
func plainText(c *adapters.Content) (string, bool) {
	if c == nil {
		return "", false
	}
	if c.Parts == nil {
		return c.Text, true
	}
	var b strings.Builder
	for _, p := range c.Parts {
		if p.Type != "text" {
			return "", false
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Text)
	}
	return b.String(), true
}

// DecodeVector reads an embeddings answer's vector: a JSON array of numbers, or a base64
// string of little-endian float32s (encoding_format "base64").
func DecodeVector(raw json.RawMessage) ([]float32, error) {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b)%4 != 0 {
			return nil, fmt.Errorf("cache: embedding is not base64 float32s")
		}
		v := make([]float32, len(b)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return v, nil
	}
	var v []float32
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("cache: embedding: %w", err)
	}
	return v, nil
}

// SemanticObserver counts what the semantic index does (engine/telemetry implements it).
type SemanticObserver interface {
	SemanticIndexSize(entries int, bytes int64)
	SemanticIndexEvicted(reason string)
}

// SemanticIndex is the semantic cache's index: per Partition, the unit vectors of the
// last user turns whose answers the cache holds, each naming its answer's exact Key. The
// answers stay in the Cache (its bound, its TTL, its Redis level); the index holds only
// vectors, under its own bound in bytes, least recently used evicted first, each vector
// expiring with its answer. A lookup scans one partition (flat: every vector of the
// partition, ~1 ns per dimension; docs/performance.md) and returns the most similar.
// Safe for concurrent use.
type SemanticIndex struct {
	max int64
	obs SemanticObserver
	now func() time.Time

	mu       sync.RWMutex
	parts    map[string]*partition
	byKey    map[string]*vecItem // by the answer's Key.String()
	lru      list.List           // of *vecItem, least recently used first
	bytes    int64
	earliest time.Time // no vector expires before this (zero: none held)
}

type partition struct {
	scope, model, id string
	items            []*vecItem
}

type vecItem struct {
	part    *partition
	at      int // index in part.items
	vec     []float32
	key     Key
	ks      string
	expires time.Time
	size    int64
	elem    *list.Element
}

// NewSemanticIndex returns an index bounded to maxBytes (≤ 0: DefaultSemanticMaxBytes).
// obs may be nil.
func NewSemanticIndex(maxBytes int64, obs SemanticObserver) *SemanticIndex {
	if maxBytes <= 0 {
		maxBytes = DefaultSemanticMaxBytes
	}
	return &SemanticIndex{max: maxBytes, obs: obs, now: time.Now, parts: map[string]*partition{}, byKey: map[string]*vecItem{}}
}

// Match is a lookup's nearest neighbour.
type Match struct {
	Key        Key
	Similarity float64 // cosine, -1–1
}

// Nearest returns the vector of part most similar to vec (cosine), ok false when the
// partition holds none that is live and of vec's dimensions.
func (s *SemanticIndex) Nearest(part Partition, vec []float32) (m Match, ok bool) {
	q := normalized(vec)
	if q == nil {
		return Match{}, false
	}
	now := s.now()
	s.mu.RLock()
	p := s.parts[part.String()]
	var best *vecItem
	bestDot := float32(-2)
	if p != nil {
		for _, it := range p.items {
			if len(it.vec) != len(q) || !now.Before(it.expires) {
				continue
			}
			if d := dot(q, it.vec); d > bestDot {
				best, bestDot = it, d
			}
		}
	}
	if best != nil {
		m, ok = Match{Key: best.key, Similarity: float64(min(bestDot, 1))}, true
	}
	s.mu.RUnlock()
	if ok {
		s.mu.Lock()
		if best.elem != nil { // not removed meanwhile
			s.lru.MoveToBack(best.elem)
		}
		s.mu.Unlock()
	}
	return m, ok
}

// Add indexes vec for the answer stored under key in part until ttl passes. An answer
// already indexed is replaced. Least recently used vectors are evicted to stay in the
// bound; a vector larger than the bound is not kept.
func (s *SemanticIndex) Add(part Partition, vec []float32, key Key, ttl time.Duration) bool {
	v := normalized(vec)
	if v == nil || ttl <= 0 {
		return false
	}
	ks := key.String()
	size := int64(4*len(v)) + int64(len(ks)) + itemOverhead
	if size > s.max {
		return false
	}
	now := s.now()
	it := &vecItem{vec: v, key: key, ks: ks, expires: now.Add(ttl), size: size}
	s.mu.Lock()
	if old := s.byKey[ks]; old != nil {
		s.remove(old)
	}
	id := part.String()
	p := s.parts[id]
	if p == nil {
		p = &partition{scope: part.Scope, model: part.Model, id: id}
		s.parts[id] = p
	}
	it.part, it.at = p, len(p.items)
	p.items = append(p.items, it)
	it.elem = s.lru.PushBack(it)
	s.byKey[ks] = it
	s.bytes += size
	if s.earliest.IsZero() || it.expires.Before(s.earliest) {
		s.earliest = it.expires
	}
	if s.bytes > s.max {
		s.makeRoom(now)
	}
	entries, bytes := len(s.byKey), s.bytes
	s.mu.Unlock()
	s.observe(entries, bytes)
	return true
}

// Forget drops the vector of the answer under key (its answer is gone from the cache).
func (s *SemanticIndex) Forget(key Key) {
	s.mu.Lock()
	it := s.byKey[key.String()]
	if it != nil {
		s.remove(it)
	}
	entries, bytes := len(s.byKey), s.bytes
	s.mu.Unlock()
	if it != nil {
		s.evicted("gone")
		s.observe(entries, bytes)
	}
}

// Purge drops the vectors f selects and returns how many.
func (s *SemanticIndex) Purge(f Filter) int {
	n := 0
	s.mu.Lock()
	for _, p := range s.parts {
		if (f.Scope == "" || f.Scope == p.scope) && (f.Model == "" || f.Model == p.model) {
			for len(p.items) > 0 {
				s.remove(p.items[len(p.items)-1])
				n++
			}
		}
	}
	entries, bytes := len(s.byKey), s.bytes
	s.mu.Unlock()
	s.observe(entries, bytes)
	return n
}

// Len is the number of vectors held; Bytes what they count against the bound.
func (s *SemanticIndex) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byKey)
}

// Bytes is what the held vectors count against the bound.
func (s *SemanticIndex) Bytes() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.bytes
}

// makeRoom brings the index under its bound: expired vectors first (when some may have
// expired), then the least recently used. Called with mu held.
func (s *SemanticIndex) makeRoom(now time.Time) {
	if !s.earliest.IsZero() && !now.Before(s.earliest) {
		s.earliest = time.Time{}
		for e := s.lru.Front(); e != nil; {
			it, next := e.Value.(*vecItem), e.Next()
			if !now.Before(it.expires) {
				s.remove(it)
				s.evicted("expired")
			} else if s.earliest.IsZero() || it.expires.Before(s.earliest) {
				s.earliest = it.expires
			}
			e = next
		}
	}
	for s.bytes > s.max && s.lru.Len() > 0 {
		s.remove(s.lru.Front().Value.(*vecItem))
		s.evicted("size")
	}
}

// remove takes it out of every structure. Called with mu held.
func (s *SemanticIndex) remove(it *vecItem) {
	p := it.part
	last := len(p.items) - 1
	p.items[it.at] = p.items[last]
	p.items[it.at].at = it.at
	p.items[last] = nil
	p.items = p.items[:last]
	if len(p.items) == 0 {
		delete(s.parts, p.id)
	}
	s.lru.Remove(it.elem)
	it.elem = nil
	delete(s.byKey, it.ks)
	s.bytes -= it.size
}

func (s *SemanticIndex) evicted(reason string) {
	if s.obs != nil {
		s.obs.SemanticIndexEvicted(reason)
	}
}

func (s *SemanticIndex) observe(entries int, bytes int64) {
	if s.obs != nil {
		s.obs.SemanticIndexSize(entries, bytes)
	}
}

// normalized returns v scaled to unit length (a copy), nil for an empty or zero vector or
// one holding a NaN or an infinity.
func normalized(v []float32) []float32 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if len(v) == 0 || sum == 0 || math.IsNaN(sum) || math.IsInf(sum, 0) {
		return nil
	}
	inv := 1 / math.Sqrt(sum)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out
}

// dot is the inner product of two vectors of the same length, four lanes at a time.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}
