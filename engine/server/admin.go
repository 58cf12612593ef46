package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// explain answers "why did this request go where it went?" for a recent decision id: the
// (masked) input, the decision and its reasons, the route taken and the bundle revision.
func (s *Server) explain(c echo.Context) error {
	if _, err := s.o.Keys.AuthenticateAdmin(c.Request().Header.Get("Authorization")); err != nil {
		return err
	}
	if s.o.DecisionLog == nil {
		return newAPIError(http.StatusNotFound, "decision_log_disabled", "Decision logging is disabled on this gateway.")
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
