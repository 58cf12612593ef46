package server

import (
	"net/http"
	"sort"
	"time"

	"github.com/labstack/echo/v4"
)

func (s *Server) healthz(c echo.Context) error {
	writeJSON(c, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz is ready when a bundle is active and a provider is configured; otherwise it says
// which is missing.
func (s *Server) readyz(c echo.Context) error {
	rev := s.o.Engine.Active()
	provs := make([]string, 0, len(s.prov))
	for p := range s.prov {
		provs = append(provs, p)
	}
	sort.Strings(provs)
	body := map[string]any{"providers": provs}
	var reasons []string
	if rev == nil {
		reasons = append(reasons, "no policy bundle is active")
	} else {
		body["bundle"] = map[string]any{
			"revision":    rev.ID,
			"source":      rev.Source,
			"activated":   rev.Activated.UTC().Format(time.RFC3339Nano),
			"age_seconds": int(time.Since(rev.Activated).Seconds()),
		}
	}
	if len(provs) == 0 {
		reasons = append(reasons, "no provider is configured")
	}
	status := http.StatusOK
	body["status"] = "ready"
	if len(reasons) > 0 {
		status = http.StatusServiceUnavailable
		body["status"] = "not_ready"
		body["reasons"] = reasons
	}
	writeJSON(c, status, body)
	return nil
}
