package policy

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/open-policy-agent/opa/v1/bundle"
)

// DefaultBuildDirs are what `gavel bundle build` packs without arguments: the layout of
// the embedded default bundle (Rego in policies/, manifest and data in bundles/).
var DefaultBuildDirs = []string{"policies", "bundles"}

// DefaultKeyID is the key id signatures carry unless told otherwise; `opa build
// --signing-key` uses the same, so either tool's bundles verify with the same config.
const DefaultKeyID = "default"

// Build reads directories laid out like `opa build` input (Rego modules, data.json /
// data.yaml under their data path, at most one .manifest) into one bundle, leaving
// *_test.rego out. With several directories, module paths are prefixed by the
// directory's name so that files of the same name cannot collide. The revision is
// revision if set, else the manifest's followed by "+" and a hash of the content, else
// that hash ("sha256:…"): two builds of different content never share a revision by
// accident. The bundle is compiled before it is returned: a bundle gavel could not serve
// is an error here.
func Build(ctx context.Context, dirs []string, revision string) (*bundle.Bundle, error) {
	if len(dirs) == 0 {
		dirs = DefaultBuildDirs
	}
	out := &bundle.Bundle{Data: map[string]any{}}
	manifestFrom := ""
	seen := map[string]string{}
	for _, dir := range dirs {
		info, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("bundle build: %w", err)
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("bundle build: %s is not a directory", dir)
		}
		b, err := bundle.NewCustomReader(bundle.NewDirectoryLoader(dir).WithFilter(skipTests)).Read()
		if err != nil {
			return nil, fmt.Errorf("bundle build %s: %w", dir, err)
		}
		if !b.Manifest.Empty() && !isDefaultManifest(b.Manifest) {
			if manifestFrom != "" {
				return nil, fmt.Errorf("bundle build: both %s and %s have a .manifest", manifestFrom, dir)
			}
			manifestFrom, out.Manifest = dir, b.Manifest
		}
		for _, m := range b.Modules {
			p := m.Path
			if len(dirs) > 1 {
				p = path.Join("/", filepath.Base(filepath.Clean(dir)), m.Path)
			}
			if other, dup := seen[p]; dup {
				return nil, fmt.Errorf("bundle build: module %s comes from both %s and %s", p, other, dir)
			}
			seen[p] = dir
			m.Path, m.URL = p, p
			out.Modules = append(out.Modules, m)
		}
		if err := mergeData(out.Data, b.Data, ""); err != nil {
			return nil, fmt.Errorf("bundle build %s: %w", dir, err)
		}
	}
	if len(out.Modules) == 0 {
		return nil, fmt.Errorf("bundle build %s: no Rego modules", strings.Join(dirs, ", "))
	}
	switch {
	case revision != "":
		out.Manifest.Revision = revision
	case out.Manifest.Revision == "":
		out.Manifest.Revision = contentRevision(out)
	default:
		// A manifest's revision names a lineage (the default library's is default-1); a
		// build of edited policies must not claim the revision it was edited from.
		out.Manifest.Revision += "+" + strings.TrimPrefix(contentRevision(out), "sha256:")
	}
	if out.Manifest.Roots == nil {
		out.Manifest.Init()
	}
	if _, err := Prepare(ctx, out, "build"); err != nil {
		return nil, err
	}
	return out, nil
}

// isDefaultManifest reports a manifest the reader filled in for a directory without one.
func isDefaultManifest(m bundle.Manifest) bool {
	return m.Revision == "" && m.Metadata == nil && m.RegoVersion == nil && len(m.FileRegoVersions) == 0 &&
		m.Roots != nil && len(*m.Roots) == 1 && (*m.Roots)[0] == ""
}

// mergeData deep-merges src into dst; the same leaf from two directories is an error.
func mergeData(dst, src map[string]any, at string) error {
	for k, v := range src {
		p := at + "/" + k
		old, ok := dst[k]
		if !ok {
			dst[k] = v
			continue
		}
		om, ok1 := old.(map[string]any)
		nm, ok2 := v.(map[string]any)
		if !ok1 || !ok2 {
			return fmt.Errorf("data %s is defined twice", p)
		}
		if err := mergeData(om, nm, p); err != nil {
			return err
		}
	}
	return nil
}

