package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/bundle"
)

// testKeys returns PEM private and public keys for alg, generated here.
func testKeys(t *testing.T, alg string) (priv, pub string) {
	t.Helper()
	var key any
	var err error
	switch alg {
	case "RS256":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "HS256":
		return "s3cret-shared-between-builder-and-gateways", "s3cret-shared-between-builder-and-gateways"
	}
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.(crypto.Signer).Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
}

func verify(raw []byte, alg, pub string) error {
	vc := bundle.NewVerificationConfig(map[string]*bundle.KeyConfig{DefaultKeyID: {Key: pub, Algorithm: alg}}, DefaultKeyID, "", nil)
	_, err := bundle.NewReader(bytes.NewReader(raw)).WithBundleVerificationConfig(vc).Read()
	return err
}

var defaultDirs = []string{"../../policies", "../../bundles"}

func buildTarball(t *testing.T, dirs []string, revision string, s *Signing) []byte {
	t.Helper()
	b, err := Build(context.Background(), dirs, revision)
	if err != nil {
		t.Fatal(err)
	}
	if s != nil {
		if err := Sign(b, *s); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := WriteBundle(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tamper rewrites one file of a tarball, keeping its signatures.
func tamper(t *testing.T, raw []byte, name string, edit func([]byte) []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if strings.TrimPrefix(h.Name, "/") == name {
			body, found = edit(body), true
		}
		h.Size = int64(len(body))
		tw.WriteHeader(h)
		tw.Write(body)
	}
	tw.Close()
	zw.Close()
	if !found {
		t.Fatalf("no %s in the tarball", name)
	}
	return out.Bytes()
}

func TestBuildSignVerify(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "HS256"} {
		t.Run(alg, func(t *testing.T) {
			priv, pub := testKeys(t, alg)
			s := Signing{Key: priv}
			if alg == "HS256" {
				s = Signing{Secret: priv}
			}
			raw := buildTarball(t, defaultDirs, "", &s)
			if err := verify(raw, alg, pub); err != nil {
				t.Fatalf("signed bundle does not verify: %v", err)
			}
			bad := tamper(t, raw, "policies/route.rego", func(b []byte) []byte { return append(b, "\n# changed\n"...) })
			if err := verify(bad, alg, pub); err == nil {
				t.Error("a tampered module verified")
			}
			bad = tamper(t, raw, "data.json", func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"max_targets":4`), []byte(`"max_targets":3`), 1)
			})
			if err := verify(bad, alg, pub); err == nil {
				t.Error("tampered data verified")
			}
			_, otherPub := testKeys(t, alg)
			if alg == "HS256" {
				otherPub = "another secret"
			}
			if err := verify(raw, alg, otherPub); err == nil {
				t.Error("verified with the wrong key")
			}
		})
	}
}

func TestBuiltBundleServesLikeEmbedded(t *testing.T) {
	raw := buildTarball(t, defaultDirs, "", nil)
	path := filepath.Join(t.TempDir(), "bundle.tar.gz")
	os.WriteFile(path, raw, 0o644)
	b, err := LoadPath(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range b.Modules {
		if strings.HasSuffix(m.Path, "_test.rego") {
			t.Errorf("test module %s packed", m.Path)
		}
	}
	built, err := Prepare(context.Background(), b, path)
	if err != nil {
		t.Fatal(err)
	}
	emb, _ := LoadEmbedded()
	embedded, err := Prepare(context.Background(), emb, "embedded")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(built.ID, embedded.ID+"+") {
		t.Errorf("revision %q, want the manifest's %q and the content hash", built.ID, embedded.ID)
	}
	in := (&Input{Request: Request{ID: "x", Endpoint: "chat", Model: "fast"}}).Value()
	want, err := embedded.Evaluate(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := built.Evaluate(context.Background(), in)
	if err != nil || got.Compare(want) != 0 {
		t.Errorf("built bundle decides %v (%v), embedded %v", got, err, want)
	}
}

func TestBuildRevisionAndErrors(t *testing.T) {
	noManifest := t.TempDir()
	os.MkdirAll(filepath.Join(noManifest, "gavel"), 0o755)
	emb, _ := os.ReadFile("../../bundles/gavel/data.json")
	os.WriteFile(filepath.Join(noManifest, "gavel", "data.json"), emb, 0o644)
	dupManifest := t.TempDir()
	os.WriteFile(filepath.Join(dupManifest, ".manifest"), []byte(`{"revision":"x"}`), 0o644)
	os.WriteFile(filepath.Join(dupManifest, "extra.rego"), []byte("package gavel.extra\n\nx := 1\n"), 0o644)
	clash := t.TempDir()
	os.MkdirAll(filepath.Join(clash, "policies"), 0o755)
	os.WriteFile(filepath.Join(clash, "policies", "route.rego"), []byte("package gavel.other\n\nx := 1\n"), 0o644)
	// The default library with one rule added: the manifest still says default-1.
	edited := t.TempDir()
	os.WriteFile(filepath.Join(edited, "extra.rego"), []byte("package gavel.extra\n\nx := 1\n"), 0o644)
	broken := t.TempDir()
	os.WriteFile(filepath.Join(broken, "bad.rego"), []byte("package gavel.bad\n\nx := \n"), 0o644)

	revs := map[string]bool{}
	tests := []struct {
		name     string
		dirs     []string
		revision string
		wantRev  string
		wantErr  string
	}{
		{"flag wins", defaultDirs, "r-42", "r-42", ""},
		{"manifest and content hash", defaultDirs, "", "default-1+", ""},
		{"edited content, another revision", append(defaultDirs, edited), "", "default-1+", ""},
		{"content hash without manifest", []string{"../../policies", noManifest}, "", "sha256:", ""},
		{"two manifests", append(defaultDirs, dupManifest), "", "", "have a .manifest"},
		{"module path clash", []string{"../../policies", "../../bundles", filepath.Join(clash, "policies")}, "", "", "comes from both"},
		{"no modules", []string{"../../bundles"}, "", "", "no Rego modules"},
		{"does not compile", append(defaultDirs, broken), "", "", "bad.rego"},
		{"missing dir", []string{"nope"}, "", "", "nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Build(context.Background(), tc.dirs, tc.revision)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(b.Manifest.Revision, tc.wantRev) {
				t.Errorf("revision %q, want %q", b.Manifest.Revision, tc.wantRev)
			}
			if tc.revision == "" && revs[b.Manifest.Revision] {
				t.Errorf("revision %q given to two different builds", b.Manifest.Revision)
			}
			revs[b.Manifest.Revision] = true
		})
	}
	// The same content builds the same revision.
	again, err := Build(context.Background(), defaultDirs, "")
	if err != nil || !revs[again.Manifest.Revision] {
		t.Errorf("rebuild: revision %v (%v), want one seen before", again, err)
	}
}

// A signing key file that does not exist is reported as such, not as a PEM parse error
// of its name; a file without a PEM block is named.
func TestSignKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "key.txt")
	os.WriteFile(notPEM, []byte("not a key"), 0o600)
	b, err := Build(context.Background(), defaultDirs, "k-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ key, want string }{
		{filepath.Join(dir, "signing.pem"), "signing key: open " + filepath.Join(dir, "signing.pem") + ": no such file or directory"},
		{notPEM, "signing key " + notPEM + " holds no PEM block"},
	} {
		err := Sign(b, Signing{Key: tc.key})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Sign(%s) = %v, want %q", tc.key, err, tc.want)
		}
	}
}

// Re-signing a tarball built elsewhere (opa build writes the same format) verifies, and
// keeps its content.
func TestResign(t *testing.T) {
	priv, pub := testKeys(t, "RS256")
	unsigned := buildTarball(t, defaultDirs, "resign-1", nil)
	if err := verify(unsigned, "RS256", pub); err == nil {
		t.Fatal("an unsigned bundle verified")
	}
	for _, start := range [][]byte{unsigned, buildTarball(t, defaultDirs, "resign-1", &Signing{Secret: "old"})} {
		b, err := ReadTarball(bytes.NewReader(start))
		if err != nil {
			t.Fatal(err)
		}
		if err := Sign(b, Signing{Key: priv, KeyID: DefaultKeyID}); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := WriteBundle(&buf, b); err != nil {
			t.Fatal(err)
		}
		if err := verify(buf.Bytes(), "RS256", pub); err != nil {
			t.Errorf("re-signed bundle does not verify: %v", err)
		}
		if b.Manifest.Revision != "resign-1" {
			t.Errorf("revision %q lost", b.Manifest.Revision)
		}
	}
}

func TestSignRejectsMismatch(t *testing.T) {
	b, err := Build(context.Background(), defaultDirs, "")
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := testKeys(t, "RS256")
	for _, s := range []Signing{{}, {Key: priv, Secret: "x"}, {Secret: "x", Algorithm: "RS256"}, {Key: priv, Algorithm: "HS256"}, {Key: "not a key"}} {
		if err := Sign(b, s); err == nil {
			t.Errorf("Sign(%+v) succeeded", s)
		}
	}
}

// A signed tarball given as a local path loads: signatures guard bundles from a server.
func TestSignedTarballLoadsLocally(t *testing.T) {
	priv, _ := testKeys(t, "RS256")
	raw := buildTarball(t, defaultDirs, "", &Signing{Key: priv})
	path := filepath.Join(t.TempDir(), "signed.tar.gz")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := LoadPath(path)
	if err != nil {
		t.Fatalf("signed tarball: %v", err)
	}
	if _, err := Prepare(context.Background(), b, path); err != nil {
		t.Fatal(err)
	}
}
