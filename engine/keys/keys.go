package keys

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/policy"
)

// Named defaults and bounds.
const (
	// Kind is the ledger.Records kind managed keys are stored under.
	Kind = "keys"
	// PollInterval is how often a replica reads the store's version of the keys: a change
	// made on any replica is in force on every other within PollInterval plus one reload.
	PollInterval = 250 * time.Millisecond
	// DefaultGrace is how long a rotated key's old secret keeps working when the rotate
	// request names no grace_s; MaxGrace bounds it.
	DefaultGrace = time.Hour
	MaxGrace     = 30 * 24 * time.Hour
	// MaxKeys bounds the managed keys, revoked ones included (they stay listed so that
	// their secrets get a clear 401 and the console shows them).
	MaxKeys = 10000
	// Bounds on a key's metadata, which every replica holds in memory.
	MaxName   = 200
	MaxLabels = 64
	MaxModels = 256
	MaxString = 256
)

// Statuses of a key.
const (
	StatusActive  = "active"
	StatusExpired = "expired"
	StatusRevoked = "revoked"
)

// Errors the keys API answers with; engine/server maps them to statuses.
var (
	ErrNotFound = errors.New("no managed key has this id")
	ErrRevoked  = errors.New("the key is revoked")
	ErrTooMany  = fmt.Errorf("at most %d managed keys (revoked ones included) are kept", MaxKeys)
)

// InvalidError is a request the keys API refuses (400), naming the field.
type InvalidError struct {
	Param string
	Msg   string
}

func (e *InvalidError) Error() string { return e.Msg }

func invalid(param, format string, args ...any) error {
	return &InvalidError{Param: param, Msg: fmt.Sprintf(format, args...)}
}

// stored is a key as the store keeps it: the secret only as its hash.
type stored struct {
	ID         string           `json:"id"`
	Name       string           `json:"name"`
	Record     policy.KeyRecord `json:"record"` // Record.KeyID == ID
	SHA256     string           `json:"sha256"`
	PrevSHA256 string           `json:"prev_sha256,omitempty"` // the secret before the last rotation
	PrevUntil  time.Time        `json:"prev_until,omitzero"`   // when the previous secret stops working
	ExpiresAt  time.Time        `json:"expires_at,omitzero"`
	CreatedAt  time.Time        `json:"created_at"`
	UpdatedAt  time.Time        `json:"updated_at"`
	CreatedBy  string           `json:"created_by"`
	RotatedAt  time.Time        `json:"rotated_at,omitzero"`
	RevokedAt  time.Time        `json:"revoked_at,omitzero"`
	Bootstrap  bool             `json:"bootstrap,omitempty"`
}

// Key is a managed key as the API shows it: never its secret's hash; the secret itself
// only in the answer to create and rotate.
type Key struct {
	Object       string            `json:"object"` // "gavel.key"
	ID           string            `json:"id"`
	Secret       string            `json:"secret,omitempty"`
	Name         string            `json:"name"`
	User         string            `json:"user"`
	Team         string            `json:"team"`
	Project      string            `json:"project"`
	Tier         string            `json:"tier"`
	Labels       map[string]string `json:"labels"`
	Role         string            `json:"role"`
	ExpiresAt    *time.Time        `json:"expires_at"`
	Models       []string          `json:"models"`
	RPM          int64             `json:"rpm"`
	TPM          int64             `json:"tpm"`
	BudgetMUSD   int64             `json:"budget_musd"`
	BudgetPeriod string            `json:"budget_period"`
	Status       string            `json:"status"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
	CreatedBy    string            `json:"created_by"`
	RotatedAt    *time.Time        `json:"rotated_at"`
	// GraceUntil is when the secret before the last rotation stops working.
	GraceUntil *time.Time `json:"grace_until"`
	RevokedAt  *time.Time `json:"revoked_at"`
	Bootstrap  bool       `json:"bootstrap,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func (s *stored) view(now time.Time) Key {
	r := s.Record
	k := Key{Object: "gavel.key", ID: s.ID, Name: s.Name, User: r.User, Team: r.Team, Project: r.Project, Tier: r.Tier,
		Labels: r.Labels, Role: r.EffectiveRole(), ExpiresAt: timePtr(s.ExpiresAt), Models: r.Models, RPM: r.RPM, TPM: r.TPM,
		BudgetMUSD: r.BudgetMUSD, BudgetPeriod: r.BudgetPeriod, Status: StatusActive, CreatedAt: s.CreatedAt.UTC(),
		UpdatedAt: s.UpdatedAt.UTC(), CreatedBy: s.CreatedBy, RotatedAt: timePtr(s.RotatedAt), RevokedAt: timePtr(s.RevokedAt),
		Bootstrap: s.Bootstrap}
	if k.Labels == nil {
		k.Labels = map[string]string{}
	}
	if k.Models == nil {
		k.Models = []string{}
	}
	if s.PrevSHA256 != "" && now.Before(s.PrevUntil) {
		k.GraceUntil = timePtr(s.PrevUntil)
	}
	switch {
	case !s.RevokedAt.IsZero():
		k.Status = StatusRevoked
	case !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt):
		k.Status = StatusExpired
	}
	return k
}

