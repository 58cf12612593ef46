package test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// echoingRedis speaks just enough RESP to refuse every command with an error that quotes
// the command's arguments, as a misconfigured proxy in front of Redis might. The AUTH (or
// HELLO … AUTH) a client sends on connecting quotes the configured password; sawPassword
// says one arrived.
func echoingRedis(t *testing.T, password string) (addr string, sawPassword *atomic.Bool) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	sawPassword = &atomic.Bool{}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					args, err := readCommand(r)
					if err != nil {
						return
					}
					line := strings.Join(args, " ")
					if strings.Contains(line, password) {
						sawPassword.Store(true)
					}
					fmt.Fprintf(c, "-ERR refused %q\r\n", line)
				}
			}()
		}
	}()
	return l.Addr().String(), sawPassword
}

// readCommand reads one RESP array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	head, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "*")))
	if err != nil || !strings.HasPrefix(head, "*") {
		return nil, fmt.Errorf("not an array: %q", head)
	}
	args := make([]string, n)
	for i := range args {
		h, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(h, "$")))
		if err != nil {
			return nil, err
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		args[i] = string(b[:size])
	}
	return args, nil
}

// A Redis (or a proxy before it) whose errors quote what it was sent, the AUTH with the
// configured password included, must not hand the password to a client, the log or the
// metrics: the request is refused with gavel's own words, the admin spend endpoint too.
func TestRedisErrorEchoOfPasswordIsScrubbed(t *testing.T) {
	addr, saw := echoingRedis(t, secretRedisPassword)
	yaml, key, admin, _ := budgetSetup(t, 1_000_000, 0,
		fmt.Sprintf("ledger: {store: redis, redis: {addr: %q, password: %q}}\n", addr, secretRedisPassword))
	logs := &logBuffer{}
	g := startLogged(t, yaml(), nil, true, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	resp, body := g.post(t, "/v1/chat/completions", `{"model":"solo","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
		map[string]string{"Authorization": "Bearer " + key})
	if resp.StatusCode < 500 {
		t.Fatalf("chat with a refusing Redis: %d %v, want a 5xx", resp.StatusCode, body)
	}
	noSecret(t, "the chat error", fmt.Sprint(body))

	req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/gavel/spend?scope=team&id=search", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, body = do(t, req)
	if resp.StatusCode == 200 {
		t.Fatalf("spend with a refusing Redis: 200 %v", body)
	}
	noSecret(t, "the spend endpoint's error", fmt.Sprint(body))
	if resp.StatusCode == http.StatusBadRequest {
		t.Errorf("spend with a refusing Redis: 400 %v; the store's failure is not the caller's", body)
	}
	// What is the caller's mistake still says so.
	req, _ = http.NewRequest(http.MethodGet, g.URL+"/v1/gavel/spend?scope=planet&id=x", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	if resp, body = do(t, req); resp.StatusCode != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body), "unknown scope") {
		t.Errorf("spend of an unknown scope: %d %v, want 400 naming the scope", resp.StatusCode, body)
	}

	if !saw.Load() {
		t.Fatal("the fake Redis never saw the password: nothing to leak")
	}
	eventually(t, "the request's log line", func() bool { return len(logs.records("request")) > 0 })
	noSecret(t, "the log", logs.String())
	noSecret(t, "/metrics", g.text(t, "/metrics"))
	if !strings.Contains(logs.String(), "refused") {
		t.Errorf("the log should still say what Redis answered, the password masked:\n%s", logs.String())
	}
}
