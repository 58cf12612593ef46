package policy

import (
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// ruleCache is the cache of rule results one evaluation keeps (OPA's VirtualCache): every
// rule a decision refers to is evaluated once and its value recalled after that. OPA's own
// is a trie of hash maps built anew for each evaluation, three to four allocations per
// rule evaluated; a decision evaluates tens of rules. This one is a flat list reused from
// a pool: a decision refers to at most a few hundred rules, so a scan over hashes is as
// fast as a lookup, and a warm cache allocates nothing.
type ruleCache struct {
	entries []ruleEntry
	frames  []int       // start of each frame in entries; the last is the active one
	terms   []*ast.Term // the entries' refs, copied: OPA reuses the slices it passes
}

type ruleEntry struct {
	hash       int
	start, end int // the ref in terms
	value      *ast.Term
}

var _ topdown.VirtualCache = (*ruleCache)(nil)

var ruleCaches = sync.Pool{New: func() any { return &ruleCache{frames: []int{0}} }}

// maxPooledRuleEntries keeps a cache that grew on an unusual decision out of the pool.
const maxPooledRuleEntries = 4096

func getRuleCache() *ruleCache { return ruleCaches.Get().(*ruleCache) }

// release clears the cache (its values belong to the finished evaluation) and pools it.
func (c *ruleCache) release() {
	if len(c.terms) > maxPooledRuleEntries {
		return
	}
	clear(c.entries)
	clear(c.terms)
	c.entries, c.terms, c.frames = c.entries[:0], c.terms[:0], append(c.frames[:0], 0)
	ruleCaches.Put(c)
}

func (c *ruleCache) Push() { c.frames = append(c.frames, len(c.entries)) }

func (c *ruleCache) Pop() {
	if len(c.frames) == 1 {
		return
	}
	start := c.frames[len(c.frames)-1]
	c.frames = c.frames[:len(c.frames)-1]
	if start < len(c.entries) {
		clear(c.terms[c.entries[start].start:])
		c.terms = c.terms[:c.entries[start].start]
		clear(c.entries[start:])
		c.entries = c.entries[:start]
	}
}

func (c *ruleCache) find(ref ast.Ref, h int) int {
	for i := len(c.entries) - 1; i >= c.frames[len(c.frames)-1]; i-- {
		e := &c.entries[i]
		if e.hash != h || e.end-e.start != len(ref) {
			continue
		}
		same := true
		for j, t := range c.terms[e.start:e.end] {
			if !t.Equal(ref[j]) {
				same = false
				break
			}
		}
		if same {
			return i
		}
	}
	return -1
}

// Get returns the value cached for ref; nil and true when ref was found undefined.
func (c *ruleCache) Get(ref ast.Ref) (*ast.Term, bool) {
	i := c.find(ref, ref.Hash())
	if i < 0 {
		return nil, false
	}
	v := c.entries[i].value
	return v, v == nil
}

// Put records ref's value; nil records that ref is undefined.
func (c *ruleCache) Put(ref ast.Ref, value *ast.Term) {
	h := ref.Hash()
	if i := c.find(ref, h); i >= 0 {
		c.entries[i].value = value
		return
	}
	start := len(c.terms)
	c.terms = append(c.terms, ref...)
	c.entries = append(c.entries, ruleEntry{hash: h, start: start, end: len(c.terms), value: value})
}

// Keys lists the defined refs of the active frame.
func (c *ruleCache) Keys() []ast.Ref {
	var keys []ast.Ref
	for _, e := range c.entries[c.frames[len(c.frames)-1]:] {
		if e.value != nil {
			keys = append(keys, ast.Ref(c.terms[e.start:e.end:e.end]).Copy())
		}
	}
	return keys
}