// Opt is a field of a create or update request: Set when the body names it (null sets
// the zero value: no expiry, no labels…).
type Opt[T any] struct {
	Set bool
	V   T
}

// UnmarshalJSON implements json.Unmarshaler.
func (o *Opt[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	var zero T
	o.V = zero
	if string(b) == "null" {
		return nil
	}
	return json.Unmarshal(b, &o.V)
}

// Fields are a create or update request's body: the key's metadata.
type Fields struct {
	Name         Opt[string]            `json:"name"`
	User         Opt[string]            `json:"user"`
	Team         Opt[string]            `json:"team"`
	Project      Opt[string]            `json:"project"`
	Tier         Opt[string]            `json:"tier"`
	Labels       Opt[map[string]string] `json:"labels"`
	Role         Opt[string]            `json:"role"`
	ExpiresAt    Opt[time.Time]         `json:"expires_at"` // RFC 3339
	Models       Opt[[]string]          `json:"models"`
	RPM          Opt[int64]             `json:"rpm"`
	TPM          Opt[int64]             `json:"tpm"`
	BudgetMUSD   Opt[int64]             `json:"budget_musd"`
	BudgetPeriod Opt[string]            `json:"budget_period"`
}

// DecodeFields reads a request body strictly: unknown fields, trailing data and values of
// the wrong type are refused, naming the field. It also returns the names the body set,
// for the audit log.
func DecodeFields(body io.Reader) (Fields, []string, error) {
	raw, err := io.ReadAll(io.LimitReader(body, 1<<20+1))
	if err != nil {
		return Fields{}, nil, invalid("", "could not read the request body: %v", err)
	}
	if len(raw) > 1<<20 {
		return Fields{}, nil, invalid("", "the request body is larger than 1 MiB")
	}
	var f Fields
	if len(bytes.TrimSpace(raw)) == 0 {
		return f, nil, nil
	}
	if err := strictDecode(raw, &f); err != nil {
		return Fields{}, nil, err
	}
	var names map[string]json.RawMessage
	_ = json.Unmarshal(raw, &names)
	return f, slices.Sorted(maps.Keys(names)), nil
}

// strictDecode decodes one JSON object into v, refusing unknown fields and trailing data.
func strictDecode(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var pe *time.ParseError
		switch {
		case errors.As(err, &te):
			return invalid(te.Field, "%s: expected %s, got a JSON %s", te.Field, te.Type, te.Value)
		case errors.As(err, &pe):
			return invalid("expires_at", "expires_at must be an RFC 3339 time such as 2027-01-31T00:00:00Z")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return invalid(name, "unknown field %q", name)
		}
		return invalid("", "the request body must be a JSON object: %v", err)
	}
	if dec.More() {
		return invalid("", "the request body must hold one JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("", "the request body must hold one JSON object")
	}
	return nil
}

// DecodeGrace reads a rotate request's body, {"grace_s": n}; empty means DefaultGrace.
func DecodeGrace(body io.Reader) (time.Duration, error) {
	raw, err := io.ReadAll(io.LimitReader(body, 4096))
	if err != nil {
		return 0, invalid("", "could not read the request body: %v", err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return DefaultGrace, nil
	}
	var b struct {
		GraceS *int64 `json:"grace_s"`
	}
	if err := strictDecode(raw, &b); err != nil {
		return 0, err
	}
	if b.GraceS == nil {
		return DefaultGrace, nil
	}
	if *b.GraceS < 0 || time.Duration(*b.GraceS)*time.Second > MaxGrace {
		return 0, invalid("grace_s", "grace_s must be 0–%d seconds", int64(MaxGrace/time.Second))
	}
	return time.Duration(*b.GraceS) * time.Second, nil
}

// apply sets the fields f names on s and checks the result.
func (f *Fields) apply(s *stored, now time.Time) error {
	r := &s.Record
	str := func(o Opt[string], dst *string, param string, max int) error {
		if !o.Set {
			return nil
		}
		if len(o.V) > max || strings.ContainsAny(o.V, "\x00\r\n") {
			return invalid(param, "%s must be at most %d bytes without NUL or line breaks", param, max)
		}
		*dst = o.V
		return nil
	}
	for _, e := range []error{
		str(f.Name, &s.Name, "name", MaxName), str(f.User, &r.User, "user", MaxString), str(f.Team, &r.Team, "team", MaxString),
		str(f.Project, &r.Project, "project", MaxString), str(f.Tier, &r.Tier, "tier", MaxString),
		str(f.Role, &r.Role, "role", MaxString), str(f.BudgetPeriod, &r.BudgetPeriod, "budget_period", MaxString),
	} {
		if e != nil {
			return e
		}
	}
	if f.Role.Set {
		r.Admin = false // role is the key's one statement of its rights from now on
		if err := policy.ValidateRole(r.Role); err != nil {
			return invalid("role", "%v", err)
		}
	}
	if f.Labels.Set {
		if len(f.Labels.V) > MaxLabels {
			return invalid("labels", "at most %d labels", MaxLabels)
		}
		for k, v := range f.Labels.V {
			if k == "" || len(k) > MaxString || len(v) > MaxString {
				return invalid("labels", "label names must be 1-%d bytes and values at most %d", MaxString, MaxString)
			}
		}
		r.Labels = f.Labels.V
	}
	if f.Models.Set {
		if len(f.Models.V) > MaxModels {
			return invalid("models", "at most %d models", MaxModels)
		}
		ms := slices.Clone(f.Models.V)
		slices.Sort(ms)
		r.Models = slices.Compact(ms)
	}
	for _, n := range []struct {
		o     Opt[int64]
		dst   *int64
		param string
	}{{f.RPM, &r.RPM, "rpm"}, {f.TPM, &r.TPM, "tpm"}, {f.BudgetMUSD, &r.BudgetMUSD, "budget_musd"}} {
		if n.o.Set {
			if n.o.V < 0 {
				return invalid(n.param, "%s must not be negative", n.param)
			}
			*n.dst = n.o.V
		}
	}
	if f.ExpiresAt.Set {
		if !f.ExpiresAt.V.IsZero() && !f.ExpiresAt.V.After(now) {
			return invalid("expires_at", "expires_at must be in the future (or null for no expiry)")
		}
		s.ExpiresAt = f.ExpiresAt.V.UTC()
	}
	if err := r.Validate(); err != nil {
		param := ""
		for _, p := range []string{"budget_period", "models", "role"} {
			if strings.Contains(err.Error(), p) {
				param = p
				break
			}
		}
		return invalid(param, "%v", err)
	}
	return nil
}

// Manager is the keys API and the propagation of managed keys to the authenticator.
type Manager struct {
	keys    *auth.Keys
	records ledger.Records
	journal ledger.Journal
	log     *slog.Logger
	now     func() time.Time
	poll    time.Duration

	write   sync.Mutex // one change at a time on this replica
	reload  sync.Mutex // one reload at a time
	version uint64     // under reload
	loaded  bool       // under reload
}

// Options configure a Manager.
type Options struct {
	Log *slog.Logger
	// PollInterval overrides PollInterval (tests).
	PollInterval time.Duration
	// Now is the clock (tests); time.Now by default.
	Now func() time.Time
}

// New returns a manager over store's records, or an error when the store keeps none.
func New(store ledger.Store, keys *auth.Keys, o Options) (*Manager, error) {
	rec, ok := store.(ledger.Records)
	if !ok {
		return nil, ledger.ErrRecordsUnsupported
	}
	jr, ok := store.(ledger.Journal)
	if !ok {
		return nil, ledger.ErrRecordsUnsupported
	}
	m := &Manager{keys: keys, records: rec, journal: jr, log: o.Log, now: o.Now, poll: o.PollInterval}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.poll <= 0 {
		m.poll = PollInterval
	}
	return m, nil
}

// Run keeps this replica's key set in step with the store until ctx ends: it reads the
// version every poll interval and reloads when it moved. A store that cannot be read
// leaves the last keys in force (logged once per outage).
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.poll)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := m.Sync(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			failing = true
			m.log.Warn("managed keys: cannot read the store; the last keys read stay in force", "err", err)
		case err == nil && failing:
			failing = false
			m.log.Info("managed keys: store readable again")
		}
	}
}

