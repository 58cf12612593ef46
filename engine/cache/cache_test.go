package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

func req(text string) *adapters.ChatRequest {
	return &adapters.ChatRequest{Model: "smart", Messages: []adapters.Message{{Role: "user", Content: adapters.TextContent(text)}}}
}

func TestRequestKeySeparatesWhatChangesTheAnswer(t *testing.T) {
	base, _ := RequestKey("team:a", "p/m", req("hi"), false, 0)
	withUser := req("hi")
	withUser.User, withUser.Metadata = "ana", map[string]string{"k": "v"}
	same, _ := RequestKey("team:a", "p/m", withUser, false, 0)
	if same != base {
		t.Fatal("user and metadata must not change the key")
	}
	for name, k := range map[string]func() (Key, error){
		"text":       func() (Key, error) { return RequestKey("team:a", "p/m", req("ho"), false, 0) },
		"stream":     func() (Key, error) { return RequestKey("team:a", "p/m", req("hi"), true, 0) },
		"max_tokens": func() (Key, error) { return RequestKey("team:a", "p/m", req("hi"), false, 5) },
		"target":     func() (Key, error) { return RequestKey("team:a", "p/other", req("hi"), false, 0) },
	} {
		got, err := k()
		if err != nil || got.Hash == base.Hash {
			t.Errorf("%s: same hash", name)
		}
	}
	other, _ := RequestKey("team:b", "p/m", req("hi"), false, 0)
	if other.String() == base.String() {
		t.Error("scopes share a key")
	}
}

type failing struct{}

func (failing) Get(context.Context, string) ([]byte, error) { return nil, errors.New("down") }
func (failing) Set(context.Context, string, []byte, time.Duration) error {
	return errors.New("down")
}
func (failing) Purge(context.Context, Filter) (int, error) { return 0, errors.New("down") }

func TestPutGetPurgeAndRemoteOutage(t *testing.T) {
	c := New(Options{Remote: failing{}})
	k1, _ := RequestKey("team:a", "p/m", req("one"), false, 0)
	k2, _ := RequestKey("team:b", "p/m", req("one"), false, 0)
	if _, ok := c.Get(context.Background(), k1); ok {
		t.Fatal("hit in an empty cache with L2 down")
	}
	e := &Entry{Route: "p/m", Response: &adapters.ChatResponse{ID: "x"}}
	if !c.Put(context.Background(), k1, e, time.Minute) || !c.Put(context.Background(), k2, e, time.Minute) {
		t.Fatal("not stored")
	}
	if got, ok := c.Get(context.Background(), k1); !ok || got.Response.ID != "x" {
		t.Fatal("L1 miss after Put")
	}
	purged, err := c.Purge(context.Background(), Filter{Scope: "team:a"})
	n := purged.Memory
	if n != 1 || err == nil {
		t.Fatalf("purge: %d, %v", n, err)
	}
	if _, ok := c.Get(context.Background(), k1); ok {
		t.Fatal("purged entry still served")
	}
	if _, ok := c.Get(context.Background(), k2); !ok {
		t.Fatal("purge of another scope removed this one")
	}
	big := &Entry{Response: &adapters.ChatResponse{ID: string(make([]byte, 2<<20))}}
	if c.Put(context.Background(), k1, big, time.Minute) {
		t.Fatal("an entry over max_entry_bytes was stored")
	}
}

func TestFlightTeeFromTheStartAndCancelWhenAllLeave(t *testing.T) {
	g := NewGroup()
	f, leader := g.Join("k")
	if !leader {
		t.Fatal("first joiner does not lead")
	}
	cancelled := make(chan struct{})
	f.Start(func() { close(cancelled) }, false)
	text := func(s string) *adapters.ChatChunk {
		return &adapters.ChatChunk{Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{Content: &s}}}}
	}
	f.Open(Meta{Route: "p/m"}, text("a"))
	f.Publish(text("b"))
	f2, leader2 := g.Join("k")
	if leader2 || f2 != f {
		t.Fatal("second joiner does not follow")
	}
	_, first, err := f2.WaitOpen(context.Background())
	if err != nil || *first.Choices[0].Delta.Content != "a" {
		t.Fatal("follower did not get the first chunk")
	}
	r := f2.Reader(context.Background(), 1)
	if c, _ := r.Recv(); *c.Choices[0].Delta.Content != "b" {
		t.Fatal("follower missed a chunk sent before it joined")
	}
	f.Leave() // the leader's client goes: the call continues for the follower
	select {
	case <-cancelled:
		t.Fatal("cancelled while a follower reads")
	default:
	}
	r.Close()
	select {
	case <-cancelled:
	case <-time.After(time.Second):
		t.Fatal("not cancelled when every waiter left")
	}
	f.End(io.EOF)
	if g.Len() != 0 {
		t.Fatal("ended flight still in the group")
	}
}

