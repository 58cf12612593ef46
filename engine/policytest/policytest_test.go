package policytest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRunRepositoryPolicies(t *testing.T) {
	var out bytes.Buffer
	sum, err := Run(context.Background(), Options{Paths: []string{"../../policies", "../../bundles"}, Coverage: true, Out: &out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if sum.Passed == 0 || sum.Coverage < 90 {
		t.Errorf("passed=%d coverage=%.1f\n%s", sum.Passed, sum.Coverage, out.String())
	}
	for f := range sum.Files {
		if strings.HasSuffix(f, "_test.rego") {
			t.Errorf("test file %s counted in coverage", f)
		}
	}
}

func TestRunReportsFailuresAndThreshold(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"p.rego": "package p\n\nimport rego.v1\n\nallow if input.x == 1\n\ndeny if input.x == 2\n",
		"p_test.rego": "package p_test\n\nimport rego.v1\n\nimport data.p\n\n" +
			"test_allow if p.allow with input as {\"x\": 1}\n\ntest_wrong if p.allow with input as {\"x\": 3}\n",
	})
	tests := []struct {
		name      string
		opts      Options
		wantErr   string
		passed    int
		failed    int
		inOutput  string
		threshold bool
	}{
		{"failure is reported", Options{Verbose: true}, "1 failed", 1, 1, "test_wrong", false},
		{"--run selects", Options{Run: "test_allow"}, "", 1, 0, "", false},
		{"threshold fails", Options{Run: "test_allow", Coverage: true, Threshold: 95}, "below the threshold", 1, 0, "policy coverage", true},
		{"no tests", Options{Run: "nothing_matches"}, "no tests found", 0, 0, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			tc.opts.Paths, tc.opts.Out = []string{dir}, &out
			sum, err := Run(context.Background(), tc.opts)
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q\n%s", err, tc.wantErr, out.String())
			}
			if sum.Passed != tc.passed || sum.Failed != tc.failed {
				t.Errorf("summary = %+v", sum)
			}
			if !strings.Contains(out.String(), tc.inOutput) {
				t.Errorf("output lacks %q:\n%s", tc.inOutput, out.String())
			}
			if tc.threshold && (sum.Coverage <= 0 || sum.Coverage >= 95) {
				t.Errorf("coverage = %.1f", sum.Coverage)
			}
		})
	}
}
