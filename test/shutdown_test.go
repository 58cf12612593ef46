package test

import (
	"bufio"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// TestShutdownEndsStreamsWithAnErrorEventAndRecordsThem: a stream still running when the
// shutdown grace runs out gets an error event its SDK reports, and is recorded (log line)
// and charged (file ledger, read back after a restart) before the process is gone.
func TestShutdownEndsStreamsWithAnErrorEventAndRecordsThem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	yaml, key, admin, up := budgetSetup(t, 1_000_000, 0, "ledger: {store: file, path: "+strconv.Quote(path)+"}\n")
	// 20 s of stream against a 2 s grace (the harness's shutdown_timeout).
	up.SetDefault("m1", fakeupstream.Step{Reply: strings.Repeat("word ", 1000), Chunks: 1000, ChunkInterval: 20 * time.Millisecond})
	logs := &logBuffer{}
	g := startLogged(t, yaml(), nil, false, slog.New(slog.NewJSONHandler(logs, nil)))

	req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"solo","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var events []string
	for len(events) < 5 && sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			events = append(events, d)
		}
	}
	stopped := make(chan struct{})
	go func() { defer close(stopped); g.stop() }()
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			events = append(events, d)
		}
	}
	<-stopped
	last := events[len(events)-1]
	if !strings.Contains(last, `"code":"server_shutting_down"`) {
		t.Errorf("the stream ended without the shutdown's error event; last event %s (read error %v)", last, sc.Err())
	}

	var rec map[string]any
	for _, r := range logs.records("request") {
		if r["stream"] == true {
			rec = r
		}
	}
	if rec == nil {
		t.Fatal("no log line for the stream cut by the shutdown")
	}
	if rec["status"] != float64(http.StatusServiceUnavailable) || rec["error_code"] != "server_shutting_down" {
		t.Errorf("stream cut by the shutdown recorded as %v %v", rec["status"], rec["error_code"])
	}

	g2 := startKeepPath(t, yaml())
	if spent := spendOf(t, g2, admin); spent == 0 {
		t.Errorf("the stream cut by the shutdown was charged nothing")
	}
}
