package keys

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gavel-gw/gavel/engine/auth"
)

// Audit log bounds.
const (
	// AuditJournal is the ledger.Journal the audit log is kept in.
	AuditJournal = "audit"
	// AuditKeep is how many entries the audit log keeps (the oldest go first).
	AuditKeep = 10000
	// DefaultAuditLimit and MaxAuditLimit bound GET /v1/gavel/audit.
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// AuditEntry is one admin action: who did what to which target, when. Changes hold the
// metadata a request set; never a secret or a hash.
type AuditEntry struct {
	Time    time.Time      `json:"time"`
	Actor   string         `json:"actor"` // the acting key's id, or "anonymous" (open mode)
	User    string         `json:"actor_user,omitempty"`
	Action  string         `json:"action"` // key.create, key.update, key.revoke, key.rotate…
	Target  string         `json:"target"`
	Changes map[string]any `json:"changes,omitempty"`
}

// Audit records an admin action: one structured log line, and an entry in the audit log
// that GET /v1/gavel/audit reads. Other admin endpoints call it too. A failure to store
// the entry is logged, not returned: the action itself already happened.
func (m *Manager) Audit(ctx context.Context, by *auth.Caller, action, target string, changes map[string]any) {
	e := AuditEntry{Time: m.now().UTC(), Actor: actor(by), Action: action, Target: target, Changes: changes}
	if by != nil && !by.Anonymous {
		e.User = by.Record.User
	}
	m.log.Info("admin action", "actor", e.Actor, "actor_user", e.User, "action", action, "target", target, "changes", changes)
	b, err := json.Marshal(e)
	if err == nil {
		err = m.journal.AppendJournal(context.WithoutCancel(ctx), AuditJournal, b, AuditKeep)
	}
	if err != nil {
		m.log.Error("audit log: entry not stored", "action", action, "target", target, "err", err)
	}
}

// AuditLog returns up to limit entries, newest first.
func (m *Manager) AuditLog(ctx context.Context, limit int) ([]json.RawMessage, error) {
	raw, err := m.journal.ReadJournal(ctx, AuditJournal, limit)
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, len(raw))
	for i, b := range raw {
		out[i] = b
	}
	return out, nil
}
