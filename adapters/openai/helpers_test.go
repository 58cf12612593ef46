package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

var update = flag.Bool("update", false, "rewrite golden request files in testdata")

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertJSONEqual compares two JSON documents by meaning: key order and spacing aside.
func assertJSONEqual(t *testing.T, want, got []byte) {
	t.Helper()
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want is not JSON: %v", err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got is not JSON: %v\n%s", err, got)
	}
	wb, _ := json.MarshalIndent(w, "", "  ")
	gb, _ := json.MarshalIndent(g, "", "  ")
	if !bytes.Equal(wb, gb) {
		t.Errorf("JSON differs\nwant:\n%s\ngot:\n%s", wb, gb)
	}
}

// golden compares got with testdata/name, or rewrites the file under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	if *update {
		var v any
		if err := json.Unmarshal(got, &v); err != nil {
			t.Fatal(err)
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile(filepath.Join("testdata", name), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	assertJSONEqual(t, readTestdata(t, name), got)
}

func mustProvider(t testing.TB, cfg Config) *Provider {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// asError asserts err is an *adapters.Error of the given kind.
func asError(t *testing.T, err error, kind adapters.Kind) *adapters.Error {
	t.Helper()
	e := adapters.AsError(err)
	if e == nil {
		t.Fatalf("error %v (%T) is not an *adapters.Error", err, err)
	}
	if e.Kind != kind {
		t.Fatalf("kind = %v, want %v (error: %v)", e.Kind, kind, e)
	}
	return e
}

// drainStream reads a stream to its end.
func drainStream(s adapters.ChunkStream) ([]*adapters.ChatChunk, error) {
	var out []*adapters.ChatChunk
	for {
		c, err := s.Recv()
		if err != nil {
			return out, err
		}
		if c == nil {
			return out, errors.New("nil chunk with nil error")
		}
		out = append(out, c)
	}
}

// checkNoLeak fails the test when goroutines started during it that belong to net/http
// or this package are still running once it has cleaned up (callers close servers and
// idle connections first). Goroutines are told apart by id, so a baseline taken before
// the test excludes everything that was already there.
func checkNoLeak(t *testing.T) func() {
	t.Helper()
	before := interestingGoroutines()
	return func() {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			var leaked []string
			for id, stack := range interestingGoroutines() {
				if _, ok := before[id]; !ok {
					leaked = append(leaked, stack)
				}
			}
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d goroutine(s) leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func interestingGoroutines() map[string]string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "net/http.") && !strings.Contains(g, "adapters/openai.") {
			continue
		}
		if strings.Contains(g, "interestingGoroutines") {
			continue
		}
		id, _, _ := strings.Cut(g, " [")
		out[id] = g
	}
	return out
}

// chunkedReader returns at most n bytes per Read, to move event boundaries across reads.
type chunkedReader struct {
	r io.Reader
	n int
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}
