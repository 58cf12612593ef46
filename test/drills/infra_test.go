package drills

import (
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/test/internal/realsrv"
)

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
	r := &redisServer{t: t, bin: realsrv.Need(t, "redis-server", "/usr/bin/redis-server")}
	addr := realsrv.FreeAddr(t)
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
