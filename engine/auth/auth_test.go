package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
