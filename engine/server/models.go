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

// models lists what a client may ask for: every alias, and the catalog models whose
// provider is configured. Whether a request for one is honoured is still the policy's call.
func (s *Server) models() []model {
	rev := s.o.Engine.Active()
	if rev == nil {
		return nil
	}
	created := rev.Activated.Unix()
	var out []model
	for _, id := range rev.Data.ModelIDs() {
		if e, ok := rev.Data.Catalog[id]; ok {
			if _, alias := rev.Data.Aliases[id]; !alias {
				if !s.prov[e.Provider] {
					continue
				}
				out = append(out, model{ID: id, Object: "model", Created: created, OwnedBy: e.Provider})
				continue
			}
		}
		out = append(out, model{ID: id, Object: "model", Created: created, OwnedBy: "gavel"})
	}
	return out
}

func (s *Server) listModels(c echo.Context) error {
	if _, err := s.o.Keys.Authenticate(c.Request().Header.Get("Authorization")); err != nil {
		return err
	}
	data := s.models()
	if data == nil {
		data = []model{}
	}
	writeJSON(c, http.StatusOK, map[string]any{"object": "list", "data": data})
	return nil
}

func (s *Server) getModel(c echo.Context) error {
	if _, err := s.o.Keys.Authenticate(c.Request().Header.Get("Authorization")); err != nil {
		return err
	}
	id := strings.TrimPrefix(strings.TrimPrefix(c.Request().URL.Path, "/v1"), "/models/")
	for _, m := range s.models() {
		if m.ID == id {
			writeJSON(c, http.StatusOK, m)
			return nil
		}
	}
	return newAPIError(http.StatusNotFound, "model_not_found", "The model `"+id+"` does not exist or you do not have access to it.")
}
