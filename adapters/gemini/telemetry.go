package gemini

import (
	"net/http"

	"github.com/gavel-gw/gavel/adapters"
)

var (
	_ adapters.TransportWrapper = (*Provider)(nil)
	_ adapters.GenAIProvider    = (*Provider)(nil)
)

// WrapTransport wraps the transport of the client this provider built itself; a client
// passed in Config belongs to the caller, who instruments it as they see fit. Call it
// before the first request.
func (p *Provider) WrapTransport(wrap func(http.RoundTripper) http.RoundTripper) {
	p.client.WrapTransport(wrap)
}

// GenAIProvider is the OpenTelemetry gen_ai.provider.name of this upstream.
func (p *Provider) GenAIProvider() string {
	return "gcp.gemini"
}
