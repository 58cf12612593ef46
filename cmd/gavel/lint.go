package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
	"github.com/open-policy-agent/opa/v1/loader"
)

// policyFmt is `gavel policy fmt`: OPA's formatter (the engine of `opa fmt`, Rego v1) on
// every .rego file under the paths, so a policy repository needs only gavel in CI.
func policyFmt(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("policy fmt", flag.ContinueOnError)
	fl.SetOutput(stderr)
	list := fl.Bool("l", false, "list the files whose formatting differs")
	write := fl.Bool("w", false, "rewrite the files in place")
	fail := fl.Bool("fail", false, "exit 1 when any file is not formatted (with -l: a CI check)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	paths := fl.Args()
	if len(paths) == 0 {
		paths = []string{"policies"}
	}
	files, err := regoFiles(paths)
	if err != nil {
		return err
	}
	var differ []string
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		out, err := format.SourceWithOpts(f, src, format.Opts{RegoVersion: ast.RegoV1})
		if err != nil {
			return fmt.Errorf("policy fmt: %w", err)
		}
		if bytes.Equal(src, out) {
			continue
		}
		differ = append(differ, f)
		switch {
		case *write:
			if err := os.WriteFile(f, out, 0o644); err != nil {
				return err
			}
		case *list:
			fmt.Fprintln(stdout, f)
		default:
			fmt.Fprintf(stdout, "# %s\n%s", f, out)
		}
	}
	if *write && *list {
		for _, f := range differ {
			fmt.Fprintln(stdout, f)
		}
	}
	if *fail && len(differ) > 0 {
		return fmt.Errorf("policy fmt: %d file(s) not formatted: %s", len(differ), strings.Join(differ, ", "))
	}
	return nil
}

// policyCheck is `gavel policy check`: the policy compiles as `opa check --strict` would
// have it (OPA's compiler in strict mode: unused imports and variables, duplicate imports,
// deprecated built-ins are errors), then, for directories, the check gavel makes before
// activating a bundle (each alias and catalog model, chat and embeddings, streamed or not,
// an unknown model: data.gavel.decision defined and accepted by gavel's parser).
func policyCheck(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("policy check", flag.ContinueOnError)
	fl.SetOutput(stderr)
	strict := fl.Bool("strict", true, "OPA's strict mode")
	if err := fl.Parse(args); err != nil {
		return err
	}
	paths := fl.Args()
	if len(paths) == 0 {
		paths = []string{"policies", "bundles"}
	}
	res, err := loader.NewFileLoader().WithRegoVersion(ast.RegoV1).WithProcessAnnotation(true).
		Filtered(paths, func(_ string, info fs.FileInfo, _ int) bool {
			return !info.IsDir() && !strings.HasSuffix(info.Name(), ".rego")
		})
	if err != nil {
		return fmt.Errorf("policy check: %w", err)
	}
	modules := res.ParsedModules()
	if len(modules) == 0 {
		return fmt.Errorf("policy check: no Rego modules in %s", strings.Join(paths, " "))
	}
	c := ast.NewCompiler().WithStrict(*strict).WithEnablePrintStatements(true).WithUseTypeCheckAnnotations(true)
	if c.Compile(modules); c.Failed() {
		return fmt.Errorf("policy check: %w", c.Errors)
	}
	fmt.Fprintf(stdout, "CHECK: %d modules compile (strict: %t)\n", len(modules), *strict)
	return checkDecides(paths, stdout)
}

// regoFiles lists the .rego files of paths (files or directories), sorted.
func regoFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		err := filepath.WalkDir(p, func(f string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(f, ".rego") {
				out = append(out, f)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("policy fmt: %w", err)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("policy fmt: no .rego files")
	}
	sort.Strings(out)
	return out, nil
}
