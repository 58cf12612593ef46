package pipeline_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/engine/pipeline"
)

// longReply is size bytes of the tokens corpus's English prose and markdown, repeated.
func longReply(t *testing.T, size int) string {
	t.Helper()
	var b strings.Builder
	for _, dir := range []string{"prose", "markdown"} {
		paths, err := filepath.Glob(filepath.Join("..", "tokens", "testdata", "corpus", dir, "*"))
		if err != nil || len(paths) == 0 {
			t.Fatalf("corpus %s: %v", dir, err)
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(data)
		}
	}
	text := strings.Repeat(b.String(), size/b.Len()+1)[:size]
	return strings.ToValidUTF8(text, "")
}

// liveHeap is the heap still in use after a full collection.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A long stream without usage is charged for every token it relayed, yet the pipeline
// does not keep its text: the heap it holds while the stream is relayed stays flat, where
// it used to grow by the whole completion (and then by the tokenizer's copy of it).
func TestLongStreamWithoutUsageChargedWithoutKeepingItsText(t *testing.T) {
	size := 4 << 20
	if raceEnabled {
		size = 512 << 10
	}
	reply := longReply(t, size)
	const limit = 1 << 40 // µUSD: far above a 4 MiB completion
	r := newRig(t, setup{budgets: []map[string]any{teamDaily(limit)}, bigReply: reply})

	// A short answer without usage first: it loads the pipeline's tokenizer (7 MB of
	// vocabulary, held for the life of the process), which is not the stream's to hold.
	warm := streamRequest(noUsageID, false)
	x := r.p.Start(pipeline.EndpointChat)
	if err := r.p.AdmitChat(context.Background(), x, ana, warm, ""); err != nil {
		t.Fatal(err)
	}
	s, err := r.p.OpenStream(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	drain(t, s)
	s.Close()
	r.p.Finish(x, 200, "")
	warmCost := cost(price, counted(t, "m", warm, goodReply))
	r.waitSpent(t, teamBudget(limit), warmCost)

	req := streamRequest(bigID, false)
	x = r.p.Start(pipeline.EndpointChat)
	if err := r.p.AdmitChat(context.Background(), x, ana, req, ""); err != nil {
		t.Fatal(err)
	}
	if s, err = r.p.OpenStream(context.Background(), x); err != nil {
		t.Fatal(err)
	}
	before := liveHeap()
	relayed, peak := 0, uint64(0)
	for i := 0; ; i++ {
		c, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if c == nil {
			continue
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				relayed += len(*ch.Delta.Content)
			}
		}
		if i%1000 == 999 {
			peak = max(peak, liveHeap())
		}
	}
	peak = max(peak, liveHeap())
	s.Close()
	if relayed != len(reply) {
		t.Fatalf("relayed %d bytes, want %d", relayed, len(reply))
	}
	// The tally holds at most 64 KiB; a quarter of the text leaves room for the runtime's
	// own noise and is far below what keeping the text would take.
	grown := int64(peak) - int64(before)
	t.Logf("live heap grew by %d KiB while relaying %d KiB", grown>>10, size>>10)
	if grown > int64(size/4) {
		t.Errorf("live heap grew by %d KiB while relaying a %d KiB stream, want under %d KiB", grown>>10, size>>10, size>>12)
	}
	r.p.Finish(x, 200, "")

	// English prose has a word boundary every few bytes: the tally's count is the whole
	// text's, exactly.
	u := counted(t, "m", req, reply)
	r.waitSpent(t, teamBudget(limit), warmCost+cost(price, u))
}
