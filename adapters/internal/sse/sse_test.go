package sse

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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

// readAll returns the events of in, read size bytes at a time, and the partial event
// that EOF cut off.
func readAll(t testing.TB, in []byte, size int) (events []string, partial string) {
	r := Get(&chunkedReader{r: bytes.NewReader(in), n: size})
	defer Put(r)
	for i := 0; ; i++ {
		if i > len(in)+1 {
			t.Fatal("reader does not terminate")
		}
		if i%3 != 0 {
			r.Ready() // as a relaying caller asks between events (it may answer for Next)
		}
		data, err := r.Next()
		if err != nil {
			if err != io.EOF {
				t.Fatalf("read size %d: unexpected error %v", size, err)
			}
			return events, string(data)
		}
		events = append(events, string(data))
	}
}

// TestParsing checks the event splitter against the WHATWG rules, at several read
// sizes so that terminators straddle buffer edges.
func TestParsing(t *testing.T) {
	long := strings.Repeat("x", 3*BufferSize)
	tests := []struct {
		name    string
		in      string
		events  []string
		partial string // data of an event cut off by EOF
	}{
		{name: "lf", in: "data: a\n\ndata: b\n\n", events: []string{"a", "b"}},
		{name: "crlf", in: "data: a\r\n\r\ndata: b\r\n\r\n", events: []string{"a", "b"}},
		{name: "cr", in: "data: a\r\rdata: b\r\r", events: []string{"a", "b"}},
		{name: "mixed", in: "data: a\r\n\ndata: b\r\rdata: c\n\r\n", events: []string{"a", "b", "c"}},
		{name: "no space after colon", in: "data:a\n\n", events: []string{"a"}},
		{name: "only one space stripped", in: "data:  a \n\n", events: []string{" a "}},
		{name: "multi-line data", in: "data: a\ndata: b\ndata:\ndata: c\n\n", events: []string{"a\nb\n\nc"}},
		{name: "comments ignored", in: ": hi\ndata: a\n: there\n\n:\n\n", events: []string{"a"}},
		{name: "other fields tolerated", in: "event: message\nid: 7\nretry: 1000\ndata: a\nfoo: bar\n\n", events: []string{"a"}},
		{name: "event field only", in: "event: ping\n\nevent: message_start\ndata: {}\n\n", events: []string{"{}"}},
		{name: "field without colon", in: "data\ndata\n\n", events: []string{"\n"}},
		{name: "blank lines without data", in: "\n\n\r\n\rdata: a\n\n\n", events: []string{"a"}},
		{name: "bom", in: "\xEF\xBB\xBFdata: a\n\n", events: []string{"a"}},
		{name: "bom only at start", in: "data: a\n\n\xEF\xBB\xBFdata: b\n\n", events: []string{"a"}},
		{name: "colon in value", in: "data: {\"a\":\"b:c\"}\n\n", events: []string{`{"a":"b:c"}`}},
		{name: "long line", in: "data: " + long + "\n\ndata: b\n\n", events: []string{long, "b"}},
		{name: "cr at buffer edge", in: "data: " + strings.Repeat("y", BufferSize-7) + "\r\n\r\ndata: b\r\n\r\n",
			events: []string{strings.Repeat("y", BufferSize-7), "b"}},
		{name: "unterminated event", in: "data: a\n\ndata: b\n", events: []string{"a"}, partial: "b"},
		{name: "unterminated line", in: "data: a\n\ndata: b", events: []string{"a"}, partial: "b"},
		{name: "data field name is case sensitive", in: "Data: a\n\n", events: nil},
		{name: "empty", in: "", events: nil},
		// Cases carried over from the adapters' former reader tables.
		{name: "event names tolerated", in: "event: message_start\nid: 7\nretry: 1000\ndata: a\nfoo: bar\n\n", events: []string{"a"}},
		{name: "comments and other fields", in: ": hi\nevent: message\nid: 7\ndata: a\n\n", events: []string{"a"}},
		{name: "blank lines and an event-only block", in: "\n\n\r\n\revent: ping\n\ndata: a\n\n\n", events: []string{"a"}},
		{name: "two data lines", in: "data: a\ndata: b\n\n", events: []string{"a\nb"}},
		{name: "long line crlf", in: "data: " + long + "\r\n\r\ndata: b\r\n\r\n", events: []string{long, "b"}},
		{name: "unterminated event crlf", in: "data: a\r\n\r\ndata: b\r\n", events: []string{"a"}, partial: "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int{1 << 20, 3, 1} {
				got, partial := readAll(t, []byte(tt.in), size)
				if strings.Join(got, "|") != strings.Join(tt.events, "|") || len(got) != len(tt.events) {
					t.Errorf("read size %d: events = %q, want %q", size, got, tt.events)
				}
				if partial != tt.partial {
					t.Errorf("read size %d: partial = %q, want %q", size, partial, tt.partial)
				}
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "one data line", in: "data: " + strings.Repeat("a", MaxEvent) + "\n\n"},
		{name: "many data lines", in: strings.Repeat("data: "+strings.Repeat("a", 1000)+"\n", MaxEvent/1000+1) + "\n"},
		{name: "comment line", in: ":" + strings.Repeat("a", MaxEvent+10) + "\n\ndata: b\n\n"},
		{name: "unterminated line", in: "data: " + strings.Repeat("a", MaxEvent+10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int{1 << 21, 1000} {
				r := Get(&chunkedReader{r: strings.NewReader(tt.in), n: size})
				_, err := r.Next()
				Put(r)
				if !errors.Is(err, ErrEventTooLarge) {
					t.Errorf("read size %d: err = %v, want ErrEventTooLarge", size, err)
				}
			}
		})
	}
	// A line just within the bound is returned whole.
	v := strings.Repeat("a", MaxEvent-len("data: "))
	got, _ := readAll(t, []byte("data: "+v+"\n\n"), 1<<21)
	if len(got) != 1 || got[0] != v {
		t.Errorf("event of MaxEvent-1 bytes not returned whole")
	}
}

