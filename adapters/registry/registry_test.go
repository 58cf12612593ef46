package registry

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/adapters/mock"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		err  string
	}{
		{"openai", Spec{Name: "openai", Type: "openai", APIKey: "k"}, ""},
		{"vllm", Spec{Name: "vllm", Type: "openai", BaseURL: "http://127.0.0.1:8000/v1"}, ""},
		{"azure", Spec{Name: "az", Type: "azure", BaseURL: "https://x.openai.azure.com", APIVersion: "2024-10-21", APIKey: "k"}, ""},
		{"mock", Spec{Name: "mock", Type: "mock", Mock: &mock.Config{Chunks: 3}}, ""},
		{"anthropic", Spec{Name: "claude", Type: "anthropic", APIKey: "k", APIVersion: "2023-06-01"}, ""},
		{"anthropic with org", Spec{Name: "claude", Type: "anthropic", Organization: "o"}, "apply only to OpenAI"},
		{"bad name", Spec{Name: "Open AI", Type: "openai"}, "name"},
		{"no type", Spec{Name: "x"}, "type is required"},
		{"unknown type", Spec{Name: "x", Type: "bedrock"}, "unknown type"},
		{"bad url", Spec{Name: "x", Type: "openai", BaseURL: "ftp://x"}, "base_url"},
		{"azure without version", Spec{Name: "x", Type: "azure", BaseURL: "https://x"}, "api_version"},
		{"api_version on openai", Spec{Name: "x", Type: "openai", APIVersion: "1"}, "api_version applies"},
		{"mock with url", Spec{Name: "x", Type: "mock", BaseURL: "http://x"}, "only mock settings"},
		{"mock settings on openai", Spec{Name: "x", Type: "openai", Mock: &mock.Config{}}, "mock settings"},
		{"bad mock", Spec{Name: "x", Type: "mock", Mock: &mock.Config{ErrorRate: 2}}, "mock"},
		{"response bound", Spec{Name: "x", Type: "gemini", MaxResponseBytes: 1 << 20}, ""},
		{"negative response bound", Spec{Name: "x", Type: "openai", MaxResponseBytes: -1}, "max_response_bytes"},
		{"response bound on mock", Spec{Name: "x", Type: "mock", MaxResponseBytes: 1 << 20}, "only mock settings"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				p, err := New(tc.spec)
				if err != nil || p.Name() != tc.spec.Name {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Spec{Name: "openai", Type: "openai", APIKey: "sk-live-123"}
	b, _ := json.Marshal(s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), string(b), fmt.Sprintf("%v", s.APIKey)} {
		if strings.Contains(out, "sk-live-123") {
			t.Errorf("key leaked: %s", out)
		}
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{"OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "ANTHROPIC_API_KEY": "a", "ANTHROPIC_BASE_URL": "http://127.0.0.1:2"}
	specs, _ := FromEnv(func(k string) string { return env[k] })
	if len(specs) != 2 || specs[1].Name != "openai" || specs[1].BaseURL != "http://127.0.0.1:1/v1" || string(specs[1].APIKey) != "sk" {
		t.Fatalf("specs = %+v", specs)
	}
	if specs[0].Name != "anthropic" || specs[0].Type != TypeAnthropic || specs[0].BaseURL != "http://127.0.0.1:2" {
		t.Fatalf("anthropic spec = %+v", specs[0])
	}
}
