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
