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

	size    int       // encoded bytes: the entry's weight in L1
	expires time.Time // Stored + TTL
	// answer is Response as a Chat Completions body, made by the first hit that asks for
	// it (AnswerJSON) and written as it is by every later one: the entry never changes.
	answer atomic.Pointer[[]byte]
}

// AnswerJSON is Response encoded as a Chat Completions body, with the trailing newline
// gavel's JSON bodies end with; nil for a stream's entry or when it cannot be encoded.
// The bytes are shared by every hit on the entry: callers must not modify them.
func (e *Entry) AnswerJSON() []byte {
	if p := e.answer.Load(); p != nil {
		return *p
	}
	if e.Response == nil {
		return nil
	}
	b, err := json.Marshal(e.Response)
	if err != nil {
		return nil
	}
	b = slices.Clip(append(b, '\n')) // clipped: an append by a reader copies, never writes into it
	e.answer.Store(&b)
	return b
}

// Size is the entry's encoded size in bytes.
func (e *Entry) Size() int { return e.size }

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
