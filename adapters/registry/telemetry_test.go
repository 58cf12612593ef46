package registry

import (
	"net/http"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
)

// Providers name their gen_ai.provider.name and let the gateway wrap the transport they
// built, which is how traced calls carry a traceparent upstream.
func TestProvidersTelemetryCapabilities(t *testing.T) {
	tests := []struct {
		spec      Spec
		genAI     string // "" when the provider has no GenAIProvider
		wrappable bool
	}{
		{Spec{Name: "o", Type: TypeOpenAI, APIKey: "k"}, "openai", true},
		{Spec{Name: "az", Type: TypeAzure, APIKey: "k", BaseURL: "https://x.openai.azure.com", APIVersion: "2024-10-21"}, "azure.ai.openai", true},
		{Spec{Name: "an", Type: TypeAnthropic, APIKey: "k"}, "anthropic", true},
		{Spec{Name: "g", Type: TypeGemini, APIKey: "k"}, "gcp.gemini", true},
		{Spec{Name: "m", Type: TypeMock}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.spec.Type, func(t *testing.T) {
			p, err := New(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if c, ok := p.(adapters.Closer); ok {
				defer c.Close()
			}
			got := ""
			if g, ok := p.(adapters.GenAIProvider); ok {
				got = g.GenAIProvider()
			}
			if got != tc.genAI {
				t.Errorf("GenAIProvider = %q, want %q", got, tc.genAI)
			}
			w, ok := p.(adapters.TransportWrapper)
			if ok != tc.wrappable {
				t.Fatalf("TransportWrapper = %v, want %v", ok, tc.wrappable)
			}
			if !ok {
				return
			}
			var wrapped http.RoundTripper
			w.WrapTransport(func(rt http.RoundTripper) http.RoundTripper { wrapped = rt; return rt })
			if wrapped == nil {
				t.Error("the provider's own transport was not offered for wrapping")
			}
		})
	}
}