// A coalesced stream longer than the group's bound keeps only what its slowest reader has
// yet to read, leaves the group (a later twin calls on its own), and every reader still
// gets every chunk in order.
func TestFlightOverItsBoundDropsWhatEveryReaderRead(t *testing.T) {
	g := NewGroup()
	g.max = 10 * 1024
	f, _ := g.Join("k")
	f2, _ := g.Join("k")
	text := func(i int) *adapters.ChatChunk {
		s := fmt.Sprintf("%04d", i) + strings.Repeat("x", 1020)
		return &adapters.ChatChunk{Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{Content: &s}}}}
	}
	f.Open(Meta{Route: "p/m"}, text(0))
	ctx := context.Background()
	if _, _, err := f.WaitOpen(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f2.WaitOpen(ctx); err != nil {
		t.Fatal(err)
	}
	fast, slow := f.Reader(ctx, 1), f2.Reader(ctx, 1)
	read := func(r adapters.ChunkStream, want int) {
		t.Helper()
		c, err := r.Recv()
		if err != nil || !strings.HasPrefix(*c.Choices[0].Delta.Content, fmt.Sprintf("%04d", want)) {
			t.Fatalf("chunk %d: %v %v", want, c, err)
		}
	}
	const n = 200 // ~250 KiB, 25 × the bound
	next := 1
	for i := 1; i < n; i++ {
		f.Publish(text(i))
		read(fast, i)
		if i%2 == 0 { // the slow reader lags further and further, then catches up below
			read(slow, next)
			next++
		}
	}
	if g.Len() != 0 {
		t.Error("a flight over its bound still takes joiners")
	}
	f.mu.Lock()
	kept, bytes := len(f.chunks), f.bytes
	f.mu.Unlock()
	if want := n - next; kept != want || bytes > want*1300 {
		t.Errorf("kept %d chunks (%d bytes), want the slow reader's %d unread", kept, bytes, want)
	}
	slow.Close() // the slow client leaves: what only it needed goes
	f.Publish(text(n))
	read(fast, n)
	f.mu.Lock()
	kept = len(f.chunks)
	f.mu.Unlock()
	if kept != 0 {
		t.Errorf("kept %d chunks after every reader read them", kept)
	}
	f.End(io.EOF)
	if _, err := fast.Recv(); err != io.EOF {
		t.Errorf("end: %v", err)
	}
	if _, _, _, ok := f.Answered(); ok {
		t.Error("a trimmed stream reports itself answered whole")
	}
	// A twin arriving now starts its own call; one holding the dropped start cannot read.
	if _, leader := g.Join("k"); !leader {
		t.Error("a twin joined a sealed flight")
	}
	late := f.Reader(ctx, 1)
	if _, err := late.Recv(); err != errFellBehind {
		t.Errorf("late reader: %v, want errFellBehind", err)
	}
}

func BenchmarkL1Get(b *testing.B) {
	c := New(Options{})
	k, _ := RequestKey("team:a", "p/m", req("hello"), false, 0)
	c.Put(context.Background(), k, &Entry{Response: &adapters.ChatResponse{ID: "x"}}, time.Hour)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Get(ctx, k); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkRequestKey(b *testing.B) {
	r := req("Summarise the benefits of policy-as-code for routing LLM traffic across providers in two sentences, please.")
	b.ReportAllocs()
	for b.Loop() {
		RequestKey("team:a", "p/m", r, false, 0)
	}
}

// BenchmarkCoalescedFollower is what a follower adds: join, wait for a finished answer, leave.
func BenchmarkCoalescedFollower(b *testing.B) {
	g := NewGroup()
	f, _ := g.Join("k")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		g.mu.Lock()
		g.m["k"] = f
		g.mu.Unlock()
		ff, _ := g.Join("k")
		if ff != f {
			b.Fatal("not joined")
		}
		ff.Leave()
	}
	f.Answer(Meta{}, &adapters.ChatResponse{})
	_, _, _ = f.Wait(ctx)
}