// Sync reloads the keys when the store's version moved since the last load.
func (m *Manager) Sync(ctx context.Context) error {
	v, err := m.records.RecordsVersion(ctx, Kind)
	if err != nil {
		return err
	}
	m.reload.Lock()
	same := m.loaded && v == m.version
	m.reload.Unlock()
	if same {
		return nil
	}
	return m.Reload(ctx)
}

// Reload reads every managed key and installs them in the authenticator.
func (m *Manager) Reload(ctx context.Context) error {
	m.reload.Lock()
	defer m.reload.Unlock()
	all, v, err := m.load(ctx)
	if err != nil {
		return err
	}
	var ms []auth.Managed
	for _, s := range all {
		ms = append(ms, managed(s)...)
	}
	if shadowed := m.keys.SetManagedKeys(ms); len(shadowed) > 0 {
		m.log.Warn("managed keys left out: the bundle or the keys file has a key with the same hash or key_id", "ids", strings.Join(shadowed, ","))
	}
	m.version, m.loaded = v, true
	return nil
}

// managed is what the authenticator needs of a stored key: one entry per live secret.
func managed(s *stored) []auth.Managed {
	out := []auth.Managed{{Hash: s.SHA256, Record: s.Record, Bootstrap: s.Bootstrap}}
	if s.PrevSHA256 != "" {
		out = append(out, auth.Managed{Hash: s.PrevSHA256, Record: s.Record, NotAfter: s.PrevUntil,
			Expired: &auth.KeyError{Msg: "this API key was rotated and its grace period ended at " + s.PrevUntil.UTC().Format(time.RFC3339) + "; use the new key"}})
	}
	for i := range out {
		e := &out[i]
		switch {
		case !s.RevokedAt.IsZero():
			e.Refused = &auth.KeyError{Msg: "this API key was revoked at " + s.RevokedAt.UTC().Format(time.RFC3339)}
		case !s.ExpiresAt.IsZero() && (e.NotAfter.IsZero() || s.ExpiresAt.Before(e.NotAfter)):
			e.NotAfter = s.ExpiresAt
			e.Expired = &auth.KeyError{Msg: "this API key expired at " + s.ExpiresAt.UTC().Format(time.RFC3339)}
		}
	}
	return out
}

