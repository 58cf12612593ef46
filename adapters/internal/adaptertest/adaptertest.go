// Package adaptertest holds the test helpers and the shared test bodies of the provider
// adapters (openai, anthropic, gemini). It is imported only from _test.go files.
//
// Paths are relative to the package under test: "go test" runs each package's tests in
// its directory, so testdata/ is that package's testdata.
package adaptertest

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

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// Update reports whether the test binary runs with -update, which rewrites golden files.
func Update() bool { return *update }

// Ptr returns a pointer to a copy of v.
func Ptr[T any](v T) *T { return &v }

// ReadTestdata returns testdata/name.
func ReadTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// SeedFiles calls add with the base name and content of every testdata file matching
// pattern, and fails if there is none.
func SeedFiles(f *testing.F, pattern string, add func(name string, b []byte)) {
	f.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(names) == 0 {
		f.Fatalf("no seeds for %s: %v", pattern, err)
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		add(filepath.Base(n), b)
	}
}

// CanonicalJSON re-indents a JSON document so that two documents equal in meaning (key
// order and spacing aside) compare equal as text.
func CanonicalJSON(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		tb.Fatalf("not JSON: %v\n%s", err, b)
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	return out
}

// AssertJSONEqual compares two JSON documents by meaning: key order and spacing aside.
func AssertJSONEqual(tb testing.TB, want, got []byte) {
	tb.Helper()
	wb, gb := CanonicalJSON(tb, want), CanonicalJSON(tb, got)
	if !bytes.Equal(wb, gb) {
		tb.Errorf("JSON differs\nwant:\n%s\ngot:\n%s", wb, gb)
	}
}

// Golden compares got with testdata/name, or rewrites the file under -update. A .jsonl
// file is compared line by line (see GoldenLines); any other file as one JSON document.
func Golden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	if strings.HasSuffix(name, ".jsonl") {
		GoldenLines(tb, name, splitLines(got))
		return
	}
	if *update {
		b := CanonicalJSON(tb, got)
		if err := os.WriteFile(filepath.Join("testdata", name), append(b, '\n'), 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	AssertJSONEqual(tb, ReadTestdata(tb, name), got)
}

// GoldenLines compares got, JSON documents, with the lines of testdata/name one by one,
// each by meaning, or rewrites the file (compacted, one document a line) under -update.
func GoldenLines(tb testing.TB, name string, got [][]byte) {
	tb.Helper()
	var compact bytes.Buffer
	for _, l := range got {
		if err := json.Compact(&compact, l); err != nil {
			tb.Fatalf("line is not JSON: %v\n%s", err, l)
		}
		compact.WriteByte('\n')
	}
	if *update {
		if err := os.WriteFile(filepath.Join("testdata", name), compact.Bytes(), 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want := splitLines(ReadTestdata(tb, name))
	if len(want) != len(got) {
		tb.Errorf("%s: %d lines, want %d\ngot:\n%s", name, len(got), len(want), compact.Bytes())
	}
	for i := 0; i < max(len(want), len(got)); i++ {
		switch {
		case i >= len(want):
			tb.Errorf("%s: extra line %d: %s", name, i+1, got[i])
		case i >= len(got):
			tb.Errorf("%s: missing line %d: %s", name, i+1, want[i])
		case !bytes.Equal(CanonicalJSON(tb, want[i]), CanonicalJSON(tb, got[i])):
			tb.Errorf("%s line %d differs\nwant: %s\ngot:  %s", name, i+1, want[i], got[i])
		}
	}
}

// splitLines returns the non-blank lines of b.
func splitLines(b []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// AsError asserts err is an *adapters.Error of the given kind.
func AsError(tb testing.TB, err error, kind adapters.Kind) *adapters.Error {
	tb.Helper()
	e := adapters.AsError(err)
	if e == nil {
		tb.Fatalf("error %v (%T) is not an *adapters.Error", err, err)
	}
	if e.Kind != kind {
		tb.Fatalf("kind = %v, want %v (error: %v)", e.Kind, kind, e)
	}
	return e
}

// DrainStream reads a stream to its end.
func DrainStream(s adapters.ChunkStream) ([]*adapters.ChatChunk, error) {
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

// ChunkedReader returns a reader of r that returns at most n bytes per Read, to move
// event boundaries across reads.
func ChunkedReader(r io.Reader, n int) io.Reader { return &chunkedReader{r: r, n: n} }

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

// ErrReader returns a reader whose every Read fails with err.
func ErrReader(err error) io.Reader { return errReader{err} }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// ResetAfter returns a reader of prefix that then fails as a reset connection does.
func ResetAfter(prefix string) io.Reader {
	return io.MultiReader(strings.NewReader(prefix), ErrReader(errors.New("connection reset by peer")))
}

// CheckNoLeak fails the test when goroutines started during it that belong to net/http
// or to the adapters are still running once it has cleaned up (callers close servers and
// idle connections first). Goroutines are told apart by id, so a baseline taken before
// the test excludes everything that was already there.
func CheckNoLeak(tb testing.TB) func() {
	tb.Helper()
	before := interestingGoroutines()
	return func() {
		tb.Helper()
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
				tb.Fatalf("%d goroutine(s) leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
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
		if !strings.Contains(g, "net/http.") && !strings.Contains(g, "gavel-gw/gavel/adapters/") {
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
