package keys

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/ledger/memstore"
	"github.com/gavel-gw/gavel/engine/policy"
)

func TestDecodeFields(t *testing.T) {
	for _, tc := range []struct {
		body, param string
		ok          bool
	}{
		{``, "", true},
		{`{"team":"a","labels":{"x":"y"},"expires_at":null}`, "", true},
		{`{"team":1}`, "team", false},
		{`{"teams":"a"}`, "teams", false},
		{`{"expires_at":"soon"}`, "expires_at", false},
		{`[]`, "", false},
		{`{"team":"a"} x`, "", false},
	} {
		f, names, err := DecodeFields(strings.NewReader(tc.body))
		var ie *InvalidError
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.body, err)
		case !tc.ok && (!errors.As(err, &ie) || ie.Param != tc.param):
			t.Errorf("%s: err = %v, want an InvalidError naming %q", tc.body, err, tc.param)
		case tc.ok && tc.body != "" && (!f.Team.Set || len(names) != 3 || !f.ExpiresAt.Set || !f.ExpiresAt.V.IsZero()):
			t.Errorf("%s: %+v %v", tc.body, f, names)
		}
	}
}

func TestDecodeGrace(t *testing.T) {
	for body, want := range map[string]time.Duration{``: DefaultGrace, `{}`: DefaultGrace, `{"grace_s":0}`: 0, `{"grace_s":90}`: 90 * time.Second} {
		if got, err := DecodeGrace(strings.NewReader(body)); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", body, got, err, want)
		}
	}
	for _, bad := range []string{`{"grace_s":-1}`, `{"grace_s":99999999}`, `{"grace":1}`, `{"grace_s":"1"}`} {
		if _, err := DecodeGrace(strings.NewReader(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func newManager(t *testing.T, file map[string]policy.KeyRecord, now func() time.Time) (*Manager, *auth.Keys, *bytes.Buffer) {
	t.Helper()
	ks := auth.New(file, false)
	var log bytes.Buffer
	m, err := New(memstore.New(memstore.Options{}), ks, Options{Now: now, Log: slogTo(&log)})
	if err != nil {
		t.Fatal(err)
	}
	return m, ks, &log
}

func TestManagerLifecycle(t *testing.T) {
	clock := time.Now().UTC() // the authenticator reads the real clock on each request
	now := func() time.Time { return clock }
	admin := &auth.Caller{Record: policy.KeyRecord{KeyID: "k-admin", User: "ops", Role: policy.RoleAdmin}}
	m, ks, log := newManager(t, map[string]policy.KeyRecord{auth.Hash("file-secret"): {KeyID: "k-file"}}, now)
	ctx := context.Background()

	f, names, _ := DecodeFields(strings.NewReader(`{"team":"search","models":["b","a","a"],"rpm":5}`))
	k, err := m.Create(ctx, admin, f, names)
	if err != nil || k.Secret == "" || k.Status != StatusActive || strings.Join(k.Models, ",") != "a,b" || k.CreatedBy != "k-admin" {
		t.Fatalf("create: %+v %v", k, err)
	}
	c, err := ks.Authenticate("Bearer " + k.Secret)
	if err != nil || c.Record.KeyID != k.ID || c.Record.Team != "search" || c.Record.RPM != 5 {
		t.Fatalf("created key not in force: %v %+v", err, c)
	}
	if _, err := ks.Authenticate("Bearer file-secret"); err != nil {
		t.Fatalf("the keys file's key: %v", err)
	}

	got, err := m.Get(ctx, k.ID)
	if err != nil || got.Secret != "" || got.Team != "search" {
		t.Fatalf("get: %+v %v", got, err)
	}
	f, names, _ = DecodeFields(strings.NewReader(`{"team":"ads","expires_at":"` + clock.Add(24*time.Hour).Format(time.RFC3339) + `"}`))
	if _, err := m.Update(ctx, admin, k.ID, f, names); err != nil {
		t.Fatal(err)
	}
	if c, _ := ks.Authenticate("Bearer " + k.Secret); c == nil || c.Record.Team != "ads" {
		t.Fatalf("update not in force: %+v", c)
	}

	r, err := m.Rotate(ctx, admin, k.ID, time.Minute)
	if err != nil || r.Secret == "" || r.Secret == k.Secret || r.GraceUntil == nil || !r.GraceUntil.Equal(clock.Add(time.Minute)) {
		t.Fatalf("rotate: %+v %v", r, err)
	}
	for _, s := range []string{k.Secret, r.Secret} {
		if _, err := ks.Authenticate("Bearer " + s); err != nil {
			t.Errorf("within the grace period: %v", err)
		}
	}
	if _, err := m.Revoke(ctx, admin, k.ID); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{k.Secret, r.Secret} {
		if _, err := ks.Authenticate("Bearer " + s); err == nil || !strings.Contains(err.Error(), "revoked") {
			t.Errorf("revoked: %v", err)
		}
	}
	if _, err := m.Revoke(ctx, admin, k.ID); !errors.Is(err, ErrRevoked) {
		t.Errorf("second revoke: %v", err)
	}
	if _, err := m.Rotate(ctx, admin, "key_nope", 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("rotate unknown: %v", err)
	}
	list, err := m.List(ctx)
	if err != nil || len(list) != 1 || list[0].Status != StatusRevoked {
		t.Fatalf("list: %+v %v", list, err)
	}

	entries, err := m.AuditLog(ctx, 10)
	if err != nil || len(entries) != 4 {
		t.Fatalf("audit: %d %v", len(entries), err)
	}
	if !strings.Contains(string(entries[0]), `"action":"key.revoke"`) || !strings.Contains(string(entries[3]), `"models":["b","a","a"]`) {
		t.Errorf("audit entries: %s", entries)
	}
	for _, s := range []string{k.Secret, r.Secret} {
		if strings.Contains(log.String(), s) || strings.Contains(string(bytes.Join(entriesBytes(entries), nil)), s) {
			t.Error("a secret reached the log or the audit log")
		}
	}
}

func entriesBytes(es []jsonRaw) [][]byte {
	out := make([][]byte, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// A replica sees another's change on its next Sync; no change, no reload.
func TestSyncAcrossManagers(t *testing.T) {
	store := memstore.New(memstore.Options{})
	ksA, ksB := auth.New(nil, false), auth.New(nil, false)
	a, _ := New(store, ksA, Options{})
	b, _ := New(store, ksB, Options{})
	ctx := context.Background()
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	k, err := a.Create(ctx, nil, Fields{Team: Opt[string]{true, "t"}}, []string{"team"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ksB.Authenticate("Bearer " + k.Secret); err == nil {
		t.Fatal("B knows the key before syncing")
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ksB.Authenticate("Bearer " + k.Secret); err != nil {
		t.Fatalf("B after sync: %v", err)
	}
}

func TestEnsureAdmin(t *testing.T) {
	m, ks, _ := newManager(t, nil, nil)
	ctx := context.Background()
	k, err := m.EnsureAdmin(ctx)
	if err != nil || k.Secret == "" || k.Role != policy.RoleAdmin || !k.Bootstrap {
		t.Fatalf("first: %+v %v", k, err)
	}
	if _, err := ks.AuthenticateAdmin("Bearer " + k.Secret); err != nil {
		t.Fatal(err)
	}
	if again, err := m.EnsureAdmin(ctx); err != nil || again.Secret != "" {
		t.Fatalf("second: %+v %v", again, err)
	}
	// A configured admin key: nothing to make.
	m2, _, _ := newManager(t, map[string]policy.KeyRecord{auth.Hash("a"): {KeyID: "a", Admin: true}}, nil)
	if k, err := m2.EnsureAdmin(ctx); err != nil || k.Secret != "" {
		t.Fatalf("with a configured admin key: %+v %v", k, err)
	}
}
