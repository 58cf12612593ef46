package decisionlog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// counts is an Observer that remembers what it was told.
type counts struct {
	mu      sync.Mutex
	events  map[string]int // sink/outcome
	dropped map[string]int
}

func newCounts() *counts { return &counts{events: map[string]int{}, dropped: map[string]int{}} }

func (c *counts) DecisionLogEvents(sink, outcome string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events[sink+"/"+outcome] += n
}

func (c *counts) DecisionLogDropped(sink string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropped[sink] += n
}

func (c *counts) get(m map[string]int, k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return m[k]
}

var (
	testInput  = ast.MustParseTerm(`{"request": {"model": "smart", "messages": [{"role": "user", "text": "secret prompt"}]}, "caller": {"user": "ann", "team": "t1"}}`).Value
	testResult = ast.MustParseTerm(`{"allow": true, "targets": [{"provider": "a", "model": "m"}]}`).Value
)

func logN(l *Logger, n int) {
	for i := range n {
		l.Log(Record{ID: fmt.Sprintf("d%d", i), Time: time.Unix(1, 0), Revision: "r1", Input: testInput, Result: testResult, Route: "a/m", Status: 200})
	}
}

func decodeLines(t *testing.T, raw []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestConsoleAndFileSinks(t *testing.T) {
	var console bytes.Buffer
	path := filepath.Join(t.TempDir(), "nested", "dir", "decisions.jsonl")
	obs := newCounts()
	file, err := NewFile(FileConfig{Path: path}, obs)
	if err != nil {
		t.Fatal(err)
	}
	l := New(Config{MaskMessages: true, Sinks: []Sink{NewConsole(&console, obs), file}, Observer: obs})
	logN(l, 5)
	l.Close(context.Background())
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{"console": console.Bytes(), "file": raw} {
		evs := decodeLines(t, got)
		if len(evs) != 5 {
			t.Fatalf("%s: %d events, want 5", name, len(evs))
		}
		if evs[4]["decision_id"] != "d4" || strings.Contains(string(got), "secret prompt") {
			t.Errorf("%s: wrong or unmasked events: %s", name, got)
		}
		if obs.get(obs.events, name+"/ok") != 5 {
			t.Errorf("%s: events ok = %d, want 5", name, obs.get(obs.events, name+"/ok"))
		}
	}
	// Appending: a second logger adds to the same file.
	file2, err := NewFile(FileConfig{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l2 := New(Config{Sinks: []Sink{file2}})
	logN(l2, 1)
	l2.Close(context.Background())
	raw, _ = os.ReadFile(path)
	if n := len(decodeLines(t, raw)); n != 6 {
		t.Errorf("after reopening: %d events, want 6", n)
	}
}

func TestFileRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.jsonl")
	file, err := NewFile(FileConfig{Path: path, MaxBytes: 1500, MaxBackups: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := New(Config{Sinks: []Sink{file}})
	logN(l, 40)
	l.Close(context.Background())
	total := 0
	for _, p := range []string{path, path + ".1", path + ".2"} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if info.Size() > 1500 {
			t.Errorf("%s has %d bytes, over the 1500 limit", p, info.Size())
		}
		raw, _ := os.ReadFile(p)
		total += len(decodeLines(t, raw))
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("more backups than MaxBackups: %v", err)
	}
	if total == 0 || total >= 40 {
		t.Errorf("kept %d events across files; want some, and fewer than 40 (oldest rotated away)", total)
	}
}

func TestMaskRules(t *testing.T) {
	tests := []struct {
		name       string
		mask       []string
		maskMsgs   bool
		absent     []string
		present    []string
		wantErased []any
	}{
		{"default masks texts only", nil, true, []string{"secret prompt", `"erased"`}, []string{`"[masked 13 bytes]"`, `"ann"`}, nil},
		{"opt out keeps texts", nil, false, []string{`"erased"`}, []string{"secret prompt"}, nil},
		{"erase messages and user", []string{"/input/request/messages", "/input/caller/user", "/input/nothing/here"}, false,
			[]string{"secret prompt", `"ann"`, `"messages"`}, []string{`"team":"t1"`, `"model":"smart"`},
			[]any{"/input/request/messages", "/input/caller/user"}},
		{"through an array", []string{"/input/request/messages/0/text", "/result/targets/0/model"}, false,
			[]string{"secret prompt", `"model":"m"`}, []string{`"role":"user"`, `"provider":"a"`},
			[]any{"/input/request/messages/0/text", "/result/targets/0/model"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sunk []byte
			l := New(Config{MaskMessages: tc.maskMsgs, Mask: tc.mask, Sink: func(b []byte) { sunk = append(sunk, b...) }})
			logN(l, 1)
			l.Close(context.Background())
			got, ok := l.Get("d0")
			if !ok || !bytes.Equal(got, sunk) {
				t.Fatalf("lookup and sink differ:\n%s\n%s", got, sunk)
			}
			for _, s := range tc.absent {
				if strings.Contains(string(got), s) {
					t.Errorf("event contains %s: %s", s, got)
				}
			}
			for _, s := range tc.present {
				if !strings.Contains(string(got), s) {
					t.Errorf("event lacks %s: %s", s, got)
				}
			}
			var ev map[string]any
			if err := json.Unmarshal(got, &ev); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(ev["erased"]) != fmt.Sprint(tc.wantErased) && tc.wantErased != nil {
				t.Errorf("erased = %v, want %v", ev["erased"], tc.wantErased)
			}
		})
	}
}

func TestValidateMask(t *testing.T) {
	err := ValidateMask([]string{"/input/ok", "/bundles/x", "input/x", "/result"})
	if err == nil || !strings.Contains(err.Error(), `"/bundles/x"`) || !strings.Contains(err.Error(), `"input/x"`) || strings.Contains(err.Error(), "/input/ok") {
		t.Errorf("ValidateMask = %v", err)
	}
}

// logService is a fake decision-log service: it checks the protocol and keeps batches.
type logService struct {
	t       *testing.T
	mu      sync.Mutex
	batches [][]map[string]any
	fail    atomic.Int32 // answer 503 this many more times
	block   chan struct{}
}

func (s *logService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.block != nil {
		<-s.block
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/logs" || r.Header.Get("Content-Encoding") != "gzip" ||
		r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Authorization") != "Bearer tok" {
		s.t.Errorf("bad upload: %s %s %v", r.Method, r.URL.Path, r.Header)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if s.fail.Add(-1) >= 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		s.t.Error(err)
		return
	}
	raw, _ := io.ReadAll(zr)
	var batch []map[string]any
	if err := json.Unmarshal(raw, &batch); err != nil {
		s.t.Errorf("batch is not a JSON array: %v: %s", err, raw)
	}
	s.mu.Lock()
	s.batches = append(s.batches, batch)
	s.mu.Unlock()
}

func (s *logService) sizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n []int
	for _, b := range s.batches {
		n = append(n, len(b))
	}
	return n
}

func TestServiceSink(t *testing.T) {
	tests := []struct {
		name      string
		cfg       ServiceConfig
		fail      int32
		events    int
		wantSizes string
		ok, drop  int
	}{
		{"batches by count, rest flushed on close", ServiceConfig{BatchMaxEvents: 4, MaxDelay: time.Hour}, 0, 10, "[4 4 2]", 10, 0},
		{"batches by bytes", ServiceConfig{BatchMaxBytes: 1, MaxDelay: time.Hour}, 0, 3, "[1 1 1]", 3, 0},
		{"retries then delivers", ServiceConfig{BatchMaxEvents: 5, Backoff: time.Millisecond}, 2, 5, "[5]", 5, 0},
		{"gives up after retries", ServiceConfig{BatchMaxEvents: 5, Backoff: time.Millisecond, MaxRetries: 1}, 2, 5, "[]", 0, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := &logService{t: t}
			fake.fail.Store(tc.fail)
			srv := httptest.NewServer(fake)
			defer srv.Close()
			obs := newCounts()
			tc.cfg.URL, tc.cfg.Token = srv.URL+"/v1/", "tok"
			l := New(Config{Sinks: []Sink{NewService(tc.cfg, obs)}})
			logN(l, tc.events)
			l.Close(context.Background())
			if got := fmt.Sprint(fake.sizes()); got != tc.wantSizes {
				t.Errorf("batch sizes %s, want %s", got, tc.wantSizes)
			}
			if ok, drop := obs.get(obs.events, "service/ok"), obs.get(obs.dropped, "service"); ok != tc.ok || drop != tc.drop {
				t.Errorf("ok %d dropped %d, want %d and %d", ok, drop, tc.ok, tc.drop)
			}
		})
	}
}

func TestServiceMaxDelay(t *testing.T) {
	fake := &logService{t: t}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	l := New(Config{Sinks: []Sink{NewService(ServiceConfig{URL: srv.URL + "/v1", Token: "tok", MaxDelay: 10 * time.Millisecond}, nil)}})
	defer l.Close(context.Background())
	logN(l, 2)
	deadline := time.Now().Add(5 * time.Second)
	for len(fake.sizes()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := fmt.Sprint(fake.sizes()); got != "[2]" {
		t.Errorf("a partial batch was not sent after max_delay: %s", got)
	}
}

// A service that hangs must cost nothing but dropped events: the logger keeps up, the
// queue overflows and is counted, and Close returns by its deadline.
func TestServiceDownDropsAndCloseHasDeadline(t *testing.T) {
	fake := &logService{t: t, block: make(chan struct{})}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	defer close(fake.block)
	obs := newCounts()
	l := New(Config{Sinks: []Sink{NewService(ServiceConfig{URL: srv.URL + "/v1", Token: "tok", BatchMaxEvents: 1, Buffer: 3}, obs)}})
	logN(l, 50)
	deadline := time.Now().Add(5 * time.Second)
	for l.Logged() < 50 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if l.Logged() != 50 {
		t.Fatalf("logger stalled behind a hung service: logged %d", l.Logged())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	l.Close(ctx)
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("Close took %v past its deadline", waited)
	}
	deadline = time.Now().Add(5 * time.Second)
	for obs.get(obs.dropped, "service") < 50 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if d := obs.get(obs.dropped, "service"); d != 50 {
		t.Errorf("dropped %d, want all 50 (none could be delivered)", d)
	}
}

func TestBufferDropsReported(t *testing.T) {
	block := make(chan struct{})
	obs := newCounts()
	l := New(Config{Buffer: 1, Observer: obs, Sink: func([]byte) { <-block }})
	for range 20 {
		l.Log(Record{ID: "x"})
	}
	close(block)
	l.Close(context.Background())
	if l.Dropped() == 0 || int64(obs.get(obs.dropped, "buffer")) != l.Dropped() {
		t.Errorf("dropped %d, reported %d", l.Dropped(), obs.get(obs.dropped, "buffer"))
	}
}

// BenchmarkBackground is the logger goroutine's cost per event (encode, mask, sinks),
// which runs beside requests, not on their path: b.N events are queued (the request
// path's part, one channel send each) and Close waits until all are written.
func BenchmarkBackground(b *testing.B) {
	for _, bc := range []struct {
		name string
		mask []string
		file bool
	}{{"ring", nil, false}, {"file", nil, true}, {"file+mask", []string{"/input/caller/user"}, true}} {
		b.Run(bc.name, func(b *testing.B) {
			var sinks []Sink
			if bc.file {
				f, err := NewFile(FileConfig{Path: filepath.Join(b.TempDir(), "d.jsonl")}, nil)
				if err != nil {
					b.Fatal(err)
				}
				sinks = append(sinks, f)
			}
			l := New(Config{Buffer: b.N + 1, MaskMessages: true, Mask: bc.mask, Sinks: sinks})
			r := Record{ID: "0123456789abcdef0123456789abcdef", Time: time.Unix(1, 0), Revision: "r1", Input: testInput, Result: testResult, Route: "a/m", Status: 200}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				l.Log(r)
			}
			l.Close(context.Background())
		})
	}
}
