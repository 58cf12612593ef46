package scrub

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://bundles.example.com/b/gavel.tar.gz", "https://bundles.example.com/b/gavel.tar.gz"},
		{"https://user:hunter22@bundles.example.com/gavel.tar.gz", "https://REDACTED@bundles.example.com/gavel.tar.gz"},
		{"https://tok3n@host:8443/gavel.tar.gz", "https://REDACTED@host:8443/gavel.tar.gz"},
		{"https://s3.example.com/b.tar.gz?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abcdef",
			"https://s3.example.com/b.tar.gz?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED"},
		{"http://h/p?token&x=", "http://h/p?REDACTED&x=REDACTED"},
		{"http://h/p?#frag-secret", "http://h/p"},
		{"http://h/p\x7f?x=1", URLMask},
	}
	for _, tt := range tests {
		if got := URL(tt.in); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestURLSecrets(t *testing.T) {
	raw := "https://alice:pa%20ss@h/p?sig=a%2Fb&flag"
	got := strings.Join(URLSecrets(raw), " | ")
	want := "alice | pa ss | a%2Fb | a/b | flag"
	if got != want {
		t.Errorf("URLSecrets = %q, want %q", got, want)
	}
}

func TestSet(t *testing.T) {
	s := New("sk-live-1", "x<&>y-secret", "abc", "", "sk-live-1-longer")
	tests := []struct{ in, want string }{
		{"key sk-live-1 given", "key [redacted] given"},
		{"sk-live-1-longer", "[redacted]"}, // the longer secret goes whole
		{"html x&lt;&amp;&gt;y-secret", "html [redacted]"},
		{`json "x\u003c\u0026\u003ey-secret"`, `json "[redacted]"`},
		{"query x%3C%26%3Ey-secret", "query [redacted]"},
		{"abc is too short to be a secret", "abc is too short to be a secret"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := s.Scrub(tt.in); got != tt.want {
			t.Errorf("Scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := New("abc", "").Scrub("abc"); got != "abc" {
		t.Errorf("values under MinLen must be dropped: %q", got)
	}
	if got := (Set{}).Scrub("anything"); got != "anything" {
		t.Errorf("zero Set: %q", got)
	}
}

func TestSetError(t *testing.T) {
	s := New("hunter22")
	base := errors.New("dial https://u:hunter22@h: refused")
	err := s.Error(base)
	if strings.Contains(err.Error(), "hunter22") || !errors.Is(err, base) {
		t.Errorf("Error = %q (is base: %v)", err, errors.Is(err, base))
	}
	if s.Error(io.EOF) != io.EOF || s.Error(nil) != nil {
		t.Error("an error without a secret must come back as is")
	}
}
