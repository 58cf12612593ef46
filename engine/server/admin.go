package server

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/gavel-gw/gavel/engine/cache"
	"github.com/gavel-gw/gavel/engine/ledger"
)

// explain answers "why did this request go where it went?" for a recent decision id: the
// (masked) input, the decision and its reasons, the route taken and the bundle revision.
func (s *Server) explain(c echo.Context) error {
	if err := s.authViewer(c); err != nil {
		return err
	}
	if s.o.DecisionLog == nil {
		return errDecisionLogDisabled
	}
	e, ok := s.o.DecisionLog.Get(c.Param("id"))
	if !ok {
		return newAPIError(http.StatusNotFound, "decision_not_found",
			"No recent decision has id `"+c.Param("id")+"`; gavel keeps the most recent decisions in memory.")
	}
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	c.Response().WriteHeader(http.StatusOK)
	c.Response().Write(e)
	return nil
}

// spend shows a scope's spend, reservations and limits per period (admin only):
// GET /v1/gavel/spend?scope=team&id=search.
func (s *Server) spend(c echo.Context) error {
	if err := s.authViewer(c); err != nil {
		return err
	}
	if s.o.Ledger == nil {
		return newAPIError(http.StatusNotFound, "ledger_disabled", "No ledger is configured on this gateway.")
	}
	scope, id := c.QueryParam("scope"), c.QueryParam("id")
	if scope == "" {
		return errBadRequest("missing_required_parameter", "scope", "scope is required: key, user, team, project or global")
	}
	states, err := s.o.Ledger.Spend(c.Request().Context(), scope, id)
	if err != nil {
		// Only the owner's validation speaks of the request; anything else is the
		// store's (its text is for the log, not the caller).
		if !errors.Is(err, ledger.ErrInvalid) {
			return err
		}
		return errBadRequest("invalid_value", "scope", err.Error())
	}
	if states == nil {
		states = []ledger.BudgetState{}
	}
	writeJSON(c, http.StatusOK, map[string]any{"object": "list", "scope": scope, "id": id, "data": states})
	return nil
}

// purgeCache deletes cached answers (admin only): DELETE /v1/gavel/cache?scope=team&id=search
// (scope key|team|project|global), &model=provider/model, or ?all=true for everything.
// It purges this replica's memory and the shared Redis level; other replicas' memory
// keeps what it holds until it expires (docs/cache.md).
func (s *Server) purgeCache(c echo.Context) error {
	by, err := s.o.Keys.AuthenticateAdmin(c.Request().Header.Get("Authorization"))
	if err != nil {
		return err // a write: the admin role, not a viewer
	}
	if s.o.Cache == nil {
		return newAPIError(http.StatusNotFound, "cache_disabled", "No response cache is configured on this gateway.")
	}
	q := c.QueryParams()
	var f cache.Filter
	switch scope := q.Get("scope"); scope {
	case "":
		if q.Get("id") != "" {
			return errBadRequest("missing_required_parameter", "scope", "id needs a scope: key, team, project or global.")
		}
	case "key", "team", "project":
		if q.Get("id") == "" {
			return errBadRequest("missing_required_parameter", "id", "scope "+scope+" needs an id.")
		}
		f.Scope = scope + ":" + q.Get("id")
	case "global":
		f.Scope = "global"
	default:
		return errBadRequest("invalid_value", "scope", "scope must be key, team, project or global.")
	}
	f.Model = q.Get("model")
	if f == (cache.Filter{}) && q.Get("all") != "true" {
		return errBadRequest("missing_required_parameter", "scope", "Name a scope (and id), a model, or all=true to purge every entry.")
	}
	n, err := s.o.Cache.Purge(c.Request().Context(), f)
	s.audit(c, by, "cache.purge", f.Scope, map[string]any{"model": f.Model, "all": f == (cache.Filter{}),
		"deleted_memory": n.Memory, "deleted_shared": n.Shared, "deleted_vectors": n.Vectors, "failed": err != nil})
	if err != nil {
		s.log.Warn("cache purge: the shared level failed", "err", err)
		return newAPIError(http.StatusServiceUnavailable, "cache_unavailable",
			"The shared cache (Redis) could not be purged; this replica's memory was. Try again.")
	}
	writeJSON(c, http.StatusOK, map[string]any{"object": "cache.purge", "deleted_memory": n.Memory, "deleted_shared": n.Shared, "deleted_vectors": n.Vectors})
	return nil
}
