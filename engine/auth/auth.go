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
	"sync"
	"sync/atomic"
	"time"

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

	notAfter time.Time // zero: the key does not expire
	expired  error     // returned from notAfter on
	refused  error     // non-nil: the key is refused (revoked)
}

type keyset struct {
	byHash map[string]*Caller
	// open: requests without a known key pass as anonymous (allowOpen, and no key but
	// bootstrap admin keys); adminOpen: the anonymous caller may use admin endpoints too
	// (open, and no key with an admin or viewer role at all).
	open, adminOpen bool
	admins          int // keys with the admin role that are not refused
}

// Keys authenticates requests. Safe for concurrent use: the key set is rebuilt and
// swapped atomically when a bundle with different keys activates or the managed keys
// change, so a request reads one pointer and one map, never a store.
type Keys struct {
	file      map[string]policy.KeyRecord
	allowOpen bool
	anonymous *Caller
	set       atomic.Pointer[keyset]

	mu      sync.Mutex // serialises rebuilds of set
	bundle  map[string]policy.KeyRecord
	managed []Managed
}

// Managed is a key kept in the ledger's store (engine/keys) rather than in the bundle or
// the keys file.
type Managed struct {
	// Hash is the hex SHA-256 of the secret.
	Hash   string
	Record policy.KeyRecord
	// NotAfter is when the key stops working (its expiry, or the end of a rotated
	// secret's grace period); zero: never. Expired is the error it then gets.
	NotAfter time.Time
	Expired  error
	// Refused, when set, is returned for the key instead of a caller (a revoked key).
	Refused error
	// Bootstrap marks the admin key gavel generated at first start: it does not end open
	// mode for API requests on loopback.
	Bootstrap bool
}

// KeyError is a known key that is refused: revoked, expired, or rotated out. It is an
// ErrUnknownKey for the client (401) with a message that says why.
type KeyError struct{ Msg string }

func (e *KeyError) Error() string        { return e.Msg }
func (e *KeyError) Is(target error) bool { return target == ErrUnknownKey }

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
	k.mu.Lock()
	defer k.mu.Unlock()
	k.bundle = bundle
	k.rebuild()
}

// SetManagedKeys installs the managed keys next to the bundle's and the file's. Those
// keys win: a managed key whose hash or key_id one of them already has is left out, and
// its id is returned, so that a managed key can never take over a configured one.
func (k *Keys) SetManagedKeys(ms []Managed) (shadowed []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.managed = ms
	return k.rebuild()
}

// Conflicts reports whether a key with this hash or key_id is in the bundle or the keys
// file: a managed key may not take either.
func (k *Keys) Conflicts(hash, keyID string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.static(strings.ToLower(hash), keyID)
}

func (k *Keys) static(hash, keyID string) bool {
	for _, src := range []map[string]policy.KeyRecord{k.bundle, k.file} {
		if _, ok := src[hash]; ok && hash != "" {
			return true
		}
		for _, r := range src {
			if r.KeyID == keyID {
				return true
			}
		}
	}
	return false
}

// rebuild makes the key set from the file's, the bundle's and the managed keys; k.mu is held.
func (k *Keys) rebuild() (shadowed []string) {
	s := &keyset{byHash: make(map[string]*Caller, len(k.bundle)+len(k.file)+len(k.managed))}
	ids := map[string]bool{}
	client, roles := 0, 0
	add := func(r policy.KeyRecord, bootstrap bool) {
		if !bootstrap {
			client++
		}
		switch r.EffectiveRole() {
		case policy.RoleAdmin:
			s.admins++
			roles++
		case policy.RoleViewer:
			roles++
		}
	}
	for _, src := range []map[string]policy.KeyRecord{k.bundle, k.file} {
		for h, r := range src {
			s.byHash[strings.ToLower(h)] = &Caller{Record: r, Value: policy.CallerValue(r)}
			ids[r.KeyID] = true
			add(r, false)
		}
	}
	for _, m := range k.managed {
		h := strings.ToLower(m.Hash)
		// ids holds the configured keys' ids only: a rotated managed key's two hashes share one.
		if _, taken := s.byHash[h]; taken || ids[m.Record.KeyID] {
			shadowed = append(shadowed, m.Record.KeyID)
			continue
		}
		s.byHash[h] = &Caller{Record: m.Record, Value: policy.CallerValue(m.Record), notAfter: m.NotAfter, expired: m.Expired, refused: m.Refused}
		if m.Refused == nil {
			add(m.Record, m.Bootstrap)
		}
	}
	s.open = k.allowOpen && client == 0
	s.adminOpen = s.open && roles == 0
	k.set.Store(s)
	return shadowed
}

// Admins returns the number of usable keys with the admin role, from every source.
func (k *Keys) Admins() int { return k.set.Load().admins }

// Count returns the number of configured keys.
func (k *Keys) Count() int { return len(k.set.Load().byHash) }

// Open reports whether requests without a key are let through.
func (k *Keys) Open() bool { return k.set.Load().open }

// Authenticate checks an Authorization header value ("Bearer <key>"); api-key style
// headers are passed in the same form by the server. In open mode a known key is still
// recognised (an admin key reaches the admin endpoints), anything else is anonymous.
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
		if s.open {
			return k.anonymous, nil
		}
		return nil, ErrMissingKey
	}
	c, found := s.byHash[Hash(token)]
	switch {
	case !found && s.open:
		return k.anonymous, nil
	case !found:
		return nil, ErrUnknownKey
	case c.refused != nil:
		return nil, c.refused
	case !c.notAfter.IsZero() && !time.Now().Before(c.notAfter):
		return nil, c.expired
	}
	return c, nil
}

// ErrNotAdmin means a valid key without admin rights asked for an admin endpoint.
var ErrNotAdmin = errors.New("this key may not use admin endpoints")

// ErrAdminKeyRequired means an anonymous request (open mode) asked for an admin endpoint
// while an admin or viewer key exists: those endpoints then need one.
var ErrAdminKeyRequired error = &KeyError{Msg: "admin endpoints need an admin or viewer key: send Authorization: Bearer <key>"}

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
		if !k.set.Load().adminOpen {
			return nil, ErrAdminKeyRequired
		}
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
	if c.Anonymous && !k.set.Load().adminOpen {
		return nil, ErrAdminKeyRequired
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
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("keys file %s: keys[%d]: %w", path, i, err)
		}
		if _, dup := out[h]; dup {
			return nil, fmt.Errorf("keys file %s: keys[%d] duplicates an earlier hash", path, i)
		}
		out[h] = k.KeyRecord
	}
	return out, nil
}
