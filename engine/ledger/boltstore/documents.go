package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/gavel-gw/gavel/engine/ledger"
)

var _ ledger.Documents = (*Store)(nil)

// bucketDocuments holds ledger.Documents: each value is the expiry (8 bytes, big-endian
// Unix nanoseconds) followed by the document.
var bucketDocuments = []byte("documents")

// PutDocument implements ledger.Documents; the document is on disk when it returns.
func (s *Store) PutDocument(ctx context.Context, key string, doc []byte, ttl time.Duration) error {
	if err := ledger.CheckDocument(key, ttl); err != nil {
		return err
	}
	v := make([]byte, 8+len(doc))
	binary.BigEndian.PutUint64(v, uint64(s.p.now().Add(ttl).UnixNano()))
	copy(v[8:], doc)
	return s.docUpdate(func(b *bolt.Bucket) error { return b.Put([]byte(key), v) })
}

// GetDocument implements ledger.Documents.
func (s *Store) GetDocument(ctx context.Context, key string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDocuments)
		if b == nil {
			return ledger.ErrNotFound
		}
		v := b.Get([]byte(key))
		if !s.live(v) {
			return ledger.ErrNotFound
		}
		out = bytes.Clone(v[8:])
		return nil
	})
	if err != nil && err != ledger.ErrNotFound {
		return nil, wrapUnavailable(err)
	}
	return out, err
}

// DeleteDocument implements ledger.Documents.
func (s *Store) DeleteDocument(ctx context.Context, key string) error {
	found := false
	err := s.docUpdate(func(b *bolt.Bucket) error {
		found = s.live(b.Get([]byte(key)))
		return b.Delete([]byte(key))
	})
	if err == nil && !found {
		return ledger.ErrNotFound
	}
	return err
}

// live reports whether a stored value is there and not expired.
func (s *Store) live(v []byte) bool {
	return len(v) >= 8 && s.p.now().UnixNano() < int64(binary.BigEndian.Uint64(v))
}

func (s *Store) docUpdate(fn func(*bolt.Bucket) error) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketDocuments)
		if err != nil {
			return err
		}
		return fn(b)
	})
	return wrapUnavailable(err)
}

// pruneDocuments deletes expired documents (with the budgets' retention sweep).
func (p *persister) pruneDocuments() error {
	now := uint64(p.now().UnixNano())
	return p.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDocuments)
		if b == nil {
			return nil
		}
		var old [][]byte
		err := b.ForEach(func(k, v []byte) error {
			if len(v) < 8 || binary.BigEndian.Uint64(v) <= now {
				old = append(old, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

func wrapUnavailable(err error) error {
	if err == nil || errors.Is(err, berrors.ErrDatabaseNotOpen) {
		if err != nil {
			return ledger.ErrClosed
		}
		return nil
	}
	return &unavailable{err}
}

type unavailable struct{ err error }

func (u *unavailable) Error() string { return "ledger: file store: " + u.err.Error() }
func (u *unavailable) Unwrap() []error {
	return []error{ledger.ErrStoreUnavailable, u.err}
}
