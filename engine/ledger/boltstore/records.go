package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"

	"github.com/gavel-gw/gavel/engine/ledger"
)

var (
	_ ledger.Records = (*Store)(nil)
	_ ledger.Journal = (*Store)(nil)
)

// bucketRecords holds ledger.Records: a bucket per kind, the record under its id, and
// the kind's version under versionKey (ids cannot contain ':', so it never collides).
// bucketJournals holds ledger.Journal: a bucket per name, entries under 8-byte
// big-endian sequence numbers, so a cursor walks them in order.
var (
	bucketRecords  = []byte("records")
	bucketJournals = []byte("journals")
	versionKey     = []byte(":version")
)

// PutRecord implements ledger.Records; the record is on disk when it returns.
func (s *Store) PutRecord(ctx context.Context, kind, id string, rec []byte) error {
	if err := ledger.CheckRecord(kind, id); err != nil {
		return err
	}
	return s.kindUpdate(kind, func(b *bolt.Bucket) error { return b.Put([]byte(id), rec) })
}

// DeleteRecord implements ledger.Records.
func (s *Store) DeleteRecord(ctx context.Context, kind, id string) error {
	if err := ledger.CheckRecord(kind, id); err != nil {
		return err
	}
	return s.kindUpdate(kind, func(b *bolt.Bucket) error {
		if b.Get([]byte(id)) == nil {
			return ledger.ErrNotFound
		}
		return b.Delete([]byte(id))
	})
}

// kindUpdate runs fn on kind's bucket and bumps its version, in one transaction.
func (s *Store) kindUpdate(kind string, fn func(*bolt.Bucket) error) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		top, err := tx.CreateBucketIfNotExists(bucketRecords)
		if err != nil {
			return err
		}
		b, err := top.CreateBucketIfNotExists([]byte(kind))
		if err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], version(b)+1)
		return b.Put(versionKey, v[:])
	})
	if err == ledger.ErrNotFound {
		return err
	}
	return wrapUnavailable(err)
}

func version(b *bolt.Bucket) uint64 {
	if v := b.Get(versionKey); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func kindBucket(tx *bolt.Tx, kind string) *bolt.Bucket {
	if top := tx.Bucket(bucketRecords); top != nil {
		return top.Bucket([]byte(kind))
	}
	return nil
}

// ListRecords implements ledger.Records.
func (s *Store) ListRecords(ctx context.Context, kind string) (map[string][]byte, uint64, error) {
	if err := ledger.CheckRecord(kind, "-"); err != nil {
		return nil, 0, err
	}
	out, ver := map[string][]byte{}, uint64(0)
	err := s.db.View(func(tx *bolt.Tx) error {
		b := kindBucket(tx, kind)
		if b == nil {
			return nil
		}
		ver = version(b)
		return b.ForEach(func(k, v []byte) error {
			if !bytes.Equal(k, versionKey) {
				out[string(k)] = bytes.Clone(v)
			}
			return nil
		})
	})
	if err != nil {
		return nil, 0, wrapUnavailable(err)
	}
	return out, ver, nil
}

// RecordsVersion implements ledger.Records.
func (s *Store) RecordsVersion(ctx context.Context, kind string) (uint64, error) {
	var ver uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := kindBucket(tx, kind); b != nil {
			ver = version(b)
		}
		return nil
	})
	return ver, wrapUnavailable(err)
}

// AppendJournal implements ledger.Journal; the entry is on disk when it returns.
func (s *Store) AppendJournal(ctx context.Context, name string, entry []byte, keep int) error {
	if err := ledger.CheckJournal(name, keep); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		top, err := tx.CreateBucketIfNotExists(bucketJournals)
		if err != nil {
			return err
		}
		b, err := top.CreateBucketIfNotExists([]byte(name))
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], seq)
		if err := b.Put(k[:], entry); err != nil {
			return err
		}
		// Sequence numbers are dense, so everything at or below seq-keep is beyond keep.
		if seq <= uint64(keep) {
			return nil
		}
		c := b.Cursor()
		for ck, _ := c.First(); ck != nil && binary.BigEndian.Uint64(ck) <= seq-uint64(keep); ck, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	return wrapUnavailable(err)
}

// ReadJournal implements ledger.Journal.
func (s *Store) ReadJournal(ctx context.Context, name string, limit int) ([][]byte, error) {
	if err := ledger.CheckJournal(name, limit); err != nil {
		return nil, err
	}
	out := [][]byte{}
	err := s.db.View(func(tx *bolt.Tx) error {
		top := tx.Bucket(bucketJournals)
		if top == nil {
			return nil
		}
		b := top.Bucket([]byte(name))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			out = append(out, bytes.Clone(v))
		}
		return nil
	})
	if err != nil {
		return nil, wrapUnavailable(err)
	}
	return out, nil
}
