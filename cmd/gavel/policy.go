package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/policytest"
)

func policyCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("policy: want 'test', 'eval', 'diff', 'fmt' or 'check'")
	}
	switch args[0] {
	case "test":
		return policyTest(args[1:], stdout, stderr)
	case "eval":
		return policyEval(args[1:], stdout, stderr)
	case "diff":
		return policyDiff(args[1:], stdout, stderr)
	case "fmt":
		return policyFmt(args[1:], stdout, stderr)
	case "check":
		return policyCheck(args[1:], stdout, stderr)
	}
	return fmt.Errorf("policy: unknown subcommand %q", args[0])
}

func policyTest(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o policytest.Options
	fs.StringVar(&o.Run, "run", "", "run only tests matching this regular expression")
	fs.BoolVar(&o.Verbose, "v", false, "print every test")
	fs.BoolVar(&o.Coverage, "coverage", false, "report coverage of policy (non-test) files")
	fs.Float64Var(&o.Threshold, "threshold", 0, "with --coverage: fail below this percentage")
	fs.DurationVar(&o.Timeout, "timeout", policytest.DefaultTimeout, "bound on each test's evaluation")
	properties := fs.Int("properties", 0, "also evaluate the bundle's invariants (package gavel.invariants) on this many generated inputs")
	seed := fs.Uint64("seed", 1, "with --properties: the generator's seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Paths, o.Out = fs.Args(), stdout
	if len(o.Paths) == 0 {
		o.Paths = []string{"policies", "bundles"}
	}
	if _, err := policytest.Run(context.Background(), o); err != nil {
		return err
	}
	if err := checkDecides(o.Paths, stdout); err != nil {
		return err
	}
	if *properties <= 0 {
		return nil
	}
	b, err := policy.Build(context.Background(), o.Paths, "")
	if err != nil {
		return fmt.Errorf("policy test: %w", err)
	}
	sum, err := policytest.Properties(context.Background(), b, policytest.PropertyOptions{N: *properties, Seed: *seed, Out: stdout})
	if err != nil {
		return fmt.Errorf("policy test --properties: %w", err)
	}
	if !sum.Invariants {
		fmt.Fprintln(stderr, "policy test --properties: the bundle declares no invariants (package gavel.invariants); only decisions were checked")
	}
	if len(sum.Failures) > 0 {
		return fmt.Errorf("policy test --properties: %d problems", len(sum.Failures))
	}
	return nil
}

// checkDecides runs the check gavel makes before activating a bundle (every alias and
// catalog model, chat and embeddings, streamed or not, an unknown model) on the bundle the
// tested directories make: tests that pass are no use if the bundle leaves
// data.gavel.decision undefined for requests it will get. Paths that are not all
// directories (single files) are not a bundle and are not checked.
func checkDecides(paths []string, stdout io.Writer) error {
	for _, p := range paths {
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			return nil
		}
	}
	b, err := policy.Build(context.Background(), paths, "")
	if err != nil {
		return fmt.Errorf("policy test: %w", err)
	}
	rev, err := policy.Prepare(context.Background(), b, "test")
	if err != nil {
		return fmt.Errorf("policy test: %w", err)
	}
	fmt.Fprintf(stdout, "CHECK: the bundle decides all %d representative requests\n", len(rev.CheckInputs()))
	return nil
}

func policyEval(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	inPath := fs.String("input", "", "policy input JSON (as docs/policy-contract.md describes); - for stdin")
	var pol policyPaths
	fs.Var(&pol, "policy", "bundle .tar.gz, or directory; repeat for policies and data (--policy policies --policy bundles); default: the embedded bundle")
	replay := fs.String("replay", "", "decision log (JSON lines) to re-decide with --policy; - for stdin")
	failOnChange := fs.Bool("fail-on-change", false, "with --replay: exit 1 when any decision would change")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *replay != "" {
		return policyReplay(*replay, pol, *failOnChange, stdout, stderr)
	}
	if *inPath == "" {
		return errors.New("policy eval: --input or --replay is required")
	}
	var raw []byte
	var err error
	if *inPath == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(*inPath)
	}
	if err != nil {
		return err
	}
	input, err := ast.ValueFromReader(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("input %s: %w", *inPath, err)
	}
	b, source, err := loadPolicy(pol, stderr)
	if err != nil {
		return err
	}
	ctx := context.Background()
	rev, err := policy.Prepare(ctx, b, source)
	if err != nil {
		return err
	}
	v, err := rev.Evaluate(ctx, input)
	if err != nil {
		return err
	}
	out := map[string]any{"bundle_revision": rev.ID, "decision": json.RawMessage(v.String())}
	d, perr := policy.ParseDecision(v)
	if perr != nil {
		out["valid"], out["error"] = false, perr.Error()
	} else {
		out["valid"], out["reasons"] = true, d.Reasons
		if d.Allow {
			route := make([]string, len(d.Targets))
			for i, t := range d.Targets {
				route[i] = t.String()
			}
			out["route"] = route
		}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	if perr != nil {
		return fmt.Errorf("gavel would deny this request: %w", perr)
	}
	return nil
}

// policyPaths collects repeated --policy flags.
type policyPaths []string

func (p *policyPaths) String() string { return strings.Join(*p, ",") }

func (p *policyPaths) Set(v string) error {
	*p = append(*p, v)
	return nil
}

// loadPolicy reads the candidate the --policy flags name: nothing is the embedded bundle,
// one tarball or directory is read as is, several directories are built into one bundle
// the way `gavel bundle build` packs them. A lone directory of Rego without data (the
// default library's policies/, whose data is in bundles/) would evaluate against an empty
// catalog and deny everything for that reason alone, so a bundles/ directory beside it is
// loaded with it, and without one the command says the candidate has no data.
func loadPolicy(paths []string, stderr io.Writer) (*bundle.Bundle, string, error) {
	switch len(paths) {
	case 0:
		return policy.Load("")
	case 1:
		b, source, err := policy.Load(paths[0])
		if err != nil || len(b.Data) > 0 {
			return b, source, err
		}
		if fi, serr := os.Stat(paths[0]); serr != nil || !fi.IsDir() {
			fmt.Fprintf(stderr, "policy: %s carries no data (data.gavel is empty): decisions that read the catalog, aliases or keys will not match a real deployment\n", paths[0])
			return b, source, nil
		}
		beside := filepath.Join(filepath.Dir(filepath.Clean(paths[0])), "bundles")
		if fi, serr := os.Stat(beside); serr == nil && fi.IsDir() && filepath.Clean(paths[0]) != filepath.Clean(beside) {
			fmt.Fprintf(stderr, "policy: %s carries no data; loading the data in %s beside it (--policy %s --policy %s)\n", paths[0], beside, paths[0], beside)
			paths = []string{paths[0], beside}
			break
		}
		fmt.Fprintf(stderr, "policy: %s carries no data (data.gavel is empty) and there is no bundles/ beside it: name the data directory too (--policy %s --policy DATA_DIR)\n", paths[0], paths[0])
		return b, source, nil
	}
	b, err := policy.Build(context.Background(), paths, "")
	if err != nil {
		return nil, "", err
	}
	return b, strings.Join(paths, "+"), nil
}
