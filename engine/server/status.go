package server

import (
	"net/http"
	"os"
	"runtime/debug"

	"github.com/labstack/echo/v4"
	pluginbundle "github.com/open-policy-agent/opa/v1/plugins/bundle"

	"github.com/gavel-gw/gavel/engine/canary"
	"github.com/gavel-gw/gavel/engine/policy/remote"
)

// CanaryStatus reports on a canary candidate bundle; *canary.Canary is one.
type CanaryStatus interface {
	Status() canary.Status
}

var _ CanaryStatus = (*canary.Canary)(nil)

// BundleStatus reports on the bundle server the policy comes from; *remote.Client is one.
type BundleStatus interface {
	Health() remote.Health
	Status() pluginbundle.Status
}

var _ BundleStatus = (*remote.Client)(nil)

// status answers GET /v1/gavel/status in the shape of OPA's status API, so tooling
// written for OPA's bundle status reads gavel's (admin only, like the other admin
// endpoints).
func (s *Server) status(c echo.Context) error {
	if err := s.authViewer(c); err != nil {
		return err
	}
	var st pluginbundle.Status
	if s.o.Bundles != nil {
		st = s.o.Bundles.Status()
	} else {
		st.Name = remote.BundleName
	}
	if rev := s.o.Engine.Active(); rev != nil && s.o.Bundles == nil {
		// A local bundle: activation is all there is to say.
		st.ActiveRevision, st.LastSuccessfulActivation = rev.ID, rev.Activated.UTC()
	}
	doc := map[string]any{
		"bundles": map[string]any{st.Name: st},
		"labels":  statusLabels,
	}
	if s.o.Canary != nil {
		// Beside OPA's shape: OPA has no canary, so tooling written for it ignores this.
		doc["canary"] = s.o.Canary.Status()
	}
	writeJSON(c, http.StatusOK, doc)
	return nil
}

// statusLabels identify this gateway the way OPA's status labels identify an OPA.
var statusLabels = func() map[string]string {
	host, _ := os.Hostname()
	v := "dev"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	return map[string]string{"id": host, "app": "gavel", "version": v}
}()
