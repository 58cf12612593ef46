package memstore

import (
	"bytes"
	"context"
	"maps"
	"sync"

	"github.com/gavel-gw/gavel/engine/ledger"
)

var (
	_ ledger.Records = (*Store)(nil)
	_ ledger.Journal = (*Store)(nil)
)

// recs are the store's records and journals, under a lock of their own.
type recs struct {
	mu       sync.Mutex
	kinds    map[string]map[string][]byte
	versions map[string]uint64
	journals map[string][][]byte // oldest first
}

// PutRecord implements ledger.Records.
func (s *Store) PutRecord(ctx context.Context, kind, id string, rec []byte) error {
	if err := ledger.CheckRecord(kind, id); err != nil {
		return err
	}
	r := &s.recs
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kinds == nil {
		r.kinds, r.versions = map[string]map[string][]byte{}, map[string]uint64{}
	}
	if r.kinds[kind] == nil {
		r.kinds[kind] = map[string][]byte{}
	}
	r.kinds[kind][id] = bytes.Clone(rec)
	r.versions[kind]++
	return nil
}

// DeleteRecord implements ledger.Records.
func (s *Store) DeleteRecord(ctx context.Context, kind, id string) error {
	if err := ledger.CheckRecord(kind, id); err != nil {
		return err
	}
	r := &s.recs
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.kinds[kind][id]; !ok {
		return ledger.ErrNotFound
	}
	delete(r.kinds[kind], id)
	r.versions[kind]++
	return nil
}

// ListRecords implements ledger.Records.
func (s *Store) ListRecords(ctx context.Context, kind string) (map[string][]byte, uint64, error) {
	if err := ledger.CheckRecord(kind, "-"); err != nil {
		return nil, 0, err
	}
	r := &s.recs
	r.mu.Lock()
	defer r.mu.Unlock()
	out := maps.Clone(r.kinds[kind])
	if out == nil {
		out = map[string][]byte{}
	}
	return out, r.versions[kind], nil // values are never mutated in place: sharing is safe
}

// RecordsVersion implements ledger.Records.
func (s *Store) RecordsVersion(ctx context.Context, kind string) (uint64, error) {
	r := &s.recs
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.versions[kind], nil
}

// AppendJournal implements ledger.Journal.
func (s *Store) AppendJournal(ctx context.Context, name string, entry []byte, keep int) error {
	if err := ledger.CheckJournal(name, keep); err != nil {
		return err
	}
	r := &s.recs
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.journals == nil {
		r.journals = map[string][][]byte{}
	}
	j := append(r.journals[name], bytes.Clone(entry))
	if len(j) > keep {
		j = append(j[:0:0], j[len(j)-keep:]...)
	}
	r.journals[name] = j
	return nil
}

// ReadJournal implements ledger.Journal.
func (s *Store) ReadJournal(ctx context.Context, name string, limit int) ([][]byte, error) {
	if err := ledger.CheckJournal(name, limit); err != nil {
		return nil, err
	}
	r := &s.recs
	r.mu.Lock()
	defer r.mu.Unlock()
	j := r.journals[name]
	out := make([][]byte, 0, min(limit, len(j)))
	for i := len(j) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, j[i])
	}
	return out, nil
}
