// Package policybundle builds policy bundles for the end-to-end tests and drills: bundle
// directories of the default policies with test data, signed tarballs and signing keys.
package policybundle

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/policies"
)

// Dir writes a bundle directory: the default policies (tests left out) with data as
// data.gavel and a manifest naming revision.
func Dir(tb testing.TB, revision string, data map[string]any) string {
	tb.Helper()
	dir := tb.TempDir()
	err := fs.WalkDir(policies.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".rego") || strings.HasSuffix(p, "_test.rego") {
			return err
		}
		b, err := fs.ReadFile(policies.FS, p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, p), b, 0o644)
	})
	if err != nil {
		tb.Fatal(err)
	}
	man, _ := json.Marshal(map[string]any{"revision": revision, "roots": []string{"gavel"}})
	raw, _ := json.Marshal(data)
	if err := errors.Join(os.WriteFile(filepath.Join(dir, ".manifest"), man, 0o644),
		os.MkdirAll(filepath.Join(dir, "gavel"), 0o755),
		os.WriteFile(filepath.Join(dir, "gavel", "data.json"), raw, 0o644)); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// Signed is Dir's bundle built and signed the way `gavel bundle build --revision R
// --signing-key` does (policy.Build, policy.Sign with ES256 and key id "default",
// policy.WriteBundle), as a tarball; tamper, when set, changes the data after signing. The
// revision is exactly revision (a build without --revision appends the content's hash).
func Signed(tb testing.TB, revision string, data map[string]any, privPEM string, tamper func(map[string]any)) []byte {
	tb.Helper()
	b, err := policy.Build(context.Background(), []string{Dir(tb, revision, data)}, revision)
	if err != nil {
		tb.Fatal(err)
	}
	if err := policy.Sign(b, policy.Signing{Key: privPEM, Algorithm: "ES256"}); err != nil {
		tb.Fatal(err)
	}
	if tamper != nil {
		tamper(b.Data["gavel"].(map[string]any))
	}
	var buf bytes.Buffer
	if err := policy.WriteBundle(&buf, b); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// ESKeys returns an ES256 private key (PEM) and the path of its public key PEM.
func ESKeys(tb testing.TB) (priv, pubFile string) {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(k)
	pub, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pubFile = filepath.Join(tb.TempDir(), "bundle.pem")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		tb.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})), pubFile
}
