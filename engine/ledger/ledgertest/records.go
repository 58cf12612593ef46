package ledgertest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/gavel-gw/gavel/engine/ledger"
)

// testRecords checks ledger.Records, for stores that have it: put, replace, list, delete,
// versions that move on every change and only then, invalid names.
func testRecords(t *testing.T, f Factory) {
	e := setup(t, f)
	r, ok := e.s.(ledger.Records)
	if !ok {
		t.Skip("store has no records (ledger.Records)") // optional capability
	}
	ctx := e.ctx
	if v, err := r.RecordsVersion(ctx, "keys"); err != nil || v != 0 {
		t.Fatalf("version before any change = %d, %v", v, err)
	}
	if m, v, err := r.ListRecords(ctx, "keys"); err != nil || len(m) != 0 || v != 0 {
		t.Fatalf("empty list = %v, %d, %v", m, v, err)
	}
	if err := r.PutRecord(ctx, "keys", "a", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	v1, err := r.RecordsVersion(ctx, "keys")
	if err != nil || v1 == 0 {
		t.Fatalf("version after put = %d, %v", v1, err)
	}
	if v, _ := r.RecordsVersion(ctx, "keys"); v != v1 {
		t.Fatalf("version moved without a change: %d then %d", v1, v)
	}
	if err := r.PutRecord(ctx, "keys", "a", []byte(`{"v":2}`)); err != nil {
		t.Fatal(err)
	}
	if err := r.PutRecord(ctx, "keys", "b", []byte(`{"v":3}`)); err != nil {
		t.Fatal(err)
	}
	if err := r.PutRecord(ctx, "other", "a", []byte(`x`)); err != nil {
		t.Fatal(err)
	}
	m, v2, err := r.ListRecords(ctx, "keys")
	if err != nil || len(m) != 2 || string(m["a"]) != `{"v":2}` || string(m["b"]) != `{"v":3}` {
		t.Fatalf("list = %q, %v", m, err)
	}
	if v2 <= v1 {
		t.Fatalf("version after two more puts = %d, was %d", v2, v1)
	}
	if err := r.DeleteRecord(ctx, "keys", "a"); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteRecord(ctx, "keys", "a"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	m, v3, err := r.ListRecords(ctx, "keys")
	if err != nil || len(m) != 1 || v3 <= v2 {
		t.Fatalf("after delete: %q v%d (was v%d), %v", m, v3, v2, err)
	}
	for _, bad := range [][2]string{{"", "a"}, {"keys", ""}, {"keys", "a:b"}, {"keys", "a\nb"}} {
		if err := r.PutRecord(ctx, bad[0], bad[1], []byte("x")); !errors.Is(err, ledger.ErrInvalid) {
			t.Errorf("put %q: %v", bad, err)
		}
	}
}

// testJournal checks ledger.Journal: newest first, limit, the bound on what is kept.
func testJournal(t *testing.T, f Factory) {
	e := setup(t, f)
	j, ok := e.s.(ledger.Journal)
	if !ok {
		t.Skip("store has no journal (ledger.Journal)") // optional capability
	}
	ctx := e.ctx
	if got, err := j.ReadJournal(ctx, "audit", 10); err != nil || len(got) != 0 {
		t.Fatalf("empty journal = %q, %v", got, err)
	}
	for i := range 7 {
		if err := j.AppendJournal(ctx, "audit", []byte(fmt.Sprint(i)), 5); err != nil {
			t.Fatal(err)
		}
	}
	got, err := j.ReadJournal(ctx, "audit", 10)
	if err != nil || fmt.Sprintf("%s", got) != "[6 5 4 3 2]" {
		t.Fatalf("journal = %s, %v; want the 5 newest, newest first", got, err)
	}
	if got, _ := j.ReadJournal(ctx, "audit", 2); fmt.Sprintf("%s", got) != "[6 5]" {
		t.Fatalf("limit 2 = %s", got)
	}
	if err := j.AppendJournal(ctx, "audit", []byte("x"), 0); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("keep 0: %v", err)
	}
}
