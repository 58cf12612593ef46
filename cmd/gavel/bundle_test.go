package main

import (
	"bytes"
	"strings"
	"testing"
)

// --bundle-url goes through the config's validation: errors name the field, nothing starts.
func TestServeBundleURLFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"with --policy", []string{"serve", "--policy", "./p", "--bundle-url", "http://127.0.0.1:1/b.tar.gz"}, "mutually exclusive"},
		{"not http", []string{"serve", "--bundle-url", "ftp://h/b.tar.gz"}, "bundle.url must be an http or https URL"},
		{"no path", []string{"serve", "--bundle-url", "http://h"}, "bundle.url names no bundle path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tc.args, &out, &errb); code != 1 || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, errb.String(), tc.want)
			}
		})
	}
}