// Signing says how to sign a bundle: Key (PEM text or a PEM file, for RS*/ES*/PS*) or
// Secret (HS*), Algorithm (default: HS256 for a secret, ES256 for an EC key, else RS256)
// and KeyID (default DefaultKeyID).
type Signing struct {
	Key       string
	Secret    string
	Algorithm string
	KeyID     string
}

// Sign computes the bundle's .signatures.json with OPA's signer, over the module paths
// WriteBundle writes: a signature over local file paths would not verify anywhere else.
func Sign(b *bundle.Bundle, s Signing) error {
	if (s.Key == "") == (s.Secret == "") {
		return errors.New("bundle sign: want exactly one of a signing key or a signing secret")
	}
	var key string
	alg := s.Algorithm
	if s.Secret != "" {
		key = s.Secret
		if alg == "" {
			alg = "HS256"
		}
	} else {
		pemKey, err := readSigningKey(s.Key)
		if err != nil {
			return err
		}
		key = pemKey
		if alg == "" {
			alg = keyAlgorithm(pemKey)
		}
	}
	if strings.HasPrefix(strings.ToUpper(alg), "HS") != (s.Secret != "") {
		return fmt.Errorf("bundle sign: algorithm %s does not fit a %s", alg, map[bool]string{true: "secret", false: "key"}[s.Secret != ""])
	}
	kid := s.KeyID
	if kid == "" {
		kid = DefaultKeyID
	}
	if err := b.GenerateSignature(bundle.NewSigningConfig(key, alg, ""), kid, true); err != nil {
		return fmt.Errorf("bundle sign: %w", err)
	}
	return nil
}

// readSigningKey returns the PEM text of a signing key given as PEM text or as a file.
// OPA's signer takes a path it cannot open for PEM text and reports a parse error; here a
// missing or unreadable file is reported as such, and a file without a PEM block is named.
func readSigningKey(key string) (string, error) {
	if strings.HasPrefix(strings.TrimSpace(key), "-----BEGIN") {
		return key, nil
	}
	raw, err := os.ReadFile(key)
	if err != nil {
		return "", fmt.Errorf("bundle sign: signing key: %w", err)
	}
	if blk, _ := pem.Decode(raw); blk == nil {
		return "", fmt.Errorf("bundle sign: signing key %s holds no PEM block (want a PEM private key, e.g. from openssl genpkey)", key)
	}
	return string(raw), nil
}

// keyAlgorithm picks ES256 for an EC private key (PEM text) and RS256 otherwise.
func keyAlgorithm(key string) string {
	if blk, _ := pem.Decode([]byte(key)); blk != nil {
		if blk.Type == "EC PRIVATE KEY" {
			return "ES256"
		}
		if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
			if _, ok := k.(*ecdsa.PrivateKey); ok {
				return "ES256"
			}
		}
	}
	return "RS256"
}

// WriteBundle writes b as a bundle tarball, the format `opa build` and bundle servers use.
func WriteBundle(w io.Writer, b *bundle.Bundle) error {
	return bundle.NewWriter(w).UseModulePath(true).DisableFormat(true).Write(*b)
}

// ReadTarball reads a bundle tarball without verifying any signature it carries, to
// re-sign it. It is held to the default Limits.
func ReadTarball(r io.Reader) (*bundle.Bundle, error) {
	lim := Limits{}.WithDefaults()
	raw, err := io.ReadAll(io.LimitReader(r, lim.MaxCompressedBytes+1))
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if int64(len(raw)) > lim.MaxCompressedBytes {
		return nil, fmt.Errorf("bundle: %w", &LimitError{What: "compressed", Limit: lim.MaxCompressedBytes})
	}
	b, err := ReadTarballLimited(raw, "", lim, nil, skipVerification)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return b, nil
}
