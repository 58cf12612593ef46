package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Records is the optional capability of a store to keep a small set of durable records
// by kind and id — gavel's managed virtual keys — beside the spend: the file store keeps
// them across a restart and Redis shares them between replicas. Every change bumps the
// kind's version, so a replica notices another's change by reading one number
// (RecordsVersion) instead of every record. Callers find it by type assertion on the Store.
type Records interface {
	// PutRecord stores rec under kind/id, replacing what was there, and bumps the kind's
	// version.
	PutRecord(ctx context.Context, kind, id string, rec []byte) error
	// DeleteRecord removes kind/id and bumps the version; ErrNotFound when there was none.
	DeleteRecord(ctx context.Context, kind, id string) error
	// ListRecords returns every record of kind, by id, and the version they are at, read
	// in one consistent step.
	ListRecords(ctx context.Context, kind string) (map[string][]byte, uint64, error)
	// RecordsVersion returns kind's version: 0 before any change, then higher after each.
	RecordsVersion(ctx context.Context, kind string) (uint64, error)
}

// Journal is the optional capability of a store to keep bounded, append-only logs by
// name — gavel's audit log of admin actions — newest first.
type Journal interface {
	// AppendJournal appends entry to the named journal and drops its oldest entries
	// beyond keep (> 0).
	AppendJournal(ctx context.Context, name string, entry []byte, keep int) error
	// ReadJournal returns up to limit entries of the journal, newest first.
	ReadJournal(ctx context.Context, name string, limit int) ([][]byte, error)
}

// ErrRecordsUnsupported is what a caller reports when the configured store has no
// Records (or no Journal).
var ErrRecordsUnsupported = errors.New("ledger: this store keeps no records")

// MaxRecordName bounds kinds, ids and journal names.
const MaxRecordName = 128

// CheckRecord validates a record's kind and id (or a journal's name, with id "-").
func CheckRecord(kind, id string) error {
	for _, s := range []string{kind, id} {
		if s == "" || len(s) > MaxRecordName || strings.ContainsAny(s, "\x00\r\n:") {
			return fmt.Errorf("%w: record kind and id must be 1-%d bytes without NUL, ':' or line breaks", ErrInvalid, MaxRecordName)
		}
	}
	return nil
}

// CheckJournal validates a journal append or read.
func CheckJournal(name string, n int) error {
	if err := CheckRecord(name, "-"); err != nil {
		return err
	}
	if n <= 0 {
		return fmt.Errorf("%w: journal keep/limit must be positive, got %d", ErrInvalid, n)
	}
	return nil
}
