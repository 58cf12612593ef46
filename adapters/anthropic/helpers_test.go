package anthropic

import (
	"bytes"
	"context"
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

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func ptr[T any](v T) *T { return &v }

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// canonicalJSON re-indents a JSON document so that two documents compare by meaning.
func canonicalJSON(t testing.TB, b []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	return out
}

// assertJSONEqual compares two JSON documents by meaning: key order and spacing aside.
func assertJSONEqual(t *testing.T, want, got []byte) {
	t.Helper()
	wb, gb := canonicalJSON(t, want), canonicalJSON(t, got)
	if !bytes.Equal(wb, gb) {
		t.Errorf("JSON differs\nwant:\n%s\ngot:\n%s", wb, gb)
	}
}

// golden compares got, a JSON document, with testdata/name, or rewrites the file under
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	if *update {
		b := canonicalJSON(t, got)
		if err := os.WriteFile(filepath.Join("testdata", name), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	assertJSONEqual(t, readTestdata(t, name), got)
}

// goldenLines compares got, JSON lines, with testdata/name line by line, or rewrites it.
func goldenLines(t *testing.T, name string, got [][]byte) {
	t.Helper()
	var compact bytes.Buffer
	for _, l := range got {
		if err := json.Compact(&compact, l); err != nil {
			t.Fatalf("line is not JSON: %v\n%s", err, l)
		}
		compact.WriteByte('\n')
	}
	if *update {
		if err := os.WriteFile(filepath.Join("testdata", name), compact.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := bytes.Split(bytes.TrimSpace(readTestdata(t, name)), []byte("\n"))
	if len(want) != len(got) {
		t.Errorf("%s: %d lines, want %d\ngot:\n%s", name, len(got), len(want), compact.Bytes())
	}
	for i := 0; i < min(len(want), len(got)); i++ {
		if w, g := canonicalJSON(t, want[i]), canonicalJSON(t, got[i]); !bytes.Equal(w, g) {
			t.Errorf("%s line %d differs\nwant: %s\ngot:  %s", name, i+1, want[i], got[i])
		}
	}
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

// memStream is a stream over an in-memory body, bypassing HTTP, with a fixed "created".
func memStream(t testing.TB, r io.Reader, includeUsage bool) *stream {
	p, err := New(Config{Name: "mem"})
	if err != nil {
		t.Fatal(err)
	}
	return newStream(context.Background(), p, io.NopCloser(r), streamOptions{model: "requested-model", includeUsage: includeUsage, created: testCreated})
}

// testCreated stands in for time.Now in golden outputs.
const testCreated = 1700000000

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
		if !strings.Contains(g, "net/http.") && !strings.Contains(g, "adapters/anthropic.") {
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

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