func (m *Manager) load(ctx context.Context) (map[string]*stored, uint64, error) {
	raw, v, err := m.records.ListRecords(ctx, Kind)
	if err != nil {
		return nil, 0, err
	}
	out := make(map[string]*stored, len(raw))
	for id, b := range raw {
		var s stored
		if err := json.Unmarshal(b, &s); err != nil || s.ID != id || s.SHA256 == "" {
			m.log.Error("managed keys: skipping an unreadable record", "id", id, "err", err)
			continue
		}
		s.Record.KeyID = s.ID
		out[id] = &s
	}
	return out, v, nil
}

func (m *Manager) get(ctx context.Context, id string) (*stored, error) {
	all, _, err := m.load(ctx)
	if err != nil {
		return nil, err
	}
	s, ok := all[id]
	if !ok {
		return nil, ErrNotFound
	}
	return s, nil
}

func (m *Manager) put(ctx context.Context, s *stored) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := m.records.PutRecord(ctx, Kind, s.ID, b); err != nil {
		return err
	}
	// In force on this replica at once; the others see the version move.
	if err := m.Reload(ctx); err != nil {
		m.log.Warn("managed keys: reload after a change failed; the next poll retries", "err", err)
	}
	return nil
}

// actor names who acts, for created_by and the audit log: "gavel" itself (the bootstrap
// admin key), "anonymous" (open mode), or the acting key's id.
func actor(c *auth.Caller) string {
	if c == nil {
		return "gavel"
	}
	if c.Anonymous {
		return "anonymous"
	}
	return c.Record.KeyID
}

