package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	input := filepath.Join(dir, "in.json")
	os.WriteFile(input, []byte(`{"request":{"model":"fast"},"providers":{"mock":{"healthy":true,"circuit":"closed","models":{}}}}`), 0o644)
	unknown := filepath.Join(dir, "unknown.json")
	os.WriteFile(unknown, []byte(`{"request":{"model":"nope"},"providers":{}}`), 0o644)
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"no args", nil, 2, ""},
		{"unknown", []string{"frobnicate"}, 2, ""},
		{"version", []string{"version"}, 0, "gavel"},
		{"keys hash", []string{"keys", "hash", "abc"}, 0, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"keys new", []string{"keys", "new", "--team", "search"}, 0, "team: search"},
		{"policy eval", []string{"policy", "eval", "--input", input}, 0, `"mock/mock-small"`},
		{"policy eval deny", []string{"policy", "eval", "--input", unknown}, 0, `"model_not_found"`},
		{"policy eval needs input", []string{"policy", "eval"}, 1, ""},
		{"policy test", []string{"policy", "test", "--coverage", "--threshold", "90", "../../policies", "../../bundles"}, 0, "PASS"},
		{"serve bad flag", []string{"serve", "--nope"}, 1, ""},
		{"serve bad config", []string{"serve", "--config", filepath.Join(dir, "missing.yaml")}, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tc.out) {
				t.Errorf("stdout lacks %q: %s", tc.out, out.String())
			}
		})
	}
}
