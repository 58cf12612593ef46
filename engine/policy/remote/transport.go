package remote

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/plugins/rest"
)

// longPollContentType is how a bundle server says it honours Prefer: wait (OPA's rule).
const longPollContentType = "application/vnd.openpolicyagent.bundles"

// authPluginName routes the REST client's credentials through observingAuth.
const authPluginName = "gavel-observed"

// observingAuth wraps OPA's own credential plugin (bearer, or none) and the HTTP client it
// builds, to learn what OPA's downloader learns but does not expose: whether the server
// honours long polling, which decides whether the next check may start at once.
type observingAuth struct {
	inner    rest.HTTPAuthPlugin
	user     *url.Userinfo // the bundle URL's, sent as basic authentication; nil: none
	longPoll *atomic.Bool
}

var _ rest.HTTPAuthPlugin = (*observingAuth)(nil)

// newObservingAuth builds OPA's plugin for creds (a rest.Config "credentials" object);
// user, when set, is sent as basic authentication (OPA's REST client has no such
// credential of its own).
func newObservingAuth(creds map[string]any, user *url.Userinfo, longPoll *atomic.Bool) (*observingAuth, error) {
	raw, err := json.Marshal(map[string]any{"credentials": creds})
	if err != nil {
		return nil, err
	}
	var cfg rest.Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("bundle credentials: %w", err)
	}
	inner, err := cfg.AuthPlugin(nil)
	if err != nil {
		return nil, fmt.Errorf("bundle credentials: %w", err)
	}
	return &observingAuth{inner: inner, user: user, longPoll: longPoll}, nil
}

func (a *observingAuth) NewClient(c rest.Config) (*http.Client, error) {
	hc, err := a.inner.NewClient(c)
	if err != nil {
		return nil, err
	}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Transport = observer{next: next, longPoll: a.longPoll}
	return hc, nil
}

func (a *observingAuth) Prepare(r *http.Request) error {
	if err := a.inner.Prepare(r); err != nil {
		return err
	}
	if a.user != nil {
		pw, _ := a.user.Password()
		r.SetBasicAuth(a.user.Username(), pw)
	}
	return nil
}

type observer struct {
	next     http.RoundTripper
	longPoll *atomic.Bool
}

// RoundTrip mirrors download.Downloader: a 200 says whether long polling is on, a 304
// leaves it as it was.
func (o observer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := o.next.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusOK {
		o.longPoll.Store(resp.Header.Get("Content-Type") == longPollContentType)
	}
	return resp, err
}
