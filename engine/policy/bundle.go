package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/gavel-gw/gavel/bundles"
	"github.com/gavel-gw/gavel/policies"
)

// skipTests keeps *_test.rego out of served bundles: tests belong to `gavel policy test`,
// not to the query a request evaluates.
func skipTests(abspath string, info fs.FileInfo, _ int) bool {
	return !info.IsDir() && strings.HasSuffix(info.Name(), "_test.rego")
}

// LoadEmbedded returns the default bundle compiled into the binary: policies/*.rego plus
// the manifest and data documents of bundles/.
func LoadEmbedded() (*bundle.Bundle, error) {
	pol, err := readFS(policies.FS)
	if err != nil {
		return nil, fmt.Errorf("embedded policies: %w", err)
	}
	dat, err := readFS(bundles.FS)
	if err != nil {
		return nil, fmt.Errorf("embedded bundle data: %w", err)
	}
	dat.Modules = append(dat.Modules, pol.Modules...)
	return dat, nil
}

func readFS(fsys fs.FS) (*bundle.Bundle, error) {
	loader, err := bundle.NewFSLoader(fsys)
	if err != nil {
		return nil, err
	}
	b, err := bundle.NewCustomReader(loader.WithFilter(skipTests)).Read()
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// Load reads the bundle at path, or the embedded default when path is empty, and names
// its source for logs and /readyz. A tarball is held to the default Limits.
func Load(path string) (b *bundle.Bundle, source string, err error) {
	return LoadLimited(path, Limits{})
}

// LoadLimited is Load with a tarball held to lim.
func LoadLimited(path string, lim Limits) (b *bundle.Bundle, source string, err error) {
	if path == "" {
		b, err = LoadEmbedded()
		return b, "embedded", err
	}
	b, err = LoadPathLimited(path, lim)
	return b, path, err
}

// LoadPath reads a bundle from a directory laid out like `opa build` input, or from a
// bundle tarball (.tar.gz), the format `opa build` and bundle servers produce. A signed
// tarball loads without its signatures being checked: a local path is the operator's own
// choice, and signatures guard what arrives from a bundle server (engine/policy/remote),
// where a configured key makes them mandatory. A tarball is held to the default Limits.
func LoadPath(p string) (*bundle.Bundle, error) {
	return LoadPathLimited(p, Limits{})
}

// LoadPathLimited is LoadPath with a tarball held to lim: a tarball that crosses a bound
// fails with a *LimitError as soon as it does, before it is expanded in memory.
func LoadPathLimited(p string, lim Limits) (*bundle.Bundle, error) {
	info, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("policy bundle: %w", err)
	}
	var b bundle.Bundle
	if info.IsDir() {
		b, err = bundle.NewCustomReader(bundle.NewDirectoryLoader(p).WithFilter(skipTests)).Read()
	} else {
		if ext := path.Ext(p); ext != ".gz" && ext != ".tgz" {
			return nil, fmt.Errorf("policy bundle %s: want a directory or a .tar.gz bundle", p)
		}
		var tb *bundle.Bundle
		if tb, err = openTarball(p, lim); err == nil {
			b = *tb
		}
	}
	if err != nil {
		return nil, fmt.Errorf("policy bundle %s: %w", p, err)
	}
	if len(b.Modules) == 0 {
		return nil, fmt.Errorf("policy bundle %s: %w", p, errors.New("no Rego modules"))
	}
	return &b, nil
}