// TestReadError checks that a transport error ends Next with that error, after the
// partial event.
func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	r := Get(io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), &errReader{boom}))
	defer Put(r)
	if data, err := r.Next(); err != nil || string(data) != "a" {
		t.Fatalf("first event = %q, %v", data, err)
	}
	data, err := r.Next()
	if err != boom || string(data) != "b" {
		t.Fatalf("second Next = %q, %v; want \"b\", boom", data, err)
	}
	if _, err := r.Next(); err != boom {
		t.Fatalf("Next after error = %v, want boom again", err)
	}
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

// TestPoolReset checks that a pooled Reader carries nothing over from its last use.
func TestPoolReset(t *testing.T) {
	for range 10 {
		r := Get(strings.NewReader("data: " + strings.Repeat("z", 100<<10) + "\r"))
		if data, err := r.Next(); err != io.EOF || len(data) != 100<<10 {
			t.Fatalf("Next = %d bytes, %v", len(data), err)
		}
		Put(r)
		got, partial := readAll(t, []byte("\n\xEF\xBB\xBFdata: a\n\n"), 1)
		// The leading LF is a blank line of its own, not the end of a CRLF; the BOM is
		// stripped only from the first line, so here it is part of a field name.
		if len(got) != 0 || partial != "" {
			t.Fatalf("stale state: events %q, partial %q", got, partial)
		}
	}
	Put(nil)
}

// referenceSSE splits in the plain way the spec describes, as the fuzz oracle.
func referenceSSE(in []byte) (events []string, partial string) {
	s := strings.TrimPrefix(string(in), "\xEF\xBB\xBF")
	var lines []string
	for {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			if s != "" {
				lines = append(lines, s)
			}
			break
		}
		lines = append(lines, s[:i])
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
	}
	var data []string
	for _, line := range lines {
		switch {
		case line == "":
			if data != nil {
				events = append(events, strings.Join(data, "\n"))
			}
			data = nil
		case line[0] == ':':
		default:
			field, value, found := strings.Cut(line, ":")
			if found {
				value = strings.TrimPrefix(value, " ")
			}
			if field == "data" {
				data = append(data, value)
			}
		}
	}
	return events, strings.Join(data, "\n")
}

