package server

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/policy"
)

// Every admin route the server registers is in the OpenAPI document, and every
// operation the document names is a registered route.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	s := New(Options{Engine: policy.New(), Keys: auth.New(nil, true)})
	param := regexp.MustCompile(`:([a-z_]+)`)
	registered := map[string]bool{}
	for _, r := range s.echo.Routes() {
		if strings.HasPrefix(r.Path, "/v1/gavel/") {
			registered[r.Method+" "+param.ReplaceAllString(r.Path, "{$1}")] = true
		}
	}
	if len(registered) < 10 {
		t.Fatalf("only %d admin routes registered: %v", len(registered), registered)
	}
	var missing, extra []string
	for r := range registered {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for d := range documented {
		if !registered[d] {
			extra = append(extra, d)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes missing from openapi.json: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("openapi.json documents routes the server does not have: %v", extra)
	}
}
