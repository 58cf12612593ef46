package executor_test

import (
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// opaPrefix is the module the executor must never link: decisions reach it as the plain
// types of engine/decision, and OPA stays behind engine/policy.
const opaPrefix = "github.com/open-policy-agent/opa"

// TestExecutorDoesNotLinkOPA keeps OPA out of the executor's (and engine/decision's)
// dependency graph, as `go list -deps` sees it. A failure names every offending package
// and the import chain that pulls the first one in.
func TestExecutorDoesNotLinkOPA(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no go binary on PATH in CI:", err)
		}
		t.Skip("no go binary on PATH (CI fails instead of skipping):", err)
	}
	for _, tc := range []struct{ name, dir string }{
		{"engine/executor", "."},
		{"engine/decision", "../decision"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, imports := depGraph(t, tc.dir)
			var bad []string
			for pkg := range imports {
				if pkg == opaPrefix || strings.HasPrefix(pkg, opaPrefix+"/") {
					bad = append(bad, pkg)
				}
			}
			if len(bad) == 0 {
				return
			}
			slices.Sort(bad)
			t.Errorf("%s links OPA: %d packages of %s in `go list -deps`:\n\t%s\nvia %s",
				root, len(bad), opaPrefix, strings.Join(bad, "\n\t"), strings.Join(chain(imports, root, bad), "\n\t-> "))
		})
	}
}

// depGraph runs `go list -deps` in dir and returns the listed package and, for it and
// every dependency, its direct imports.
func depGraph(t *testing.T, dir string) (root string, imports map[string][]string) {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.DepOnly}} {{.ImportPath}}{{range .Imports}} {{.}}{{end}}", ".")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps in %s: %v\n%s", dir, err, stderr.Bytes())
	}
	imports = map[string][]string{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		imports[f[1]] = f[2:]
		if f[0] == "false" {
			root = f[1]
		}
	}
	if root == "" {
		t.Fatalf("go list -deps in %s did not list the package itself:\n%s", dir, out)
	}
	return root, imports
}

// chain is a shortest import path from root to any of targets.
func chain(imports map[string][]string, root string, targets []string) []string {
	want := map[string]bool{}
	for _, p := range targets {
		want[p] = true
	}
	prev := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if want[p] {
			var path []string
			for ; p != ""; p = prev[p] {
				path = append([]string{p}, path...)
			}
			return path
		}
		for _, q := range imports[p] {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return []string{root, "(no import chain found)"}
}
