package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Documents is the optional capability of a store to keep small documents by key for a
// time: the Responses API's stored responses (store, previous_response_id) live there,
// beside the spend, so that the file store keeps them across a restart and Redis shares
// them between replicas. Callers find it by type assertion on the Store.
type Documents interface {
	// PutDocument stores doc under key for ttl (> 0), replacing what was there.
	PutDocument(ctx context.Context, key string, doc []byte, ttl time.Duration) error
	// GetDocument returns the document under key, or ErrNotFound when there is none or
	// it has expired.
	GetDocument(ctx context.Context, key string) ([]byte, error)
	// DeleteDocument removes the document under key; ErrNotFound when there was none.
	DeleteDocument(ctx context.Context, key string) error
}

// ErrNotFound is returned for a document that does not exist or has expired.
var ErrNotFound = errors.New("ledger: not found")

// MaxDocumentKey bounds a document key's length: keys are built from ids a client sends.
const MaxDocumentKey = 512

// CheckDocument validates a document key and ttl.
func CheckDocument(key string, ttl time.Duration) error {
	if key == "" || len(key) > MaxDocumentKey || strings.ContainsAny(key, "\x00\r\n") {
		return fmt.Errorf("%w: document key must be 1-%d bytes without NUL or line breaks", ErrInvalid, MaxDocumentKey)
	}
	if ttl < 0 {
		return fmt.Errorf("%w: negative document ttl %s", ErrInvalid, ttl)
	}
	return nil
}
