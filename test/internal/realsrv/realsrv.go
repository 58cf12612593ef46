// Package realsrv starts the real servers the end-to-end tests and drills run against
// (nginx as a bundle server and as a load balancer in front of gavel replicas; the binary
// lookup they share with redis-server), each on a free loopback port with everything it
// writes inside the test's temp dir.
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
	"strings"
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
	URL    string
	Addr   string
	root   string
	prefix string
	stop   func()
}

// StartNginx starts nginx serving root and waits until it answers; the test's cleanup
// stops it.
func StartNginx(tb testing.TB, root string) *Nginx {
	tb.Helper()
	n := startNginx(tb, 64, func(addr, prefix string) string {
		return fmt.Sprintf(`
  log_format timed '$msec $status "$request"';
  access_log %[1]s/logs/access.log timed;
  types { application/gzip gz; }
  default_type application/octet-stream;
  server {
    listen %[2]s;
    root %[3]s;
    etag on;
    location / {
      if (-f $document_root/fail500) { return 500; }
    }
  }`, prefix, addr, root)
	})
	n.root = root
	return n
}

// startNginx runs nginx with the http{} body that server returns for the listen address
// and the prefix directory (logs/ and tmp/ exist in it), and waits until it answers.
func startNginx(tb testing.TB, workerConnections int, server func(addr, prefix string) string) *Nginx {
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
	conf := nginxConf(userLine, prefix, workerConnections, server(addr, prefix))
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
	n := &Nginx{URL: "http://" + addr, Addr: addr, prefix: prefix, stop: stop}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if resp, err := http.Get(n.URL + "/nginx-started"); err == nil {
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

// lbLocation is how the load balancer passes requests to the replicas: the same
// directives as docs/deploy.md's nginx example (TestLoadBalancerConfigIsTheDocumentedOne).
const lbLocation = `      proxy_pass http://gavel;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout;
      proxy_next_upstream_tries 3;
      proxy_connect_timeout 2s;
      proxy_read_timeout 600s;
      proxy_send_timeout 600s;
      proxy_buffering off;`

// UpstreamHeader is the response header the load balancer adds: the replicas nginx tried
// for the request, in order (nginx's $upstream_addr: "a:1, b:2" when the first attempt
// failed with a connection error and the request was retried on the next).
const UpstreamHeader = "X-Upstream-Addr"

// StartLoadBalancer starts nginx as a round-robin load balancer in front of upstreams
// (host:port each), with the retry policy docs/deploy.md recommends for a gavel fleet:
// a request is passed to the next replica only on a connection error or a timeout
// before the request was sent (proxy_next_upstream error timeout, without
// non_idempotent: a POST that reached a replica is never replayed, since it may have been
// answered and charged). Streams are relayed unbuffered.
//
// Unlike the production example, max_fails=0 keeps nginx from setting a failed replica
// aside for fail_timeout: every request routed to a dead replica meets its refused
// connection and must be retried, so a test sees the retry path taken, not avoided.
func StartLoadBalancer(tb testing.TB, upstreams []string) *Nginx {
	tb.Helper()
	var servers strings.Builder
	for _, u := range upstreams {
		fmt.Fprintf(&servers, "    server %s max_fails=0;\n", u)
	}
	return startNginx(tb, 4096, func(addr, prefix string) string {
		return fmt.Sprintf(`
  log_format fleet '$msec $status "$upstream_addr" "$upstream_status" $request_time';
  access_log %[1]s/logs/access.log fleet;
  upstream gavel {
%[2]s    keepalive 64;
  }
  server {
    listen %[3]s;
    client_max_body_size 32m;
    location / {
%[4]s
      add_header %[5]s $upstream_addr always;
    }
  }`, prefix, servers.String(), addr, lbLocation, UpstreamHeader)
	})
}

// AccessLog is nginx's access log so far. The bundle server's lines read
// `<unix time, ms resolution> <status> "<request line>"`: when each download was served.
func (n *Nginx) AccessLog() string {
	b, _ := os.ReadFile(filepath.Join(n.prefix, "logs", "access.log"))
	return string(b)
}

// ErrorLog is nginx's error log so far, for failure messages.
func (n *Nginx) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.prefix, "logs", "error.log"))
	return string(b)
}

// nginxConf is a whole nginx.conf whose http{} block holds body, with everything nginx
// writes kept under prefix.
func nginxConf(userLine, prefix string, workerConnections int, body string) string {
	return fmt.Sprintf(`%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/logs/error.log warn;
events { worker_connections %[3]d; }
http {
  client_body_temp_path %[2]s/tmp/body;
  proxy_temp_path %[2]s/tmp/proxy;
  fastcgi_temp_path %[2]s/tmp/fastcgi;
  uwsgi_temp_path %[2]s/tmp/uwsgi;
  scgi_temp_path %[2]s/tmp/scgi;
%[4]s
}
`, userLine, prefix, workerConnections, body)
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