// FuzzReader checks that the reader agrees with referenceSSE whatever the read size. It
// is seeded from the adapters' recorded streams, with their line endings rewritten, and
// testdata/fuzz/FuzzReader holds the corpus the adapters' stream fuzzers found for it.
func FuzzReader(f *testing.F) {
	var names []string
	for _, pattern := range []string{"../../*/testdata/*.sse", "../../*/testdata/*/*.sse"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		names = append(names, m...)
	}
	if len(names) == 0 {
		f.Fatal("no .sse seeds found in the adapters' testdata")
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		lf := bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
		f.Add(b, uint16(0))
		f.Add(b, uint16(1))
		f.Add(lf, uint16(5))
		f.Add(bytes.ReplaceAll(lf, []byte("\n"), []byte("\r\n")), uint16(5))
		f.Add(bytes.ReplaceAll(lf, []byte("\n"), []byte("\r")), uint16(4096))
	}
	f.Add([]byte("\xEF\xBB\xBFdata: [DONE]"), uint16(2))
	f.Add([]byte(": c\r\ndata\r\rdata: {\"error\":\"x\"}\n\n"), uint16(3))
	f.Add([]byte("\xEF\xBB\xBFdata: {\"candidates\":[{\"finishReason\":\"STOP\"}]}"), uint16(2))
	f.Add([]byte(`data: {"candidates":[{"index":3,"content":{"parts":[{"functionCall":{"name":"f","args":null}}]}},{"finishReason":"SAFETY"}]}`+"\n\n"), uint16(0))
	f.Fuzz(func(t *testing.T, body []byte, readSize uint16) {
		size := int(readSize)
		if size == 0 {
			size = len(body) + 1
		}
		if len(body) > MaxEvent {
			return
		}
		want, wantPartial := referenceSSE(body)
		got, partial := readAll(t, body, size)
		if len(got) != len(want) || strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("events = %q, want %q", got, want)
		}
		if partial != wantPartial {
			t.Fatalf("partial = %q, want %q", partial, wantPartial)
		}
	})
}

// Event names are kept for callers that relay events; a dataless block forgets its name.
func TestEventName(t *testing.T) {
	r := Get(strings.NewReader("event: a\ndata: 1\n\nevent: skipped\n\ndata: 2\n\nevent: c\r\ndata: 3\r\n\r\n"))
	defer Put(r)
	for _, want := range []struct{ name, data string }{{"a", "1"}, {"", "2"}, {"c", "3"}} {
		data, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != want.data || string(r.Event()) != want.name {
			t.Errorf("got %q/%q, want %q/%q", r.Event(), data, want.name, want.data)
		}
	}
}

// Ready says an event is at hand only when the next Next will return it without reading:
// a whole data event is buffered. Anything else, including what it cannot tell cheaply,
// is false (the caller flushes).
func TestReady(t *testing.T) {
	for _, tc := range []struct {
		rest string // what follows the first event, all read in one go
		want bool
	}{
		{"data: {\"a\":2}\n\n", true},
		{"data: {\"a\":2}\ndata: more\n\n", true},
		{"data: {\"a\"", false},          // cut: Next would wait for the rest
		{"data: {\"a\":2}\n", false},     // no blank line yet
		{": keep-alive\n\n", false},      // a comment dispatches nothing: Next would read on
		{"data: \n\n", false},            // no data
		{"event: x\ndata: y\n\n", false}, // only data lines are judged
		{"data: y\r\n\r\n", false},       // CRLF: not judged
		{"", false},
	} {
		r := Get(strings.NewReader("data: {\"a\":1}\n\n" + tc.rest))
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
		// bufio reads what the strings.Reader has in one go, so the rest is buffered
		if got := r.Ready(); got != tc.want {
			t.Errorf("after %q: Ready = %v, want %v", tc.rest, got, tc.want)
		}
		Put(r)
	}
}

// eventReader returns one event per Read, as a connection does when the upstream writes
// and flushes each event on its own.
type eventReader struct {
	events [][]byte
	i      int
}

func (e *eventReader) Read(p []byte) (int, error) {
	if e.i >= len(e.events) {
		return 0, io.EOF
	}
	n := copy(p, e.events[e.i])
	e.i++
	return n, nil
}

// BenchmarkNextEventPerRead reads 200 chunk-sized events that arrive one per read, asking
// Ready after each as the server does: the reader's own cost per event.
func BenchmarkNextEventPerRead(b *testing.B) {
	ev := []byte(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1733580000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" word"},"finish_reason":null,"logprobs":null}],"system_fingerprint":"fp_1"}` + "\n\n")
	events := make([][]byte, 200)
	for i := range events {
		events[i] = ev
	}
	src := &eventReader{events: events}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		src.i = 0
		r := Get(src)
		n := 0
		for {
			if _, err := r.Next(); err != nil {
				break
			}
			n++
			r.Ready()
		}
		Put(r)
		if n != len(events) {
			b.Fatalf("%d events", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
}
