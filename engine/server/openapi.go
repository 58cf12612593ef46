package server

import (
	_ "embed"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// openAPIDoc documents the admin API (/v1/gavel/...): hand-written, and checked against
// the routes the server registers by a test, so the two cannot drift.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPI serves the document; it is public, as API documentation is.
func (s *Server) openAPI(c echo.Context) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	h.Set(echo.HeaderContentLength, strconv.Itoa(len(openAPIDoc)))
	c.Response().WriteHeader(http.StatusOK)
	_, err := c.Response().Write(openAPIDoc)
	return err
}
