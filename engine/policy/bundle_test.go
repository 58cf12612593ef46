package policy

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/bundle"
)

// writeFiles lays out a bundle directory from path → content.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeTarball writes the embedded bundle the way `opa build` and bundle servers ship it.
func writeTarball(t *testing.T, name string) string {
	t.Helper()
	b, err := LoadEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.NewWriter(f).Write(*b); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPathTarball(t *testing.T) {
	// The content is the embedded bundle, so the decision must match what the binary
	// decides offline.
	tarball := writeTarball(t, "bundle.tar.gz")
	b, err := LoadPath(tarball)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range b.Modules {
		if strings.HasSuffix(m.Path, "_test.rego") {
			t.Errorf("test module %s in the served bundle", m.Path)
		}
	}
	ctx := context.Background()
	rev, err := Prepare(ctx, b, "x")
	if err != nil {
		t.Fatal(err)
	}
	if rev.ID != "default-1" || rev.Source != "x" {
		t.Errorf("revision, source = %q, %q; want default-1, x", rev.ID, rev.Source)
	}
	in := Input{
		Request:   Request{ID: "r1", Endpoint: "chat", Model: "fast"},
		Providers: providers(t, `{"mock": {"healthy": true, "circuit": "closed", "models": {}}}`),
	}
	d, err := rev.Decide(ctx, in.Value())
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allow || len(d.Targets) == 0 {
		t.Fatalf("decision = %+v, want allow", d)
	}
	if got := d.Targets[0].String(); got != "mock/mock-small" {
		t.Errorf("first target = %s, want mock/mock-small", got)
	}

	// .tgz is the other name bundle servers use for the same format. Loading is enough
	// here: compiling the same content again would only cost time.
	raw, err := os.ReadFile(tarball)
	if err != nil {
		t.Fatal(err)
	}
	tgz := filepath.Join(t.TempDir(), "bundle.tgz")
	if err := os.WriteFile(tgz, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	b2, err := LoadPath(tgz)
	if err != nil {
		t.Fatal(err)
	}
	if b2.Manifest.Revision != "default-1" || len(b2.Modules) != len(b.Modules) {
		t.Errorf(".tgz: revision %q, %d modules; want default-1, %d", b2.Manifest.Revision, len(b2.Modules), len(b.Modules))
	}
}

func TestLoadPathErrors(t *testing.T) {
	tarball := writeTarball(t, "bundle.tar.gz")
	raw, err := os.ReadFile(tarball)
	if err != nil {
		t.Fatal(err)
	}
	// A real bundle under a name LoadPath must refuse: the extension decides, not content.
	zip := filepath.Join(t.TempDir(), "bundle.zip")
	if err := os.WriteFile(zip, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	notGzip := filepath.Join(t.TempDir(), "bundle.tar.gz")
	if err := os.WriteFile(notGzip, []byte("package gavel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		want    string // in the message
		wantErr error  // errors.Is, when set
	}{
		{"data only", writeFiles(t, map[string]string{
			".manifest":       `{"revision": "r", "roots": ["gavel"]}`,
			"gavel/data.json": `{"catalog": {}}`,
		}), "no Rego modules", nil},
		{"only test modules", writeFiles(t, map[string]string{
			"gavel/route_test.rego": "package gavel.route_test\n\ntest_x if true\n",
		}), "no Rego modules", nil},
		{"empty directory", t.TempDir(), "no Rego modules", nil},
		{"zip", zip, "want a directory or a .tar.gz bundle", nil},
		{"plain file", writeFiles(t, map[string]string{"x.rego": "package x\n"}) + "/x.rego", "want a directory or a .tar.gz bundle", nil},
		{"missing", filepath.Join(t.TempDir(), "nope.tar.gz"), "policy bundle", fs.ErrNotExist},
		{"not gzip", notGzip, notGzip, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := LoadPath(tc.path)
			if err == nil {
				t.Fatalf("loaded %d modules, want an error", len(b.Modules))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want errors.Is %v", err, tc.wantErr)
			}
		})
	}
}

func TestLoadPathIgnoresTestFiles(t *testing.T) {
	// Policy tests live next to policies in a source tree; they must never reach the
	// query that requests evaluate. The broken one proves they are not even parsed.
	dir := writeFiles(t, map[string]string{
		".manifest":                  `{"revision": "dir-1", "roots": ["gavel"]}`,
		"gavel/data.json":            `{}`,
		"gavel/decision.rego":        "package gavel\n\ndecision := {\"allow\": false}\n",
		"gavel/decision_test.rego":   "package gavel_test\n\ntest_deny if data.gavel.decision.allow == false\n",
		"gavel/sub/nested_test.rego": "this is not rego {{{\n",
	})
	b, err := LoadPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, m := range b.Modules {
		paths = append(paths, filepath.Base(m.Path))
	}
	if len(paths) != 1 || paths[0] != "decision.rego" {
		t.Errorf("modules = %v, want only decision.rego", paths)
	}
	if b.Manifest.Revision != "dir-1" {
		t.Errorf("revision = %q", b.Manifest.Revision)
	}
}
