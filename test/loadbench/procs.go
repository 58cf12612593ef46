package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	fakeUpstreamPkg = "github.com/gavel-gw/gavel/test/fakeupstream/cmd/fakeupstream"
	floorProxyPkg   = "github.com/gavel-gw/gavel/test/floorproxy/cmd/floorproxy"
)

// child is a process the benchmark started and must stop.
type child struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process is reaped
	err    error         // its exit status, valid after exited
}

// command builds argv, wrapped in `taskset -c cpus` when cpus is set. taskset execs the
// program, so the child's pid is the program's pid, as /proc sampling needs.
func command(argv []string, cpus string) *exec.Cmd {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	setProcAttr(cmd)
	return cmd
}

func startChild(name string, cmd *exec.Cmd) (*child, error) {
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop asks the child's process group to exit (SIGTERM) and kills it if the child has not
// exited within 3 s.
func (c *child) stop() {
	_ = signalGroup(c.cmd, syscall.SIGTERM) // even if the child is gone: its group may not be
	select {
	case <-c.exited:
	case <-time.After(3 * time.Second):
		_ = signalGroup(c.cmd, syscall.SIGKILL)
		<-c.exited
	}
}

// buildCmd compiles the command pkg of this module into dir. It is built, not `go run`,
// so the process we measure and stop is the server itself rather than the go tool.
func buildCmd(ctx context.Context, dir, pkg string) (string, error) {
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Dir = moduleDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s(run inside the gavel module, or pass a prebuilt binary)", pkg, err, out)
	}
	return bin, nil
}

// moduleDir is the gavel module root this program was compiled from, so a loadbench binary
// run from elsewhere can still build the fake upstream; "" (the working directory) when
// the source is not on this machine.
func moduleDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	for dir := filepath.Dir(file); dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
	}
	return ""
}

// startUpstream runs the fake upstream on a free loopback port and returns its base URL
// (with /v1), which it prints as its first line. answerTokens > 0 makes every answer that
// many words, streamed one word per chunk as OpenAI streams one token per chunk; 0 keeps the
// fake upstream's short default reply.
func startUpstream(bin, cpus string, answerTokens int) (*child, string, error) {
	args := []string{bin, "-listen", "127.0.0.1:0"}
	if answerTokens > 0 {
		args = append(args, "-reply", answerText(answerTokens), "-chunks", strconv.Itoa(answerTokens))
	}
	return startAnnounced("fake upstream", args, cpus)
}

// answerText is n words of plain English prose: an answer of about n tokens.
func answerText(n int) string {
	words := strings.Fields("Distributed systems are best learned by building one small service, " +
		"breaking it on purpose, and reading the logs until the failure makes sense to you.")
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[i%len(words)])
	}
	return b.String()
}

// startFloor runs the floor proxy on a free loopback port in front of the upstream and
// returns its base URL, which it prints as its first line.
func startFloor(bin, upstreamURL, cpus string) (*child, string, error) {
	return startAnnounced("floor proxy", []string{bin, "-listen", "127.0.0.1:0", "-upstream", upstreamURL, "-api-key", "sk-bench"}, cpus)
}

// startAnnounced runs a server that prints its URL as its first line on stdout and waits
// for that line.
func startAnnounced(name string, argv []string, cpus string) (*child, string, error) {
	cmd := command(argv, cpus)
	first := &firstLine{ch: make(chan string, 1)}
	cmd.Stdout = first
	cmd.Stderr = os.Stderr
	c, err := startChild(name, cmd)
	if err != nil {
		return nil, "", err
	}
	select {
	case u := <-first.ch:
		return c, u, nil
	case <-c.exited:
		return nil, "", fmt.Errorf("%s exited: %v", name, c.err)
	case <-time.After(10 * time.Second):
		c.stop()
		return nil, "", fmt.Errorf("%s printed no URL within 10s", name)
	}
}

// startGavel runs `gavel serve` against the upstream and waits until it is ready. Its
// output goes to logPath; on failure the tail of it is part of the error.
func startGavel(ctx context.Context, bin, upstreamURL, cpus, logPath string, env []string, args ...string) (*child, string, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, "", err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := command(append([]string{bin, "serve", "--listen", addr}, args...), cpus)
	// gavel registers its "openai" provider from the same variables the OpenAI SDKs read.
	cmd.Env = append(os.Environ(), "OPENAI_API_KEY=sk-bench", "OPENAI_BASE_URL="+upstreamURL)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	c, err := startChild("gavel", cmd)
	if err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	if err := waitReady(ctx, base+"/readyz", c, 20*time.Second); err != nil {
		c.stop()
		return nil, "", fmt.Errorf("%w\n--- gavel output (tail) ---\n%s", err, tail(logPath, 8<<10))
	}
	return c, base, nil
}

// waitReady polls url until it answers 200, the child exits, or the timeout passes.
func waitReady(ctx context.Context, url string, c *child, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gavel not ready after %v (GET %s: %v)", timeout, url, describe(resp, err))
		}
		select {
		case <-c.exited:
			return fmt.Errorf("gavel exited before becoming ready: %v", c.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func describe(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

// freeLoopbackAddr finds a free port by binding port 0 and releasing it. Another process
// could take it in between; on a benchmark machine that is rare enough.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tail returns up to n bytes from the end of a file.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// firstLine is an io.Writer that delivers the first line written to it and discards the rest.
type firstLine struct {
	mu   sync.Mutex
	buf  []byte
	sent bool
	ch   chan string
}

func (f *firstLine) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.sent {
		f.buf = append(f.buf, p...)
		if i := bytes.IndexByte(f.buf, '\n'); i >= 0 {
			f.ch <- strings.TrimSpace(string(f.buf[:i]))
			f.sent, f.buf = true, nil
		}
	}
	return len(p), nil
}

// clockTick is the length of one /proc CPU-time tick, from `getconf CLK_TCK` (100 Hz when
// that fails, the Linux default).
func clockTick() time.Duration {
	hz := 100
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && v > 0 {
			hz = v
		}
	}
	return time.Second / time.Duration(hz)
}

// cpuTime returns the user plus system CPU time a process has used, from /proc/PID/stat.
func cpuTime(pid int, tick time.Duration) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces and parentheses: split after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * tick, nil
}

// peakRSS returns a process's peak resident set size in bytes (VmHWM).
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}