// newID is a key id: "key_" and 16 random base-32 characters.
func newID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var b [16]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[b[i]&31]
	}
	return "key_" + string(b[:])
}

// Create makes a key with the fields given and returns it with its secret, the only time
// the secret is shown.
func (m *Manager) Create(ctx context.Context, by *auth.Caller, f Fields, names []string) (Key, error) {
	return m.create(ctx, by, f, names, false)
}

func (m *Manager) create(ctx context.Context, by *auth.Caller, f Fields, names []string, bootstrap bool) (Key, error) {
	m.write.Lock()
	defer m.write.Unlock()
	now := m.now()
	s := &stored{CreatedAt: now, UpdatedAt: now, CreatedBy: actor(by), Bootstrap: bootstrap}
	if err := f.apply(s, now); err != nil {
		return Key{}, err
	}
	all, _, err := m.load(ctx)
	if err != nil {
		return Key{}, err
	}
	if len(all) >= MaxKeys {
		return Key{}, ErrTooMany
	}
	secret, hash, err := auth.NewKey()
	if err != nil {
		return Key{}, err
	}
	for s.ID = newID(); all[s.ID] != nil || m.keys.Conflicts(hash, s.ID); s.ID = newID() {
		// A configured key's id or a hash already taken: astronomically unlikely, refused
		// anyway by drawing again.
		if secret, hash, err = auth.NewKey(); err != nil {
			return Key{}, err
		}
	}
	s.Record.KeyID, s.SHA256 = s.ID, hash
	if err := m.put(ctx, s); err != nil {
		return Key{}, err
	}
	k := s.view(now)
	k.Secret = secret
	m.Audit(ctx, by, "key.create", s.ID, changes(f, names))
	return k, nil
}

