package cache

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

// Group coalesces identical requests in flight: the first to Join a key leads (it starts
// the one upstream call and feeds the Flight), the others follow, each reading the
// answer, or the stream from its first chunk, at its own pace. Safe for concurrent use.
type Group struct {
	mu  sync.Mutex
	m   map[string]*Flight
	max int // MaxFlightBytes; tests lower it
}

// MaxFlightBytes bounds what a coalesced stream keeps for its followers, counted as
// ChunkBytes does. A follower reads from the first chunk, so a flight keeps every chunk
// until it holds this much; then it leaves its group (an identical request arriving later
// makes a call of its own) and drops the chunks every follower has read. A long answer then
// costs memory only for what the slowest follower has yet to write (a stalled client is cut
// off by the server's write-stall bound), not the whole answer per flight.
const MaxFlightBytes = 4 << 20

// NewGroup returns an empty group.
func NewGroup() *Group { return &Group{m: map[string]*Flight{}, max: MaxFlightBytes} }

// ChunkBytes is what a chunk is counted for against a size bound: its text and tool-call
// arguments, plus 256 bytes for the rest (ids, model, the structs).
func ChunkBytes(c *adapters.ChatChunk) int {
	n := 256
	for i := range c.Choices {
		d := &c.Choices[i].Delta
		if d.Content != nil {
			n += len(*d.Content)
		}
		if d.Refusal != nil {
			n += len(*d.Refusal)
		}
		for j := range d.ToolCalls {
			n += len(d.ToolCalls[j].Function.Arguments) + len(d.ToolCalls[j].Function.Name) + len(d.ToolCalls[j].ID)
		}
		n += len(c.Choices[i].Logprobs)
	}
	return n
}

// Meta is what the upstream call said besides its answer.
type Meta struct {
	Route    string
	Upstream time.Duration
	Dropped  []string
}

// Flight is one upstream call shared by the requests that joined it.
type Flight struct {
	g   *Group
	key string

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever something below changes
	opened  bool          // meta is known: the answer, or the stream's first chunk, arrived
	meta    Meta
	resp    *adapters.ChatResponse
	chunks  []*adapters.ChatChunk // the stream from chunk base on
	base    int                   // the index of chunks[0]: the ones before were dropped
	bytes   int                   // ChunkBytes of chunks
	sealed  bool                  // over the group's bound: out of the group, chunks dropped as read
	readers map[*tee]struct{}     // the open Readers, whose positions say what may be dropped
	done    bool
	err     error // the call's failure; io.EOF is not one
	waiters int
	keep    bool               // the call outlives its waiters (idempotent requests)
	tag     string             // what the leader's request was (an idempotent body's hash)
	cancel  context.CancelFunc // ends the call when nobody waits for it any more
}

// Join joins the flight under key, or starts one whose caller leads. Every Join is
// matched by one Leave.
func (g *Group) Join(key string) (f *Flight, leader bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f = g.m[key]; f != nil {
		f.mu.Lock()
		f.waiters++
		f.mu.Unlock()
		return f, false
	}
	f = &Flight{g: g, key: key, changed: make(chan struct{}), waiters: 1}
	g.m[key] = f
	return f, true
}

// Lookup returns the flight in progress under key, nil when there is none; the caller
// does not join it.
func (g *Group) Lookup(key string) *Flight {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.m[key]
}

// Len is the number of flights in progress.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.m)
}

// Start hands the leader's call to the flight: cancel ends it when every waiter has left
// (unless keep: an idempotent request's call is finished for its retry).
func (f *Flight) Start(cancel context.CancelFunc, keep bool) {
	f.mu.Lock()
	f.cancel, f.keep = cancel, keep
	f.mu.Unlock()
}

// Tag records what the leader's request was, for followers to compare (Tagged).
func (f *Flight) Tag(s string) {
	f.mu.Lock()
	f.tag = s
	f.mu.Unlock()
}

// Tagged is the leader's Tag.
func (f *Flight) Tagged() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tag
}

func (f *Flight) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Answer ends a buffered call with its answer.
func (f *Flight) Answer(m Meta, r *adapters.ChatResponse) {
	f.mu.Lock()
	f.meta, f.resp, f.opened = m, r, true
	f.finish(nil)
	f.mu.Unlock()
	f.leaveGroup()
}

// Open records a stream's first chunk and what the call said.
func (f *Flight) Open(m Meta, first *adapters.ChatChunk) {
	f.mu.Lock()
	f.meta, f.opened = m, true
	f.chunks = append(f.chunks, first)
	f.notify()
	f.mu.Unlock()
}

// Publish adds a stream's next chunk. Past the group's bound the flight seals (see
// MaxFlightBytes) and from then on keeps only the chunks a reader has yet to read.
func (f *Flight) Publish(c *adapters.ChatChunk) {
	f.mu.Lock()
	f.chunks = append(f.chunks, c)
	f.bytes += ChunkBytes(c)
	seal := !f.sealed && f.bytes > f.g.max
	if seal {
		f.sealed = true
	}
	if f.sealed {
		f.trim()
	}
	f.notify()
	f.mu.Unlock()
	if seal {
		f.leaveGroup()
	}
}

