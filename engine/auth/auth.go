package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"gopkg.in/yaml.v3"

	"github.com/gavel-gw/gavel/engine/policy"
)

// Errors a client may get.
var (
	ErrMissingKey = errors.New("missing API key: send Authorization: Bearer <gavel key>")
	ErrUnknownKey = errors.New("incorrect API key provided")
	ErrNoKeys     = errors.New("gavel has no virtual keys configured and is not listening on loopback only")
)

// Caller is an authenticated request's identity.
type Caller struct {
	Record    policy.KeyRecord
	Value     ast.Value // input.caller
	Anonymous bool      // open mode: no keys configured, loopback only
}

type keyset struct {
	byHash map[string]*Caller
}

// Keys authenticates requests. Safe for concurrent use; the key set is swapped atomically
// when a bundle with different keys activates.
type Keys struct {
	file      map[string]policy.KeyRecord
	allowOpen bool
	anonymous *Caller
	set       atomic.Pointer[keyset]
}

// New returns an authenticator over the keys file's records. allowOpen lets requests
// through without a key while no key is configured anywhere (gavel only allows that when
// listening on loopback).
func New(file map[string]policy.KeyRecord, allowOpen bool) *Keys {
	anon := policy.KeyRecord{KeyID: "anonymous", Tier: "anonymous"}
	k := &Keys{file: file, allowOpen: allowOpen, anonymous: &Caller{Record: anon, Value: policy.CallerValue(anon), Anonymous: true}}
	k.SetBundleKeys(nil)
	return k
}

// SetBundleKeys installs the active bundle's keys next to the file's; the file wins on a
// hash present in both.
func (k *Keys) SetBundleKeys(bundle map[string]policy.KeyRecord) {
	s := &keyset{byHash: make(map[string]*Caller, len(bundle)+len(k.file))}
	for _, src := range []map[string]policy.KeyRecord{bundle, k.file} {
		for h, r := range src {
			s.byHash[strings.ToLower(h)] = &Caller{Record: r, Value: policy.CallerValue(r)}
		}
	}
	k.set.Store(s)
}

// Count returns the number of configured keys.
func (k *Keys) Count() int { return len(k.set.Load().byHash) }

// Open reports whether requests without a key are let through.
func (k *Keys) Open() bool { return k.allowOpen && k.Count() == 0 }

// Authenticate checks an Authorization header value ("Bearer <key>"); api-key style
// headers are passed in the same form by the server.
func (k *Keys) Authenticate(authorization string) (*Caller, error) {
	s := k.set.Load()
	if len(s.byHash) == 0 {
		if k.allowOpen {
			return k.anonymous, nil
		}
		return nil, ErrNoKeys
	}
	token, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok {
		token, ok = strings.CutPrefix(authorization, "bearer ")
	}
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		return nil, ErrMissingKey
	}
	c, found := s.byHash[Hash(token)]
	if !found {
		return nil, ErrUnknownKey
	}
	return c, nil
}

// ErrNotAdmin means a valid key without admin rights asked for an admin endpoint.
var ErrNotAdmin = errors.New("this key may not use admin endpoints")

// ErrViewerOnly means a viewer key asked for an admin endpoint that changes something;
// errors.Is(err, ErrNotAdmin) holds for it too.
var ErrViewerOnly error = viewerOnly{}

type viewerOnly struct{}

func (viewerOnly) Error() string {
	return "this key has the viewer role: it may read admin endpoints but not change anything"
}
func (viewerOnly) Is(target error) bool { return target == ErrNotAdmin }

// AuthenticateAdmin is Authenticate for admin endpoints: the key's record must say
// admin, or gavel must be in open (loopback-only) mode.
func (k *Keys) AuthenticateAdmin(authorization string) (*Caller, error) {
	c, err := k.Authenticate(authorization)
	if err != nil {
		return nil, err
	}
	if c.Anonymous {
		return c, nil
	}
	switch c.Record.EffectiveRole() {
	case policy.RoleAdmin:
	case policy.RoleViewer:
		return nil, ErrViewerOnly
	default:
		return nil, ErrNotAdmin
	}
	return c, nil
}

// AuthenticateViewer is Authenticate for read-only admin endpoints: the key's role must
// be admin or viewer, or gavel must be in open (loopback-only) mode.
func (k *Keys) AuthenticateViewer(authorization string) (*Caller, error) {
	c, err := k.Authenticate(authorization)
	if err != nil {
		return nil, err
	}
	if r := c.Record.EffectiveRole(); !c.Anonymous && r != policy.RoleAdmin && r != policy.RoleViewer {
		return nil, ErrNotAdmin
	}
	return c, nil
}

// Hash is the stored form of a key: lower-case hex SHA-256.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// NewKey returns a fresh random key and its hash.
func NewKey() (secret, hash string, err error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	secret = "gvl-" + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, Hash(secret), nil
}

// FileKey is one entry of a keys file.
type FileKey struct {
	SHA256           string `yaml:"sha256"`
	policy.KeyRecord `yaml:",inline"`
}

// keysFile is the keys file: `keys: [{sha256, key_id, user, team, project, tier, labels}]`.
type keysFile struct {
	Keys []FileKey `yaml:"keys"`
}

// LoadFile reads a keys file strictly.
func LoadFile(path string) (map[string]policy.KeyRecord, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys file: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	var f keysFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("keys file %s: %w", path, err)
	}
	out := make(map[string]policy.KeyRecord, len(f.Keys))
	for i, k := range f.Keys {
		h := strings.ToLower(k.SHA256)
		if _, err := hex.DecodeString(h); err != nil || len(h) != 64 {
			return nil, fmt.Errorf("keys file %s: keys[%d].sha256 must be 64 hex digits (the key itself is never stored)", path, i)
		}
		if k.KeyID == "" {
			return nil, fmt.Errorf("keys file %s: keys[%d].key_id is required", path, i)
		}
		if err := policy.ValidateRole(k.Role); err != nil {
			return nil, fmt.Errorf("keys file %s: keys[%d]: %w", path, i, err)
		}
		if _, dup := out[h]; dup {
			return nil, fmt.Errorf("keys file %s: keys[%d] duplicates an earlier hash", path, i)
		}
		out[h] = k.KeyRecord
	}
	return out, nil
}
