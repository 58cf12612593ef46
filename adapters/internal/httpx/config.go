package httpx

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// BaseURL validates a provider's base_url (def when empty) and returns it without a
// trailing slash. adapter and name prefix the errors ("openai: provider %q: …").
func BaseURL(adapter, name, raw, def string) (string, error) {
	base := strings.TrimSpace(raw)
	if base == "" {
		base = def
	}
	u, err := url.Parse(base)
	if err != nil {
		// url.Error repeats the URL, which may embed credentials; keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("%s: provider %q: base_url is not a valid URL: %v", adapter, name, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s: provider %q: base_url must be an absolute http(s) URL, got %q", adapter, name, u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		// A query would ride on every request URL (a "?key=" would put the key in access
		// logs and error messages); adapters build their own.
		return "", fmt.Errorf("%s: provider %q: base_url must not have a query or fragment", adapter, name)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// ownedHeaders are set by the adapters; letting configuration replace them would break
// the exchange rather than customise it.
var ownedHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Accept": true, "Host": true,
	"Transfer-Encoding": true, "Connection": true, "Te": true, "Upgrade": true,
}

// AddHeaders validates the operator's extra headers and sets them on h, refusing the
// framing headers the adapter owns.
func AddHeaders(adapter, name string, h http.Header, extra map[string]string) error {
	for k, v := range extra {
		if !ValidHeaderName(k) || !ValidHeaderValue(v) {
			return fmt.Errorf("%s: provider %q: invalid header %q", adapter, name, k)
		}
		ck := http.CanonicalHeaderKey(k)
		if ownedHeaders[ck] {
			return fmt.Errorf("%s: provider %q: header %q is set by the adapter", adapter, name, ck)
		}
		h.Set(ck, v)
	}
	return nil
}

// Client is a provider's HTTP client and whether the provider built it: a client passed
// in the provider's Config belongs to the caller, who may share and instrument it.
type Client struct {
	*http.Client
	owned bool
}

// OwnClient returns c, or a client of the provider's own (NewClient) when c is nil.
func OwnClient(c *http.Client) Client {
	if c == nil {
		return Client{Client: NewClient(), owned: true}
	}
	return Client{Client: c}
}

// CloseIdle drops the idle connections of a client the provider built.
func (c Client) CloseIdle() {
	if c.owned {
		c.CloseIdleConnections()
	}
}

// WrapTransport wraps the transport of a client the provider built. Call it before the
// first request.
func (c Client) WrapTransport(wrap func(http.RoundTripper) http.RoundTripper) {
	if c.owned {
		c.Transport = wrap(c.Transport)
	}
}
