package telemetry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines parses the JSON log lines and adds up, per cause, the occurrences they stand for.
func (s *syncBuffer) lines(t *testing.T) (n int, occurrences map[string]int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	occurrences = map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(s.b.Bytes()))
	for sc.Scan() {
		var l struct {
			Cause      string `json:"cause"`
			Suppressed int    `json:"suppressed"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		n++
		occurrences[l.Cause] += max(1, l.Suppressed)
	}
	return n, occurrences
}

func TestLogLimiterBoundsRepeatedErrors(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		causes   int
		each     int
		closeNow bool // Close before the interval ends: the counts come out at once
		maxLines int  // per interval the failures took
	}{
		{name: "one cause, the interval ends", interval: 200 * time.Millisecond, causes: 1, each: 5000, maxLines: 2},
		{name: "three causes, the interval ends", interval: 200 * time.Millisecond, causes: 3, each: 3000, maxLines: 6},
		{name: "shutdown reports what is pending", interval: time.Hour, causes: 2, each: 4000, closeNow: true, maxLines: 4},
		{name: "causes beyond the bound share one", interval: time.Hour, causes: maxLogCauses + 100, each: 20, closeNow: true,
			maxLines: 2 * (maxLogCauses + 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			buf := &syncBuffer{}
			l := NewLogLimiter(slog.New(slog.NewJSONHandler(buf, nil)), slog.LevelError, tc.interval)
			began := time.Now()
			var wg sync.WaitGroup
			for c := range tc.causes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range tc.each {
						l.Log(fmt.Sprintf("code-%d", c), "request failed", "decision_id", i, "err", "redis: connection refused")
					}
				}()
			}
			wg.Wait()
			// A slow machine (-race) may spread the calls over more than one interval.
			maxLines := tc.maxLines * (1 + int(time.Since(began)/tc.interval))
			total := tc.causes * tc.each
			sum := func() int {
				_, occ := buf.lines(t)
				s := 0
				for _, n := range occ {
					s += n
				}
				return s
			}
			if tc.closeNow {
				l.Close()
			}
			deadline := time.Now().Add(10 * time.Second)
			for sum() < total && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			n, occ := buf.lines(t)
			if n > maxLines {
				t.Errorf("%d lines for %d identical failures, want at most %d", n, total, maxLines)
			}
			if s := sum(); s != total {
				t.Errorf("the lines account for %d occurrences, want %d: %v", s, total, occ)
			}
			if tc.causes > maxLogCauses && occ[otherCause] == 0 {
				t.Errorf("no %q cause past %d causes", otherCause, maxLogCauses)
			}
			l.Close()
		})
	}
}
