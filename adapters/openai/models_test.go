package openai

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
)

func TestListModels(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    []string
		wantErr adapters.Kind
	}{
		{name: "openai shape", status: 200,
			body: `{"object":"list","data":[{"id":"gpt-4o","object":"model","owned_by":"openai"},{"id":"","object":"model"},{"id":"llama3","object":"model"}]}`,
			want: []string{"gpt-4o", "llama3"}},
		{name: "empty", status: 200, body: `{"object":"list","data":[]}`, want: []string{}},
		{name: "unauthorized", status: 401, body: `{"error":{"message":"bad key sk-secret","type":"invalid_request_error"}}`, wantErr: adapters.KindAuth},
		{name: "not json", status: 200, body: `<html>`, wantErr: adapters.KindProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *http.Request
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			p := mustProvider(t, Config{BaseURL: srv.URL + "/v1", APIKey: "sk-secret", Headers: map[string]string{"X-Tenant": "t1"}})
			models, err := p.ListModels(context.Background())
			if got == nil || got.Method != http.MethodGet || got.URL.Path != "/v1/models" {
				t.Fatalf("request = %v", got)
			}
			if got.Header.Get("Authorization") != "Bearer sk-secret" || got.Header.Get("X-Tenant") != "t1" || got.Header.Get("Content-Type") != "" {
				t.Errorf("headers = %v", got.Header)
			}
			if tt.wantErr != adapters.KindUnknown {
				var e *adapters.Error
				if !errors.As(err, &e) || e.Kind != tt.wantErr {
					t.Fatalf("err = %v, want kind %s", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "sk-secret") {
					t.Errorf("error leaks the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ids := []string{}
			for _, m := range models {
				ids = append(ids, m.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.want, ",") {
				t.Errorf("models = %v, want %v", ids, tt.want)
			}
		})
	}
}

func TestListModelsAzure(t *testing.T) {
	p := mustProvider(t, Config{BaseURL: "https://x.openai.azure.com", APIVersion: "2024-10-21"})
	if _, err := p.ListModels(context.Background()); err == nil || !strings.Contains(err.Error(), "declare them") {
		t.Fatalf("err = %v", err)
	}
}
