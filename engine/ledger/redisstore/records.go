package redisstore

import (
	"context"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/gavel-gw/gavel/engine/ledger"
)

var (
	_ ledger.Records = (*Store)(nil)
	_ ledger.Journal = (*Store)(nil)
)

// A kind's records are one Redis hash (id → record) and its version one counter, changed
// together in a MULTI/EXEC transaction; a journal is one list, newest first, trimmed to
// its bound on every append. Like documents, records need Redis in both failure modes: a
// key kept in one replica's fallback would be invisible to the others.

func (s *Store) recKey(kind string) string     { return s.p + ":r:" + kind }
func (s *Store) recVersion(kind string) string { return s.p + ":rv:" + kind }
func (s *Store) journal(name string) string    { return s.p + ":j:" + name }

// PutRecord implements ledger.Records.
func (s *Store) PutRecord(ctx context.Context, kind, id string, rec []byte) error {
	if err := ledger.CheckRecord(kind, id); err != nil {
		return err
	}
	return s.docOp(ctx, "put_record", func() error {
		_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, s.recKey(kind), id, rec)
			p.Incr(ctx, s.recVersion(kind))
			return nil
		})
		return err
	})
}

// DeleteRecord implements ledger.Records.
func (s *Store) DeleteRecord(ctx context.Context, kind, id string) error {
	if err := ledger.CheckRecord(kind, id); err != nil {
		return err
	}
	return s.docOp(ctx, "delete_record", func() error {
		var del *redis.IntCmd
		_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			del = p.HDel(ctx, s.recKey(kind), id)
			p.Incr(ctx, s.recVersion(kind))
			return nil
		})
		if err == nil && del.Val() == 0 {
			return redis.Nil // ErrNotFound; the version moved for nothing, which is harmless
		}
		return err
	})
}

// ListRecords implements ledger.Records.
func (s *Store) ListRecords(ctx context.Context, kind string) (map[string][]byte, uint64, error) {
	if err := ledger.CheckRecord(kind, "-"); err != nil {
		return nil, 0, err
	}
	var all *redis.MapStringStringCmd
	var ver *redis.StringCmd
	err := s.docOp(ctx, "list_records", func() error {
		_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			all = p.HGetAll(ctx, s.recKey(kind))
			ver = p.Get(ctx, s.recVersion(kind))
			return nil
		})
		if errors.Is(err, redis.Nil) { // no version yet: nothing was ever stored
			err = nil
		}
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	out := make(map[string][]byte, len(all.Val()))
	for id, v := range all.Val() {
		out[id] = []byte(v)
	}
	n, _ := strconv.ParseUint(ver.Val(), 10, 64)
	return out, n, nil
}

// RecordsVersion implements ledger.Records: one GET.
func (s *Store) RecordsVersion(ctx context.Context, kind string) (uint64, error) {
	var n uint64
	err := s.docOp(ctx, "records_version", func() error {
		v, err := s.c.Get(ctx, s.recVersion(kind)).Uint64()
		n = v
		return err
	})
	if errors.Is(err, ledger.ErrNotFound) {
		return 0, nil
	}
	return n, err
}

// AppendJournal implements ledger.Journal.
func (s *Store) AppendJournal(ctx context.Context, name string, entry []byte, keep int) error {
	if err := ledger.CheckJournal(name, keep); err != nil {
		return err
	}
	return s.docOp(ctx, "append_journal", func() error {
		_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.LPush(ctx, s.journal(name), entry)
			p.LTrim(ctx, s.journal(name), 0, int64(keep)-1)
			return nil
		})
		return err
	})
}

// ReadJournal implements ledger.Journal.
func (s *Store) ReadJournal(ctx context.Context, name string, limit int) ([][]byte, error) {
	if err := ledger.CheckJournal(name, limit); err != nil {
		return nil, err
	}
	var vals []string
	err := s.docOp(ctx, "read_journal", func() error {
		var err error
		vals, err = s.c.LRange(ctx, s.journal(name), 0, int64(limit)-1).Result()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = []byte(v)
	}
	return out, nil
}
