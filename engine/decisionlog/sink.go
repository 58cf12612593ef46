package decisionlog

import (
	"bufio"
	"context"
	"io"
	"sync"
)

// Sink receives every encoded event (one JSON object ending in a newline) on the logger's
// goroutine, never on a request's. The line is shared with the lookup ring and other sinks:
// a sink may keep it but must not modify it. Write must not block for long: a sink that
// talks to something slow queues and drops on its own (see Service).
type Sink interface {
	Name() string
	Write(line []byte)
}

// Flusher is implemented by sinks that buffer: the logger flushes them whenever it has
// caught up with the queue, so writes are batched under load and prompt when idle.
type Flusher interface {
	Flush()
}

// Closer is implemented by sinks that hold resources; Close delivers what is buffered
// within ctx's deadline and counts the rest as dropped.
type Closer interface {
	Close(ctx context.Context) error
}

// Observer counts what happens to events; *telemetry.Metrics implements it. outcome is
// "ok" or "error"; dropped events never reached their sink ("buffer" names the request
// path's queue).
type Observer interface {
	DecisionLogEvents(sink, outcome string, n int)
	DecisionLogDropped(sink string, n int)
}

type nopObserver struct{}

func (nopObserver) DecisionLogEvents(string, string, int) {}
func (nopObserver) DecisionLogDropped(string, int)        {}

func observerOrNop(o Observer) Observer {
	if o == nil {
		return nopObserver{}
	}
	return o
}

// Console writes events to a writer (stdout), one JSON line each.
type Console struct {
	mu  sync.Mutex
	w   *bufio.Writer
	obs Observer
}

var (
	_ Sink    = (*Console)(nil)
	_ Flusher = (*Console)(nil)
	_ Closer  = (*Console)(nil)
)

// NewConsole returns a console sink over w.
func NewConsole(w io.Writer, obs Observer) *Console {
	return &Console{w: bufio.NewWriterSize(w, 64<<10), obs: observerOrNop(obs)}
}

// Name implements Sink.
func (c *Console) Name() string { return "console" }

// Write implements Sink.
func (c *Console) Write(line []byte) {
	c.mu.Lock()
	_, err := c.w.Write(line)
	c.mu.Unlock()
	count(c.obs, "console", err)
}

// Flush implements Flusher.
func (c *Console) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.w.Flush()
}

// Close implements Closer; the writer itself (stdout) is not closed.
func (c *Console) Close(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.Flush()
}

func count(obs Observer, sink string, err error) {
	if err != nil {
		obs.DecisionLogEvents(sink, "error", 1)
		obs.DecisionLogDropped(sink, 1)
		return
	}
	obs.DecisionLogEvents(sink, "ok", 1)
}
