package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/gavel-gw/gavel/engine/policy"
)

func bundleCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("bundle: want 'build' or 'sign'")
	}
	switch args[0] {
	case "build":
		return bundleBuild(args[1:], stdout, stderr)
	case "sign":
		return bundleSign(args[1:], stdout, stderr)
	}
	return fmt.Errorf("bundle: unknown subcommand %q", args[0])
}

func signingFlags(fs *flag.FlagSet) *policy.Signing {
	var s policy.Signing
	fs.StringVar(&s.Key, "signing-key", "", "private key to sign with: PEM text or a PEM file (RS256, ES256, …)")
	fs.StringVar(&s.Secret, "signing-secret", "", "shared secret to sign with (HS256)")
	fs.StringVar(&s.Algorithm, "signing-alg", "", "RS256, ES256, HS256, … (default: from the key)")
	fs.StringVar(&s.KeyID, "key-id", policy.DefaultKeyID, "key id recorded in the signature")
	return &s
}

func bundleBuild(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bundle build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	revision := fs.String("revision", "", "bundle revision (default: the manifest's, else a content hash)")
	out := fs.String("o", "bundle.tar.gz", "output tarball")
	s := signingFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := policy.Build(context.Background(), fs.Args(), *revision)
	if err != nil {
		return err
	}
	if s.Key != "" || s.Secret != "" {
		if err := policy.Sign(b, *s); err != nil {
			return err
		}
	}
	if err := writeTarball(*out, b); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (revision %s, %d modules, signed: %t)\n", *out, b.Manifest.Revision, len(b.Modules), len(b.Signatures.Signatures) > 0)
	return nil
}

func bundleSign(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bundle sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output tarball (default: rewrite the input)")
	s := signingFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("bundle sign: want exactly one bundle tarball")
	}
	in := fs.Arg(0)
	raw, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	b, err := policy.ReadTarball(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := policy.Sign(b, *s); err != nil {
		return err
	}
	if *out == "" {
		*out = in
	}
	if err := writeTarball(*out, b); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "signed %s (revision %s)\n", *out, b.Manifest.Revision)
	return nil
}

// writeTarball writes through a temporary file and renames it, so that a bundle server
// serving path never sees half a bundle.
func writeTarball(path string, b *bundle.Bundle) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".bundle-*.tar.gz")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := policy.WriteBundle(tmp, b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
