package cache

import (
	"encoding/json"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

// Entry is a stored answer: a buffered completion (Response) or a stream's chunks in
// order, the usage included (Chunks), with what is needed to account for serving it again.
type Entry struct {
	Route    string                 `json:"route"` // provider/model that answered
	Usage    *adapters.Usage        `json:"usage,omitempty"`
	CostMUSD int64                  `json:"cost_musd"` // what the original answer cost
	Response *adapters.ChatResponse `json:"response,omitempty"`
	Chunks   []*adapters.ChatChunk  `json:"chunks,omitempty"`
	// BodyHash is the hash of the client's request an idempotent answer belongs to
	// (Idempotency-Key): the same key with another body is refused.
	BodyHash string        `json:"body_hash,omitempty"`
	Stored   time.Time     `json:"stored"`
	TTL      time.Duration `json:"ttl"`

	size    int       // encoded bytes: the entry's weight in L1 with renderedBytes
	expires time.Time // Stored + TTL
	// rendered are the entry's renderings (Rendered, AnswerJSON), each made by the first
	// hit that asks for it and written as it is by every later one: the entry never changes.
	rendered [renderings]atomic.Pointer[[]byte]
	// renderedBytes is the renderings' size, counted in the entry's L1 weight: a hit's
	// rendering grows an entry already in L1 by up to twice its size, which the bound
	// must see or L1 holds several times what it is configured for.
	renderedBytes atomic.Int64
	// grown, set before the entry is published in L1, makes L1 weigh the entry again after
	// a rendering was added (nil for an entry L1 does not hold). An entry is stored under
	// one key: the pipeline makes a new one for each answer it stores.
	grown func(*Entry)
}

// Renderings of a stored stream that hits write as they are (Entry.Rendered): the
// answer as its client's protocol frames it, rendered once per entry instead of once per
// hit.
const (
	RenderChatSSE      = iota // Chat Completions events, without the usage gavel asked for
	RenderChatSSEUsage        // Chat Completions events, with the usage the client asked for
	renderAnswerJSON          // Response as a Chat Completions body (AnswerJSON)
	renderings
)

// Rendered is the entry's answer in rendering i (RenderChatSSE…): render's bytes, made by
// the first hit that asks for them and shared by every later one, so callers must not
// modify them. Two first hits at once may both render; the bytes are the same, and the
// first kept is the one every hit writes and L1 counts. When render fails, Rendered is nil
// and nothing is kept.
func (e *Entry) Rendered(i int, render func() ([]byte, error)) []byte {
	if p := e.rendered[i].Load(); p != nil {
		return *p
	}
	b, err := render()
	if err != nil {
		return nil
	}
	b = slices.Clip(b) // an append by a reader copies, never writes into it
	if !e.rendered[i].CompareAndSwap(nil, &b) {
		return *e.rendered[i].Load()
	}
	e.renderedBytes.Add(int64(len(b)))
	if e.grown != nil {
		e.grown(e)
	}
	return b
}

// AnswerJSON is Response encoded as a Chat Completions body, with the trailing newline
// gavel's JSON bodies end with; nil for a stream's entry or when it cannot be encoded.
// The bytes are shared by every hit on the entry: callers must not modify them.
func (e *Entry) AnswerJSON() []byte {
	if e.Response == nil {
		return nil
	}
	return e.Rendered(renderAnswerJSON, func() ([]byte, error) {
		b, err := json.Marshal(e.Response)
		return append(b, '\n'), err
	})
}

// Size is the entry's encoded size in bytes.
func (e *Entry) Size() int { return e.size }

// weight is what the entry holds in memory as L1 counts it: its encoded size and its
// renderings.
func (e *Entry) weight() int { return e.size + int(e.renderedBytes.Load()) }

func (e *Entry) encode() ([]byte, error) {
	b, err := json.Marshal(e)
	if err == nil {
		e.size = len(b)
	}
	return b, err
}

func decodeEntry(b []byte) (*Entry, error) {
	e := &Entry{}
	if err := json.Unmarshal(b, e); err != nil {
		return nil, err
	}
	e.size = len(b)
	return e, nil
}
