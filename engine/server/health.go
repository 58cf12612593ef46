package server

import (
	"net/http"
	"sort"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/gavel-gw/gavel/engine/policy/remote"
)

func (s *Server) healthz(c echo.Context) error {
	writeJSON(c, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz is ready when a bundle is active and a provider is configured; otherwise it says
// which is missing. With a bundle server it also reports staleness, and fails when no
// bundle has arrived or bundle.max_staleness is exceeded (see remote.Client.Health).
func (s *Server) readyz(c echo.Context) error {
	rev := s.o.Engine.Active()
	provs := make([]string, 0, len(s.prov))
	for p := range s.prov {
		provs = append(provs, p)
	}
	sort.Strings(provs)
	body := map[string]any{"providers": provs}
	var reasons []string
	var server *remote.Health
	if s.o.Bundles != nil {
		h := s.o.Bundles.Health()
		server = &h
	}
	switch {
	case server != nil && server.NotReady != "":
		reasons = append(reasons, server.NotReady)
	case rev == nil:
		reasons = append(reasons, "no policy bundle is active")
	}
	if rev != nil || server != nil {
		b := map[string]any{}
		if rev != nil {
			b["revision"], b["source"] = rev.ID, rev.Source
			b["activated"] = rev.Activated.UTC().Format(time.RFC3339Nano)
			b["age_seconds"] = int(time.Since(rev.Activated).Seconds())
		}
		if server != nil {
			b["server"] = server
			b["stale"], b["staleness_seconds"] = server.Stale, server.StalenessSeconds
		}
		body["bundle"] = b
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
