package test

import (
	"context"
	"os"
	"testing"

	"github.com/openai/openai-go/v3/packages/param"

	"github.com/gavel-gw/gavel/engine/app"
	"github.com/gavel-gw/gavel/engine/config"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// gatewayNew builds (but does not serve) a gateway, for configuration errors.
func gatewayNew(t *testing.T, yaml string) (*app.Gateway, error) {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(string) string { return "" })
	if err != nil {
		return nil, err
	}
	cfg.Ledger.Store = "memory"
	g, err := app.New(context.Background(), cfg, func(string) string { return "" }, nil)
	if g != nil {
		t.Cleanup(g.Close)
	}
	return g, err
}

func openaiString(s string) param.Opt[string] { return param.NewOpt(s) }
