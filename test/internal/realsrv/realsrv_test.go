package realsrv

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docsNginx returns the nginx blocks of docs/deploy.md's section named heading.
func docsNginx(t *testing.T, heading string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("docs/deploy.md has no %q", heading)
	}
	section, _, _ = strings.Cut(section, "\n#")
	m := regexp.MustCompile("(?s)```nginx\n(.*?)```").FindStringSubmatch(section)
	if m == nil {
		t.Fatalf("docs/deploy.md's %q has no nginx block", heading)
	}
	return m[1]
}

// The fleet test's load balancer passes requests the way docs/deploy.md tells users to,
// and the documented configurations are ones nginx accepts.
func TestLoadBalancerConfigIsTheDocumentedOne(t *testing.T) {
	lb := docsNginx(t, "### The load balancer")
	directive := regexp.MustCompile(`^\s*([^#]*;)`)
	for line := range strings.Lines(lbLocation) {
		want := strings.TrimSpace(line)
		found := false
		for doc := range strings.Lines(lb) {
			if m := directive.FindStringSubmatch(doc); m != nil && strings.TrimSpace(m[1]) == want {
				found = true
			}
		}
		if !found {
			t.Errorf("the test's load balancer says %q; docs/deploy.md's example does not", want)
		}
	}
	for _, want := range []string{"client_max_body_size 32m;", "keepalive 64;"} {
		if !strings.Contains(lb, want) {
			t.Errorf("docs/deploy.md's example lacks %q", want)
		}
	}

	bin := Need(t, "nginx", "/usr/sbin/nginx")
	for _, tc := range []struct{ heading, body string }{
		{"### The load balancer", lb},
		{"### The bundle server", docsNginx(t, "### The bundle server")},
	} {
		t.Run(tc.heading, func(t *testing.T) {
			prefix := t.TempDir()
			for _, d := range []string{"logs", "tmp"} {
				os.MkdirAll(filepath.Join(prefix, d), 0o755)
			}
			conf := filepath.Join(prefix, "nginx.conf")
			os.WriteFile(conf, []byte(nginxConf("", prefix, 64, tc.body)), 0o644)
			if out, err := exec.Command(bin, "-t", "-p", prefix, "-c", conf).CombinedOutput(); err != nil {
				t.Fatalf("nginx -t refuses docs/deploy.md's %s example: %v\n%s", tc.heading, err, out)
			}
		})
	}
}