// A hit's answer is encoded once per entry and shared: the same bytes every time, those
// of the completion, clipped so that a reader's append cannot write into them.
func TestAnswerJSONIsEncodedOnce(t *testing.T) {
	s := "hello"
	e := &Entry{Response: &adapters.ChatResponse{ID: "x", Object: "chat.completion", Choices: []adapters.Choice{{Message: adapters.Message{Role: "assistant", Content: adapters.TextContent(s)}}}}}
	a := e.AnswerJSON()
	want, _ := json.Marshal(e.Response)
	if string(a) != string(want)+"\n" {
		t.Fatalf("AnswerJSON = %s, want %s", a, want)
	}
	if b := e.AnswerJSON(); &b[0] != &a[0] || cap(b) != len(b) {
		t.Fatal("not shared, or not clipped")
	}
	if (&Entry{Chunks: []*adapters.ChatChunk{{}}}).AnswerJSON() != nil {
		t.Fatal("a stream's entry has a JSON answer")
	}
}

func TestRenderedIsRenderedOncePerRendering(t *testing.T) {
	e := &Entry{Chunks: []*adapters.ChatChunk{{ID: "c1"}}}
	calls := 0
	render := func(s string) func() ([]byte, error) {
		return func() ([]byte, error) { calls++; return append(make([]byte, 0, 64), s...), nil }
	}
	a := e.Rendered(RenderChatSSE, render("plain"))
	b := e.Rendered(RenderChatSSE, render("other"))
	if string(a) != "plain" || &a[0] != &b[0] || cap(a) != len(a) || calls != 1 {
		t.Fatalf("rendered %q then %q, %d renders (cap %d)", a, b, calls, cap(a))
	}
	if u := e.Rendered(RenderChatSSEUsage, render("usage")); string(u) != "usage" || calls != 2 {
		t.Fatalf("the other rendering: %q after %d renders", u, calls)
	}
	failing := func() ([]byte, error) { calls++; return nil, errors.New("cannot encode") }
	f := &Entry{}
	first := f.Rendered(RenderChatSSE, failing)
	second := f.Rendered(RenderChatSSE, failing) // tried again: nothing was kept
	if first != nil || second != nil || calls != 4 {
		t.Fatalf("a failed rendering was kept (%d renders)", calls)
	}
}

// A hit's rendering grows an entry L1 already holds; L1's bound counts it, so entries that
// have been hit still fit in max_bytes all together.
func TestRenderingsCountAgainstTheL1Bound(t *testing.T) {
	text := strings.Repeat("x", 2000)
	fill := func(c *Cache, n int) []Key {
		var keys []Key
		for i := range n {
			k, _ := RequestKey("team:a", "p/m", req(fmt.Sprint("q", i)), false, 0)
			e := &Entry{Route: "p/m", Response: &adapters.ChatResponse{ID: fmt.Sprint("r", i), Choices: []adapters.Choice{{Message: adapters.Message{Role: "assistant", Content: adapters.TextContent(text)}}}}}
			if !c.Put(context.Background(), k, e, time.Minute) {
				t.Fatal("not stored")
			}
			keys = append(keys, k)
		}
		c.l1.CleanUp() // otter applies weights in its maintenance
		return keys
	}

	c := New(Options{})
	keys := fill(c, 4)
	before := c.Bytes()
	got, ok := c.Get(context.Background(), keys[0])
	if !ok {
		t.Fatal("miss")
	}
	body := got.AnswerJSON()
	c.l1.CleanUp()
	if grew := c.Bytes() - before; grew != int64(len(body)) {
		t.Fatalf("L1 grew by %d bytes after the first hit's rendering of %d", grew, len(body))
	}
	again := got.AnswerJSON()
	c.l1.CleanUp()
	if c.Bytes()-before != int64(len(body)) || &again[0] != &body[0] {
		t.Fatal("a second hit counted or rendered the answer again")
	}

	const bound = 64 << 10
	c = New(Options{MaxBytes: bound})
	keys = fill(c, 25) // ~57 KiB: under the bound until hits render
	for _, k := range keys {
		if e, ok := c.Get(context.Background(), k); ok {
			e.AnswerJSON()
			for _, slot := range []int{RenderChatSSE, RenderChatSSEUsage} {
				e.Rendered(slot, func() ([]byte, error) { return []byte(strings.Repeat("y", 3000)), nil })
			}
		}
	}
	c.l1.CleanUp()
	if n := c.Bytes(); n > bound {
		t.Fatalf("L1 holds %d bytes with its renderings, over its %d bound", n, bound)
	}
	evicted := 0
	for _, k := range keys {
		if _, ok := c.l1.GetIfPresent(k.String()); !ok {
			evicted++
		}
	}
	if evicted == 0 {
		t.Fatal("nothing was evicted: the renderings were not counted")
	}
}
