package server

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/gavel-gw/gavel/engine/decisionlog"
)

// MaxDecisionsLimit bounds one page of GET /v1/gavel/decisions.
const MaxDecisionsLimit = 1000

// authViewer authenticates a read of the admin API: keys with the admin or the viewer
// role (or open loopback mode).
func (s *Server) authViewer(c echo.Context) error {
	_, err := s.o.Keys.AuthenticateViewer(c.Request().Header.Get("Authorization"))
	return err
}

// listDecisions answers GET /v1/gavel/decisions: the recent decisions the filters
// select, newest first, each exactly as GET /v1/gavel/decisions/{id} returns it, and the
// cursor of the next page.
func (s *Server) listDecisions(c echo.Context) error {
	if err := s.authViewer(c); err != nil {
		return err
	}
	if s.o.DecisionLog == nil {
		return errDecisionLogDisabled
	}
	f, err := decisionFilter(c)
	if err != nil {
		return err
	}
	events, next, err := s.o.DecisionLog.List(f)
	if err != nil {
		var cur *decisionlog.ErrUnknownCursor
		if errors.As(err, &cur) {
			return errBadRequest("invalid_value", "before", "before: "+err.Error()+"; start again without it.")
		}
		return err
	}
	// The events are JSON already: the list is written around them, never re-encoded.
	size := 64 + len(next)
	for _, e := range events {
		size += len(e) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, `{"object":"list","data":[`...)
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, bytes.TrimSuffix(e, []byte("\n"))...)
	}
	b = append(b, `],"next_before":`...)
	b = strconv.AppendQuote(b, next)
	b = append(b, '}', '\n')
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	h.Set(echo.HeaderContentLength, strconv.Itoa(len(b)))
	c.Response().WriteHeader(http.StatusOK)
	_, err = c.Response().Write(b)
	return err
}

var errDecisionLogDisabled = newAPIError(http.StatusNotFound, "decision_log_disabled", "Decision logging is disabled on this gateway.")

// decisionFilter reads the list's query parameters; a bad one is a 400 naming it.
func decisionFilter(c echo.Context) (decisionlog.Filter, error) {
	q := c.QueryParams()
	f := decisionlog.Filter{Key: q.Get("key"), Team: q.Get("team"), Model: q.Get("model"), Route: q.Get("route"),
		Code: q.Get("deny_code"), Before: q.Get("before"), Limit: decisionlog.DefaultListLimit}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return f, errBadRequest("invalid_value", p.name, p.name+" must be an RFC 3339 time such as 2026-12-07T15:04:05Z, got `"+v+"`.")
			}
			*p.t = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxDecisionsLimit {
			return f, errBadRequest("invalid_value", "limit", "limit must be an integer from 1 to "+strconv.Itoa(MaxDecisionsLimit)+", got `"+v+"`.")
		}
		f.Limit = n
	}
	if v := q.Get("status"); v != "" {
		st, err := statusFilter(v)
		if err != nil {
			return f, err
		}
		f.Status = st
	}
	return f, nil
}

// statusFilter reads status=: an HTTP status (429), a class (2xx, 4xx, 5xx), ok (below
// 400), error (400 and above) or denied (the policy refused the request).
func statusFilter(v string) (func(int, bool) bool, error) {
	switch v {
	case "ok":
		return func(s int, _ bool) bool { return s < 400 }, nil
	case "error":
		return func(s int, _ bool) bool { return s >= 400 }, nil
	case "denied":
		return func(_ int, denied bool) bool { return denied }, nil
	}
	if len(v) == 3 && v[1:] == "xx" && v[0] >= '1' && v[0] <= '5' {
		class := int(v[0]-'0') * 100
		return func(s int, _ bool) bool { return s >= class && s < class+100 }, nil
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 100 && n <= 599 {
		return func(s int, _ bool) bool { return s == n }, nil
	}
	return nil, errBadRequest("invalid_value", "status", "status must be an HTTP status (429), a class (2xx, 4xx, 5xx), ok, error or denied, got `"+v+"`.")
}
