package memstore

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/gavel-gw/gavel/engine/ledger"
)

var _ ledger.Documents = (*Store)(nil)

// docs are the store's documents, under a lock of their own: a stored response never
// waits on the budgets' lock, nor they on it.
type docs struct {
	mu        sync.Mutex
	m         map[string]doc
	lastSweep time.Time
}

type doc struct {
	b   []byte
	exp time.Time
}

// docSweepEvery is how often expired documents are swept from memory (on a Put): expiry
// is otherwise lazy.
const docSweepEvery = time.Minute

// PutDocument implements ledger.Documents.
func (s *Store) PutDocument(ctx context.Context, key string, b []byte, ttl time.Duration) error {
	if err := ledger.CheckDocument(key, ttl); err != nil {
		return err
	}
	now := s.opts.Now()
	d := &s.docs
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string]doc{}
	}
	if now.Sub(d.lastSweep) >= docSweepEvery {
		d.lastSweep = now
		for k, v := range d.m {
			if !now.Before(v.exp) {
				delete(d.m, k)
			}
		}
	}
	d.m[key] = doc{b: bytes.Clone(b), exp: now.Add(ttl)}
	return nil
}

// GetDocument implements ledger.Documents.
func (s *Store) GetDocument(ctx context.Context, key string) ([]byte, error) {
	d := &s.docs
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.m[key]
	if !ok || !s.opts.Now().Before(v.exp) {
		return nil, ledger.ErrNotFound
	}
	return bytes.Clone(v.b), nil
}

// DeleteDocument implements ledger.Documents.
func (s *Store) DeleteDocument(ctx context.Context, key string) error {
	d := &s.docs
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.m[key]
	delete(d.m, key)
	if !ok || !s.opts.Now().Before(v.exp) {
		return ledger.ErrNotFound
	}
	return nil
}