// List returns every managed key, newest first.
func (m *Manager) List(ctx context.Context) ([]Key, error) {
	all, _, err := m.load(ctx)
	if err != nil {
		return nil, err
	}
	now := m.now()
	out := make([]Key, 0, len(all))
	for _, s := range all {
		out = append(out, s.view(now))
	}
	slices.SortFunc(out, func(a, b Key) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Get returns one managed key.
func (m *Manager) Get(ctx context.Context, id string) (Key, error) {
	s, err := m.get(ctx, id)
	if err != nil {
		return Key{}, err
	}
	return s.view(m.now()), nil
}

// Update changes a key's metadata.
func (m *Manager) Update(ctx context.Context, by *auth.Caller, id string, f Fields, names []string) (Key, error) {
	m.write.Lock()
	defer m.write.Unlock()
	s, err := m.get(ctx, id)
	if err != nil {
		return Key{}, err
	}
	if !s.RevokedAt.IsZero() {
		return Key{}, ErrRevoked
	}
	now := m.now()
	if err := f.apply(s, now); err != nil {
		return Key{}, err
	}
	s.UpdatedAt = now
	if err := m.put(ctx, s); err != nil {
		return Key{}, err
	}
	m.Audit(ctx, by, "key.update", id, changes(f, names))
	return s.view(now), nil
}

// Revoke refuses the key's secrets from now on; the record stays, listed as revoked.
func (m *Manager) Revoke(ctx context.Context, by *auth.Caller, id string) (Key, error) {
	m.write.Lock()
	defer m.write.Unlock()
	s, err := m.get(ctx, id)
	if err != nil {
		return Key{}, err
	}
	if !s.RevokedAt.IsZero() {
		return Key{}, ErrRevoked
	}
	now := m.now()
	s.RevokedAt, s.UpdatedAt = now, now
	if err := m.put(ctx, s); err != nil {
		return Key{}, err
	}
	m.Audit(ctx, by, "key.revoke", id, nil)
	return s.view(now), nil
}

// Rotate gives the key a new secret, returned once; the old one keeps working for grace.
func (m *Manager) Rotate(ctx context.Context, by *auth.Caller, id string, grace time.Duration) (Key, error) {
	m.write.Lock()
	defer m.write.Unlock()
	s, err := m.get(ctx, id)
	if err != nil {
		return Key{}, err
	}
	if !s.RevokedAt.IsZero() {
		return Key{}, ErrRevoked
	}
	secret, hash, err := auth.NewKey()
	if err != nil {
		return Key{}, err
	}
	if m.keys.Conflicts(hash, "") {
		return Key{}, errors.New("keys: drew a configured key's hash") // 2^-192
	}
	now := m.now()
	s.PrevSHA256, s.PrevUntil, s.SHA256 = s.SHA256, now.Add(grace), hash
	s.RotatedAt, s.UpdatedAt = now, now
	if err := m.put(ctx, s); err != nil {
		return Key{}, err
	}
	m.Audit(ctx, by, "key.rotate", id, map[string]any{"grace_s": int64(grace / time.Second)})
	k := s.view(now)
	k.Secret = secret
	return k, nil
}

// changes are the fields a request set and their new values, for the audit log: a key's
// metadata, never a secret.
func changes(f Fields, names []string) map[string]any {
	if len(names) == 0 {
		return nil
	}
	b, _ := json.Marshal(map[string]any{"name": f.Name.V, "user": f.User.V, "team": f.Team.V, "project": f.Project.V, "tier": f.Tier.V,
		"labels": f.Labels.V, "role": f.Role.V, "expires_at": timePtr(f.ExpiresAt.V), "models": f.Models.V, "rpm": f.RPM.V, "tpm": f.TPM.V,
		"budget_musd": f.BudgetMUSD.V, "budget_period": f.BudgetPeriod.V})
	var all map[string]any
	_ = json.Unmarshal(b, &all)
	out := make(map[string]any, len(names))
	for _, n := range names {
		out[n] = all[n]
	}
	return out
}

// EnsureAdmin creates an admin key when no usable admin key exists anywhere (bundle, keys
// file, managed keys) and returns its secret; "" when one exists. For the first start of
// a gateway, so that its operator can log in to the console and manage keys.
func (m *Manager) EnsureAdmin(ctx context.Context) (Key, error) {
	if err := m.Reload(ctx); err != nil {
		return Key{}, err
	}
	if m.keys.Admins() > 0 {
		return Key{}, nil
	}
	role := Fields{Name: Opt[string]{true, "bootstrap admin"}, Role: Opt[string]{true, policy.RoleAdmin}}
	return m.create(ctx, nil, role, []string{"name", "role"}, true)
}
