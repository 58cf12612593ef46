package server

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// models lists what the caller can ask for right now: every name the active policy would
// route for this key (the pipeline asks it), nothing else.
func (s *Server) models(c echo.Context) ([]model, error) {
	caller, err := s.o.Keys.Authenticate(c.Request().Header.Get("Authorization"))
	if err != nil {
		return nil, err
	}
	routable, err := s.p.Models(c.Request().Context(), caller)
	if err != nil {
		return nil, err
	}
	var created int64
	if rev := s.o.Engine.Active(); rev != nil {
		created = rev.Activated.Unix()
	}
	out := make([]model, len(routable))
	for i, r := range routable {
		out[i] = model{ID: r.ID, Object: "model", Created: created, OwnedBy: r.OwnedBy}
	}
	return out, nil
}

func (s *Server) listModels(c echo.Context) error {
	data, err := s.models(c)
	if err != nil {
		return err
	}
	writeJSON(c, http.StatusOK, map[string]any{"object": "list", "data": data})
	return nil
}

func (s *Server) getModel(c echo.Context) error {
	data, err := s.models(c)
	if err != nil {
		return err
	}
	id := strings.TrimPrefix(strings.TrimPrefix(c.Request().URL.Path, "/v1"), "/models/")
	for _, m := range data {
		if m.ID == id {
			writeJSON(c, http.StatusOK, m)
			return nil
		}
	}
	return newAPIError(http.StatusNotFound, "model_not_found", "The model `"+id+"` does not exist or you do not have access to it.")
}
