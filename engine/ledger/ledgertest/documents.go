package ledgertest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/ledger"
)

// testDocuments checks ledger.Documents, for stores that have it: put, get, replace,
// delete, not found, expiry, invalid keys.
func testDocuments(t *testing.T, f Factory) {
	e := setup(t, f)
	d, ok := e.s.(ledger.Documents)
	if !ok {
		t.Skip("store has no documents (ledger.Documents)") // optional capability
	}
	ctx := e.ctx
	if _, err := d.GetDocument(ctx, "resp:k1:a"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("get of nothing: %v", err)
	}
	if err := d.PutDocument(ctx, "resp:k1:a", []byte(`{"v":1}`), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := d.PutDocument(ctx, "resp:k1:a", []byte(`{"v":2}`), time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, err := d.GetDocument(ctx, "resp:k1:a"); err != nil || string(got) != `{"v":2}` {
		t.Fatalf("get = %q, %v", got, err)
	}
	if _, err := d.GetDocument(ctx, "resp:k2:a"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("another key's document: %v", err)
	}
	if err := d.DeleteDocument(ctx, "resp:k1:a"); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteDocument(ctx, "resp:k1:a"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := d.GetDocument(ctx, "resp:k1:a"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}

	// Expiry: both the suite's clock and real time pass the ttl (Redis expires by its own
	// clock).
	ttl := 30 * time.Millisecond
	if err := d.PutDocument(ctx, "short", []byte("x"), ttl); err != nil {
		t.Fatal(err)
	}
	if err := d.PutDocument(ctx, "long", []byte("y"), time.Hour); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * ttl)
	e.clock.Advance(2 * ttl)
	if _, err := d.GetDocument(ctx, "short"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("expired document: %v", err)
	}
	if err := d.DeleteDocument(ctx, "short"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("delete of an expired document: %v", err)
	}
	if got, err := d.GetDocument(ctx, "long"); err != nil || string(got) != "y" {
		t.Fatalf("live document = %q, %v", got, err)
	}

	for _, key := range []string{"", strings.Repeat("k", ledger.MaxDocumentKey+1), "a\nb"} {
		if err := d.PutDocument(ctx, key, []byte("x"), time.Hour); !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("key %q: %v", key, err)
		}
	}
}
