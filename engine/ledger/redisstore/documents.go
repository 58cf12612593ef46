package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gavel-gw/gavel/engine/ledger"
)

var _ ledger.Documents = (*Store)(nil)

// doc is a document's Redis key; Redis' own expiry (PX) is its TTL.
func (s *Store) doc(key string) string { return s.p + ":d:" + key }

// Documents need Redis in both failure modes, as Spend does: a document kept in one
// replica's local fallback would be invisible to the others and lost when Redis returns.

// PutDocument implements ledger.Documents.
func (s *Store) PutDocument(ctx context.Context, key string, doc []byte, ttl time.Duration) error {
	if err := ledger.CheckDocument(key, ttl); err != nil {
		return err
	}
	return s.docOp(ctx, "put_document", func() error { return s.c.Set(ctx, s.doc(key), doc, ttl).Err() })
}

// GetDocument implements ledger.Documents.
func (s *Store) GetDocument(ctx context.Context, key string) ([]byte, error) {
	var out []byte
	err := s.docOp(ctx, "get_document", func() error {
		var err error
		out, err = s.c.Get(ctx, s.doc(key)).Bytes()
		return err
	})
	return out, err
}

// DeleteDocument implements ledger.Documents.
func (s *Store) DeleteDocument(ctx context.Context, key string) error {
	return s.docOp(ctx, "delete_document", func() error {
		n, err := s.c.Del(ctx, s.doc(key)).Result()
		if err == nil && n == 0 {
			return redis.Nil
		}
		return err
	})
}

func (s *Store) docOp(ctx context.Context, op string, fn func() error) error {
	if s.closed.Load() {
		return ledger.ErrClosed
	}
	if !s.try() {
		return s.fail(ctx, op, errBackoff)
	}
	err := fn()
	if errors.Is(err, redis.Nil) {
		s.ok()
		return ledger.ErrNotFound
	}
	if err != nil {
		return s.fail(ctx, op, err)
	}
	s.ok()
	return nil
}