// trim drops the chunks every reader has read; f.mu held. Chunk 0 stays while the stream
// has not opened for a reader yet (WaitOpen returns it).
func (f *Flight) trim() {
	low := f.base + len(f.chunks)
	for t := range f.readers {
		low = min(low, t.i)
	}
	n := low - f.base
	if n <= 0 {
		return
	}
	for _, c := range f.chunks[:n] {
		f.bytes -= ChunkBytes(c)
	}
	clear(f.chunks[:n])
	f.chunks = f.chunks[n:]
	f.base = low
}

// End ends the call: err nil (or io.EOF) when it completed. The flight leaves the group,
// so a request arriving after it starts a new one (or finds the cache).
func (f *Flight) End(err error) {
	if err == io.EOF {
		err = nil
	}
	f.mu.Lock()
	f.finish(err)
	f.mu.Unlock()
	f.leaveGroup()
}

func (f *Flight) finish(err error) {
	if f.done {
		return
	}
	f.done, f.err = true, err
	f.notify()
}

// leaveGroup takes the ended flight out of its group; called without f.mu held (Join
// locks the group, then the flight). A request joining in between reads the finished
// answer.
func (f *Flight) leaveGroup() {
	f.g.mu.Lock()
	if f.g.m[f.key] == f {
		delete(f.g.m, f.key)
	}
	f.g.mu.Unlock()
}

// Leave says a waiter no longer reads the flight. When none is left and the call is
// still running, it is cancelled, unless it is kept.
func (f *Flight) Leave() {
	f.mu.Lock()
	f.waiters--
	cancel := f.waiters == 0 && !f.done && !f.keep && f.cancel != nil
	f.mu.Unlock()
	if cancel {
		f.cancel()
	}
}

// Wait waits for a buffered call's answer, or for ctx.
func (f *Flight) Wait(ctx context.Context) (Meta, *adapters.ChatResponse, error) {
	for {
		f.mu.Lock()
		done, ch := f.done, f.changed
		m, r, err := f.meta, f.resp, f.err
		f.mu.Unlock()
		if done {
			if err == nil && r == nil {
				err = errNoAnswer
			}
			return m, r, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Meta{}, nil, ctx.Err()
		}
	}
}

// WaitOpen waits for a stream's first chunk (or its failure before one), or for ctx.
func (f *Flight) WaitOpen(ctx context.Context) (Meta, *adapters.ChatChunk, error) {
	for {
		f.mu.Lock()
		opened, done, ch := f.opened, f.done, f.changed
		m, err := f.meta, f.err
		var first *adapters.ChatChunk
		if len(f.chunks) > 0 && f.base == 0 {
			first = f.chunks[0]
		}
		f.mu.Unlock()
		switch {
		case opened && first != nil:
			return m, first, nil
		case done, f.base > 0:
			if err == nil {
				err = errNoAnswer // or its start is gone: the follower makes its own call
			}
			return Meta{}, nil, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Meta{}, nil, ctx.Err()
		}
	}
}

// Reader reads the flight's stream from its chunk at index from (1: the chunk after
// the first, which WaitOpen returned). Its Close leaves the flight.
func (f *Flight) Reader(ctx context.Context, from int) adapters.ChunkStream {
	t := &tee{f: f, ctx: ctx, i: from}
	f.mu.Lock()
	if f.readers == nil {
		f.readers = map[*tee]struct{}{}
	}
	f.readers[t] = struct{}{}
	f.mu.Unlock()
	return t
}

// Answered is a completed flight's answer: its chunks or its completion. ok is false while
// it runs, when it failed, and when it dropped chunks (a stream over the bound).
func (f *Flight) Answered() (m Meta, r *adapters.ChatResponse, chunks []*adapters.ChatChunk, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.meta, f.resp, f.chunks, f.done && f.err == nil && f.base == 0
}

type tee struct {
	f      *Flight
	ctx    context.Context
	i      int
	closed bool
}

// Recv implements adapters.ChunkStream: the next chunk, waiting for it if the upstream
// has not sent it yet; the call's error after the last chunk it sent.
func (t *tee) Recv() (*adapters.ChatChunk, error) {
	for {
		f := t.f
		f.mu.Lock()
		if t.i < f.base {
			// Opened before the flight sealed, but not read from until the chunks it
			// needed were dropped: it cannot go on where it is.
			f.mu.Unlock()
			return nil, errFellBehind
		}
		if t.i-f.base < len(f.chunks) {
			c := f.chunks[t.i-f.base]
			t.i++
			if f.sealed {
				f.trim()
			}
			f.mu.Unlock()
			return c, nil
		}
		done, err, ch := f.done, f.err, f.changed
		f.mu.Unlock()
		if done {
			if err == nil {
				err = io.EOF
			}
			return nil, err
		}
		select {
		case <-ch:
		case <-t.ctx.Done():
			return nil, t.ctx.Err()
		}
	}
}

// Close implements adapters.ChunkStream.
func (t *tee) Close() error {
	if !t.closed {
		t.closed = true
		t.f.mu.Lock()
		delete(t.f.readers, t)
		if t.f.sealed {
			t.f.trim()
		}
		t.f.mu.Unlock()
		t.f.Leave()
	}
	return nil
}

type flightError string

func (e flightError) Error() string { return string(e) }

const (
	errNoAnswer   = flightError("cache: the shared call ended without an answer")
	errFellBehind = flightError("cache: the shared stream dropped chunks this reader had not read")
)
