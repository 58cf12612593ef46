package drills

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// need finds a server binary. Locally a missing one skips; in CI (CI=true) it fails, since
// .ci/run installs redis-server and nginx.
func need(t *testing.T, names ...string) string {
	t.Helper()
	for _, n := range names {
		if bin, err := exec.LookPath(n); err == nil {
			return bin
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed; .ci/run must install it", names[0])
	}
	t.Skipf("%s not installed (CI installs it and fails instead of skipping)", names[0])
	return ""
}

// redisServer is a real redis-server on a fixed loopback port, which it can be stopped
// and started again on (the same address, as a restarted Redis would have).
type redisServer struct {
	t    *testing.T
	bin  string
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	r := &redisServer{t: t, bin: need(t, "redis-server", "/usr/bin/redis-server")}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	r.port, _ = strconv.Atoi(port)
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.t.TempDir())
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	eventually(r.t, 5*time.Second, "redis-server to listen", func() bool {
		c, err := net.Dial("tcp", r.Addr())
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// stop kills the server (an outage, not a shutdown) and waits for it.
func (r *redisServer) stop() {
	if r.cmd != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// nginx is a real nginx serving root on a loopback port, everything it writes inside the
// test's temp dir. A file named fail500 in root makes it answer the bundle with a 500.
type nginx struct {
	URL  string
	Addr string
	root string
}

func startNginx(t *testing.T, root string) *nginx {
	t.Helper()
	bin := need(t, "nginx", "/usr/sbin/nginx")
	prefix := t.TempDir()
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	addr := freeAddr(t)
	// As root, nginx's workers would drop to "nobody", who cannot read the test's private
	// temp dirs: keep them as the current user.
	userLine := ""
	if os.Geteuid() == 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		userLine = "user " + u.Username + ";"
	}
	conf := fmt.Sprintf(`%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/logs/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
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
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", confPath, "-g", "daemon off;")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	n := &nginx{URL: "http://" + addr, Addr: addr, root: root}
	eventually(t, 5*time.Second, "nginx to serve", func() bool {
		select {
		case <-exited:
			t.Fatalf("nginx exited: %s", out.String())
		default:
		}
		resp, err := http.Get(n.URL + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return n
}

// publish replaces the served file atomically, with an mtime of its own so nginx's ETag
// (mtime and size) changes with every version.
func (n *nginx) publish(t *testing.T, name string, body []byte, version int) {
	t.Helper()
	path := filepath.Join(n.root, name)
	tmp := path + ".tmp"
	mt := time.Unix(1_700_000_000+int64(version)*60, 0)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mt, mt); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// fail500 switches nginx's 500 answer on or off.
func (n *nginx) fail500(t *testing.T, on bool) {
	t.Helper()
	path := filepath.Join(n.root, "fail500")
	var err error
	if on {
		err = os.WriteFile(path, nil, 0o644)
	} else {
		err = os.Remove(path)
	}
	if err != nil {
		t.Fatal(err)
	}
}
