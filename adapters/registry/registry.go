package registry

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"sort"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/anthropic"
	"github.com/gavel-gw/gavel/adapters/gemini"
	"github.com/gavel-gw/gavel/adapters/mock"
	"github.com/gavel-gw/gavel/adapters/openai"
)

// Provider types.
const (
	TypeOpenAI    = "openai"    // OpenAI and every OpenAI-compatible server (DeepSeek, vLLM, Ollama…)
	TypeAzure     = "azure"     // Azure OpenAI deployments
	TypeMock      = "mock"      // the built-in deterministic mock
	TypeAnthropic = "anthropic" // Anthropic Messages API
	TypeGemini    = "gemini"    // Google Gemini API (generateContent)
)

// Types lists the provider types this build supports.
func Types() []string { return []string{TypeAnthropic, TypeAzure, TypeGemini, TypeMock, TypeOpenAI} }

// Secret is a credential: it prints, logs and marshals as "[redacted]", so a provider key
// cannot reach a log line or an error message by accident.
type Secret string

const redacted = "[redacted]"

func (s Secret) String() string { return redacted }

// GoString keeps %#v from printing the key too.
func (s Secret) GoString() string { return redacted }

// LogValue redacts the key in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON redacts the key in JSON output.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Spec declares one provider.
type Spec struct {
	Name         string `yaml:"name"`
	Type         string `yaml:"type"`
	BaseURL      string `yaml:"base_url"`
	APIKey       Secret `yaml:"api_key"`
	Organization string `yaml:"organization"`
	Project      string `yaml:"project"`
	APIVersion   string `yaml:"api_version"`
	// Headers are sent with every request; their values count as credentials (gateway
	// tokens, tenant keys), so they print as "[redacted]" and are scrubbed from upstream
	// error texts like the API key.
	Headers map[string]Secret `yaml:"headers"`
	// MaxResponseBytes bounds one chat answer of this upstream, a non-streamed body or
	// all of a stream; the adapters' default (32 MiB) when zero.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
	// ResponsesAPI says whether an OpenAI-type upstream serves the Responses API itself,
	// so that /v1/responses requests pass through untranslated (hosted tools included);
	// unset: yes for OpenAI's own API, no for other servers (vLLM, Ollama…), which get
	// them translated to Chat Completions.
	ResponsesAPI *bool        `yaml:"responses_api"`
	Mock         *mock.Config `yaml:"mock"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// Validate checks the fields that matter for the spec's type and rejects the ones that do
// not apply, so a typo'd setting is an error instead of being silently ignored.
func (s Spec) Validate() error {
	var errs []error
	if !nameRE.MatchString(s.Name) {
		errs = append(errs, fmt.Errorf("name %q must be lower-case letters, digits, '-', '_' or '.'", s.Name))
	}
	if s.MaxResponseBytes < 0 {
		errs = append(errs, fmt.Errorf("max_response_bytes must not be negative, got %d", s.MaxResponseBytes))
	}
	switch s.Type {
	case TypeOpenAI, TypeAzure, TypeAnthropic, TypeGemini:
		if s.Mock != nil {
			errs = append(errs, fmt.Errorf("mock settings apply only to type %q", TypeMock))
		}
		if s.BaseURL != "" {
			if u, err := url.Parse(s.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				shown := "(unparsable)"
				if err == nil {
					shown = u.Redacted() // a user:password@ in the URL must not reach the log
				}
				errs = append(errs, fmt.Errorf("base_url %q must be an http(s) URL", shown))
			}
		}
		if s.Type == TypeAzure && (s.BaseURL == "" || s.APIVersion == "") {
			errs = append(errs, errors.New("azure needs base_url (https://NAME.openai.azure.com) and api_version"))
		}
		if s.Type != TypeOpenAI && s.ResponsesAPI != nil {
			errs = append(errs, fmt.Errorf("responses_api applies only to type %q", TypeOpenAI))
		}
		if s.Type == TypeOpenAI && s.APIVersion != "" {
			errs = append(errs, fmt.Errorf("api_version applies only to types %q and %q", TypeAzure, TypeAnthropic))
		}
		if (s.Type == TypeAnthropic || s.Type == TypeGemini) && (s.Organization != "" || s.Project != "") {
			errs = append(errs, errors.New("organization and project apply only to OpenAI"))
		}
	case TypeMock:
		if s.BaseURL != "" || s.APIKey != "" || s.Organization != "" || s.Project != "" || s.APIVersion != "" || len(s.Headers) > 0 || s.MaxResponseBytes != 0 || s.ResponsesAPI != nil {
			errs = append(errs, errors.New("type mock takes only mock settings"))
		}
		if s.Mock != nil {
			if err := s.Mock.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("mock: %w", err))
			}
		}
	case "":
		errs = append(errs, fmt.Errorf("type is required (one of %v)", Types()))
	default:
		errs = append(errs, fmt.Errorf("unknown type %q (this build supports %v)", s.Type, Types()))
	}
	return errors.Join(errs...)
}

// headers returns the header values as the adapters take them.
func (s Spec) headers() map[string]string {
	if s.Headers == nil {
		return nil
	}
	h := make(map[string]string, len(s.Headers))
	for k, v := range s.Headers {
		h[k] = string(v)
	}
	return h
}

// New builds the provider a spec describes.
func New(s Spec) (adapters.Provider, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("provider %s: %w", s.Name, err)
	}
	switch s.Type {
	case TypeOpenAI, TypeAzure:
		return openai.New(openai.Config{Name: s.Name, BaseURL: s.BaseURL, APIKey: string(s.APIKey),
			Organization: s.Organization, Project: s.Project, Headers: s.headers(), APIVersion: s.APIVersion,
			MaxResponseBytes: s.MaxResponseBytes, Responses: s.ResponsesAPI})
	case TypeAnthropic:
		// api_version is the anthropic-version header here.
		return anthropic.New(anthropic.Config{Name: s.Name, BaseURL: s.BaseURL, APIKey: string(s.APIKey),
			Version: s.APIVersion, Headers: s.headers(), MaxResponseBytes: s.MaxResponseBytes})
	case TypeGemini:
		// api_version selects the API version path segment (v1beta by default).
		return gemini.New(gemini.Config{Name: s.Name, BaseURL: s.BaseURL, APIKey: string(s.APIKey),
			APIVersion: s.APIVersion, Headers: s.headers(), MaxResponseBytes: s.MaxResponseBytes})
	case TypeMock:
		var c mock.Config
		if s.Mock != nil {
			c = *s.Mock
		}
		c.Name = s.Name
		return mock.New(c)
	}
	return nil, fmt.Errorf("provider %s: unknown type %q", s.Name, s.Type)
}

// FromEnv declares providers the way the vendors' SDKs find their credentials:
// OPENAI_API_KEY (+ OPENAI_BASE_URL, OPENAI_ORG_ID, OPENAI_PROJECT_ID) registers "openai";
// ANTHROPIC_API_KEY (+ ANTHROPIC_BASE_URL) registers "anthropic"; GEMINI_API_KEY
// (+ GEMINI_BASE_URL) registers "gemini".
// Notes explain variables that were found but cannot be used by this build.
func FromEnv(getenv func(string) string) (specs []Spec, notes []string) {
	if key := getenv("OPENAI_API_KEY"); key != "" {
		specs = append(specs, Spec{Name: "openai", Type: TypeOpenAI, APIKey: Secret(key),
			BaseURL: getenv("OPENAI_BASE_URL"), Organization: getenv("OPENAI_ORG_ID"), Project: getenv("OPENAI_PROJECT_ID")})
	}
	if key := getenv("ANTHROPIC_API_KEY"); key != "" {
		specs = append(specs, Spec{Name: "anthropic", Type: TypeAnthropic, APIKey: Secret(key), BaseURL: getenv("ANTHROPIC_BASE_URL")})
	}
	if key := getenv("GEMINI_API_KEY"); key != "" {
		specs = append(specs, Spec{Name: "gemini", Type: TypeGemini, APIKey: Secret(key), BaseURL: getenv("GEMINI_BASE_URL")})
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	return specs, notes
}

// MockSpec is the provider `make run` uses when nothing else is configured.
func MockSpec() Spec { return Spec{Name: "mock", Type: TypeMock} }
