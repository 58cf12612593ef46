// Package realsrv starts the real servers the end-to-end tests and drills run against
// (nginx as a bundle server; the binary lookup they share with redis-server), each on a
// free loopback port with everything it writes inside the test's temp dir.
package realsrv

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Need finds a server binary among names. Locally a missing one skips the test; in CI
// (CI=true) it fails, since .ci/run installs redis-server and nginx.
func Need(tb testing.TB, names ...string) string {
	tb.Helper()
	for _, n := range names {
		if bin, err := exec.LookPath(n); err == nil {
			return bin
		}
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s is not installed; .ci/run must install it", names[0])
	}
	tb.Skipf("%s not installed (CI installs it and fails instead of skipping)", names[0])
	return ""
}

// FreeAddr is a loopback address nothing listens on right now.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Nginx is a real nginx serving a directory. A file named fail500 in it makes nginx
// answer every request with a 500 (Fail500).
type Nginx struct {
	URL  string
	Addr string
	root string
	stop func()
}

// StartNginx starts nginx serving root and waits until it answers; the test's cleanup
// stops it.
func StartNginx(tb testing.TB, root string) *Nginx {
	tb.Helper()
	bin := Need(tb, "nginx", "/usr/sbin/nginx")
	prefix := tb.TempDir()
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	addr := FreeAddr(tb)
	// As root, nginx's workers would drop to "nobody", who cannot read the test's private
	// temp dirs: keep them as the current user. Otherwise the directive is ignored with a
	// warning, so leave it out.
	userLine := ""
	if os.Geteuid() == 0 {
		u, err := user.Current()
		if err != nil {
			tb.Fatal(err)
		}
		userLine = "user " + u.Username + ";"
	}
	conf := fmt.Sprintf(`%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/logs/error.log warn;
events { worker_connections 64; }
http {
  access_log %[2]s/logs/access.log;
  client_body_temp_path %[2]s/tmp/body;
  proxy_temp_path %[2]s/tmp/proxy;
  fastcgi_temp_path %[2]s/tmp/fastcgi;
  uwsgi_temp_path %[2]s/tmp/uwsgi;
  scgi_temp_path %[2]s/tmp/scgi;
  types { application/gzip gz; }
  default_type application/octet-stream;
  server {
    listen %[3]s;
    root %[4]s;
    etag on;
    location / {
      if (-f $document_root/fail500) { return 500; }
    }
  }
}
`, userLine, prefix, addr, root)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", confPath, "-g", "daemon off;")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM) // fast shutdown of master and workers
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		})
	}
	tb.Cleanup(stop)
	n := &Nginx{URL: "http://" + addr, Addr: addr, root: root, stop: stop}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if resp, err := http.Get(n.URL + "/"); err == nil {
			resp.Body.Close()
			return n
		}
		select {
		case <-exited:
			tb.Fatalf("nginx exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("nginx did not start: %s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops nginx now (the bundle server going away).
func (n *Nginx) Stop() { n.stop() }

// Publish replaces the served file atomically. nginx's ETag is mtime and size, so each
// version gets an mtime of its own: two uploads within one second must not share an ETag.
func (n *Nginx) Publish(tb testing.TB, name string, body []byte, version int) {
	tb.Helper()
	path := filepath.Join(n.root, name)
	tmp := path + ".tmp"
	mt := time.Unix(1_700_000_000+int64(version)*60, 0)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(tmp, body, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chtimes(tmp, mt, mt); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
}

// Fail500 switches nginx's 500 answer on or off.
func (n *Nginx) Fail500(tb testing.TB, on bool) {
	tb.Helper()
	path := filepath.Join(n.root, "fail500")
	var err error
	if on {
		err = os.WriteFile(path, nil, 0o644)
	} else {
		err = os.Remove(path)
	}
	if err != nil {
		tb.Fatal(err)
	}
}
