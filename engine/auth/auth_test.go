package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/engine/policy"
)

func TestAuthenticate(t *testing.T) {
	secret, hash, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	k := New(map[string]policy.KeyRecord{hash: {KeyID: "k1", Team: "search"}}, true)
	tests := []struct {
		header string
		err    error
	}{
		{"Bearer " + secret, nil},
		{"bearer " + secret, nil},
		{"", ErrMissingKey},
		{"Bearer ", ErrMissingKey},
		{"Basic abc", ErrMissingKey},
		{"Bearer " + secret + "x", ErrUnknownKey},
	}
	for _, tc := range tests {
		c, err := k.Authenticate(tc.header)
		if !errors.Is(err, tc.err) {
			t.Errorf("%q: err = %v, want %v", tc.header, err, tc.err)
		}
		if err == nil && (c.Record.Team != "search" || !strings.Contains(c.Value.String(), `"team": "search"`)) {
			t.Errorf("caller = %+v", c)
		}
	}
	if k.Open() {
		t.Error("open with keys configured")
	}
}

func TestOpenMode(t *testing.T) {
	c, err := New(nil, true).Authenticate("")
	if err != nil || !c.Anonymous {
		t.Fatalf("open mode: %v %+v", err, c)
	}
	if _, err := New(nil, false).Authenticate("Bearer x"); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("closed mode without keys: %v", err)
	}
}

