package server

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/keys"
)

// The keys API (docs/keys.md): reads need a viewer or admin key, changes an admin key.
// Handlers decode, call the keys manager, encode; errors map in clientError.

func (s *Server) keysManager() (*keys.Manager, error) {
	if s.o.ManagedKeys == nil {
		return nil, newAPIError(http.StatusNotFound, "key_management_disabled", "Key management is not available on this gateway: its ledger store keeps no records.")
	}
	return s.o.ManagedKeys, nil
}

func (s *Server) adminCaller(c echo.Context) (*auth.Caller, *keys.Manager, error) {
	caller, err := s.o.Keys.AuthenticateAdmin(c.Request().Header.Get("Authorization"))
	if err != nil {
		return nil, nil, err
	}
	m, err := s.keysManager()
	return caller, m, err
}

func (s *Server) viewerManager(c echo.Context) (*keys.Manager, error) {
	if err := s.authViewer(c); err != nil {
		return nil, err
	}
	return s.keysManager()
}

// createKey answers POST /v1/gavel/keys: 201 with the key and its secret, shown only here.
func (s *Server) createKey(c echo.Context) error {
	by, m, err := s.adminCaller(c)
	if err != nil {
		return err
	}
	f, names, err := keys.DecodeFields(c.Request().Body)
	if err != nil {
		return err
	}
	k, err := m.Create(c.Request().Context(), by, f, names)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return writeJSON(c, http.StatusCreated, k)
}

// listKeys answers GET /v1/gavel/keys.
func (s *Server) listKeys(c echo.Context) error {
	m, err := s.viewerManager(c)
	if err != nil {
		return err
	}
	ks, err := m.List(c.Request().Context())
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, map[string]any{"object": "list", "data": ks})
}

// getKey answers GET /v1/gavel/keys/{id}.
func (s *Server) getKey(c echo.Context) error {
	m, err := s.viewerManager(c)
	if err != nil {
		return err
	}
	k, err := m.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, k)
}

// updateKey answers PATCH /v1/gavel/keys/{id}: the fields the body names change.
func (s *Server) updateKey(c echo.Context) error {
	by, m, err := s.adminCaller(c)
	if err != nil {
		return err
	}
	f, names, err := keys.DecodeFields(c.Request().Body)
	if err != nil {
		return err
	}
	k, err := m.Update(c.Request().Context(), by, c.Param("id"), f, names)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, k)
}

// revokeKey answers DELETE /v1/gavel/keys/{id}.
func (s *Server) revokeKey(c echo.Context) error {
	by, m, err := s.adminCaller(c)
	if err != nil {
		return err
	}
	k, err := m.Revoke(c.Request().Context(), by, c.Param("id"))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, k)
}

// rotateKey answers POST /v1/gavel/keys/{id}/rotate, body {"grace_s": n}.
func (s *Server) rotateKey(c echo.Context) error {
	by, m, err := s.adminCaller(c)
	if err != nil {
		return err
	}
	grace, err := keys.DecodeGrace(c.Request().Body)
	if err != nil {
		return err
	}
	k, err := m.Rotate(c.Request().Context(), by, c.Param("id"), grace)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return writeJSON(c, http.StatusOK, k)
}

// auditLog answers GET /v1/gavel/audit?limit=n: admin actions, newest first.
func (s *Server) auditLog(c echo.Context) error {
	m, err := s.viewerManager(c)
	if err != nil {
		return err
	}
	limit := keys.DefaultAuditLimit
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > keys.MaxAuditLimit {
			return errBadRequest("invalid_value", "limit", "limit must be an integer from 1 to "+strconv.Itoa(keys.MaxAuditLimit))
		}
		limit = n
	}
	entries, err := m.AuditLog(c.Request().Context(), limit)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, map[string]any{"object": "list", "data": entries})
}

// audit records an admin action other than a key change (the manager records those
// itself) in the same audit log, so that GET /v1/gavel/audit answers "who did what" for
// every write. Without managed keys there is no journal: the log line alone records it.
func (s *Server) audit(c echo.Context, by *auth.Caller, action, target string, details map[string]any) {
	if s.o.ManagedKeys != nil {
		s.o.ManagedKeys.Audit(c.Request().Context(), by, action, target, details)
		return
	}
	who := "anonymous"
	if by != nil && !by.Anonymous {
		who = by.Record.KeyID
	}
	s.log.Info("admin action", "actor", who, "action", action, "target", target, "changes", details)
}