func TestBundleKeysSwap(t *testing.T) {
	k := New(nil, true)
	k.SetBundleKeys(map[string]policy.KeyRecord{Hash("s1"): {KeyID: "b1"}})
	if _, err := k.Authenticate("Bearer s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Authenticate(""); !errors.Is(err, ErrMissingKey) {
		t.Fatalf("a key set must end open mode: %v", err)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "keys.yaml")
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	h := Hash("secret")
	m, err := LoadFile(write("keys:\n  - sha256: " + h + "\n    key_id: k1\n    team: t\n    labels: {env: prod}\n"))
	if err != nil || m[h].Team != "t" || m[h].Labels["env"] != "prod" {
		t.Fatalf("m=%v err=%v", m, err)
	}
	for _, bad := range []string{
		"keys:\n  - sha256: nothex\n    key_id: k\n",
		"keys:\n  - sha256: " + h + "\n",
		"keys:\n  - sha256: " + h + "\n    key_id: k\n    secret: x\n",
		"keys:\n  - {sha256: " + h + ", key_id: a}\n  - {sha256: " + h + ", key_id: b}\n",
	} {
		if _, err := LoadFile(write(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestRoles(t *testing.T) {
	k := New(map[string]policy.KeyRecord{
		Hash("admin-flag"): {KeyID: "a1", Admin: true},
		Hash("admin-role"): {KeyID: "a2", Role: policy.RoleAdmin},
		Hash("viewer"):     {KeyID: "v", Role: policy.RoleViewer},
		Hash("plain"):      {KeyID: "p"},
	}, false)
	tests := []struct {
		secret            string
		adminErr, viewErr error
	}{
		{"admin-flag", nil, nil},
		{"admin-role", nil, nil},
		{"viewer", ErrViewerOnly, nil},
		{"plain", ErrNotAdmin, ErrNotAdmin},
		{"unknown", ErrUnknownKey, ErrUnknownKey},
	}
	for _, tc := range tests {
		h := "Bearer " + tc.secret
		if _, err := k.AuthenticateAdmin(h); !errors.Is(err, tc.adminErr) {
			t.Errorf("%s: AuthenticateAdmin err = %v, want %v", tc.secret, err, tc.adminErr)
		}
		if _, err := k.AuthenticateViewer(h); !errors.Is(err, tc.viewErr) {
			t.Errorf("%s: AuthenticateViewer err = %v, want %v", tc.secret, err, tc.viewErr)
		}
	}
	if !errors.Is(ErrViewerOnly, ErrNotAdmin) {
		t.Error("ErrViewerOnly must match ErrNotAdmin (403 mapping)")
	}
	open := New(nil, true)
	if c, err := open.AuthenticateViewer(""); err != nil || !c.Anonymous {
		t.Errorf("open mode viewer: %v", err)
	}
	if c, err := open.AuthenticateAdmin(""); err != nil || !c.Anonymous {
		t.Errorf("open mode admin: %v", err)
	}
}

func TestLoadFileRole(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keys.yaml")
	h := Hash("s")
	os.WriteFile(p, []byte("keys:\n  - {sha256: "+h+", key_id: v, role: viewer}\n"), 0o600)
	if m, err := LoadFile(p); err != nil || m[h].Role != policy.RoleViewer {
		t.Fatalf("m=%v err=%v", m, err)
	}
	os.WriteFile(p, []byte("keys:\n  - {sha256: "+h+", key_id: v, role: root}\n"), 0o600)
	if _, err := LoadFile(p); err == nil || !strings.Contains(err.Error(), "role") {
		t.Fatalf("role root accepted: %v", err)
	}
}

func TestManagedKeys(t *testing.T) {
	k := New(map[string]policy.KeyRecord{Hash("file"): {KeyID: "f1"}}, false)
	past, future := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	shadowed := k.SetManagedKeys([]Managed{
		{Hash: Hash("m1"), Record: policy.KeyRecord{KeyID: "key_1", Team: "a"}},
		{Hash: Hash("m1-old"), Record: policy.KeyRecord{KeyID: "key_1", Team: "a"}, NotAfter: future, Expired: &KeyError{Msg: "rotated"}},
		{Hash: Hash("m2"), Record: policy.KeyRecord{KeyID: "key_2"}, NotAfter: past, Expired: &KeyError{Msg: "expired at then"}},
		{Hash: Hash("m3"), Record: policy.KeyRecord{KeyID: "key_3"}, Refused: &KeyError{Msg: "revoked"}},
		{Hash: Hash("file"), Record: policy.KeyRecord{KeyID: "key_4"}}, // the file's hash
		{Hash: Hash("m5"), Record: policy.KeyRecord{KeyID: "f1"}},      // the file's key_id
	})
	if strings.Join(shadowed, ",") != "key_4,f1" {
		t.Errorf("shadowed = %v", shadowed)
	}
	tests := []struct {
		secret, keyID, msg string
	}{
		{"m1", "key_1", ""},
		{"m1-old", "key_1", ""},
		{"m2", "", "expired at then"},
		{"m3", "", "revoked"},
		{"file", "f1", ""},
		{"m5", "", "incorrect API key provided"},
	}
	for _, tc := range tests {
		c, err := k.Authenticate("Bearer " + tc.secret)
		switch {
		case tc.msg == "" && (err != nil || c.Record.KeyID != tc.keyID):
			t.Errorf("%s: %v %+v, want %s", tc.secret, err, c, tc.keyID)
		case tc.msg != "" && (err == nil || err.Error() != tc.msg || !errors.Is(err, ErrUnknownKey)):
			t.Errorf("%s: err = %v, want %q (an ErrUnknownKey)", tc.secret, err, tc.msg)
		}
	}
	// A bundle that takes a managed key's hash wins it.
	k.SetBundleKeys(map[string]policy.KeyRecord{Hash("m1"): {KeyID: "b1"}})
	if c, err := k.Authenticate("Bearer m1"); err != nil || c.Record.KeyID != "b1" {
		t.Errorf("bundle over managed: %v %+v", err, c)
	}
	if !k.Conflicts(Hash("m1"), "x") || !k.Conflicts("", "f1") || k.Conflicts(Hash("new"), "key_9") {
		t.Error("Conflicts")
	}
}

func TestBootstrapKeyKeepsOpenMode(t *testing.T) {
	k := New(nil, true)
	if _, err := k.AuthenticateAdmin(""); err != nil {
		t.Fatalf("open mode, no keys: admin endpoints open: %v", err)
	}
	k.SetManagedKeys([]Managed{{Hash: Hash("adm"), Record: policy.KeyRecord{KeyID: "key_a", Role: policy.RoleAdmin}, Bootstrap: true}})
	if !k.Open() {
		t.Fatal("a bootstrap admin key ended open mode")
	}
	if c, err := k.Authenticate(""); err != nil || !c.Anonymous {
		t.Fatalf("API request without a key: %v", err)
	}
	if c, err := k.Authenticate("Bearer whatever"); err != nil || !c.Anonymous {
		t.Fatalf("API request with an unknown key in open mode: %v", err)
	}
	if _, err := k.AuthenticateAdmin(""); !errors.Is(err, ErrAdminKeyRequired) {
		t.Fatalf("anonymous admin with an admin key existing: %v", err)
	}
	if _, err := k.AuthenticateViewer("Bearer whatever"); !errors.Is(err, ErrAdminKeyRequired) {
		t.Fatalf("anonymous viewer with an admin key existing: %v", err)
	}
	if c, err := k.AuthenticateAdmin("Bearer adm"); err != nil || c.Record.KeyID != "key_a" {
		t.Fatalf("admin key: %v", err)
	}
	k.SetManagedKeys([]Managed{{Hash: Hash("adm"), Record: policy.KeyRecord{KeyID: "key_a", Role: policy.RoleAdmin}, Bootstrap: true},
		{Hash: Hash("client"), Record: policy.KeyRecord{KeyID: "key_c"}}})
	if k.Open() {
		t.Fatal("a client key must end open mode")
	}
	if _, err := k.Authenticate(""); !errors.Is(err, ErrMissingKey) {
		t.Fatalf("no key after open mode ended: %v", err)
	}
}
