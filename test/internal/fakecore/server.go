// Package fakecore holds the mechanics the fake upstreams of gavel's end-to-end tests
// (test/fakeupstream, test/fakeanthropic, test/fakegemini) share: a loopback HTTP server
// with in-flight and stream counters and a Close that releases hanging handlers, per-model
// step queues with defaults, request recording, and the writing of responses with
// latency, paced stream events and injected faults (abort, hang).
//
// The wire formats, rendering, validation and error bodies stay in each fake.
package fakecore

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// AnyModel is the model name whose scripts and default apply to every model that has none
// of its own.
const AnyModel = "*"

// Options configure a Server.
type Options struct {
	// Name prefixes error messages, e.g. "fakeupstream".
	Name string
	// Path is appended to "http://host:port" to form URL, e.g. "/v1"; may be empty.
	Path string
	// Drop makes a response whose wait (latency, event interval, hang) is cut short by
	// the client or by Close drop the connection (panic(http.ErrAbortHandler)) instead of
	// returning normally, so that neither an implicit empty 200 nor the clean end of a
	// chunked stream is sent.
	Drop bool
}

// Server is the core of a running fake: the listener, the http.Server and the counters.
// All methods are safe for concurrent use.
type Server struct {
	opts Options
	url  string
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed by Close: releases hanging handlers
	stop sync.Once

	inFlight      atomic.Int64
	activeStreams atomic.Int64
}

// Listen listens on addr ("127.0.0.1:9999", or port 0 for any); Serve starts serving.
func Listen(addr string, opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Server{
		opts: opts,
		url:  "http://" + ln.Addr().String() + opts.Path,
		ln:   ln,
		done: make(chan struct{}),
	}, nil
}

// Serve serves h in the background until Close.
func (c *Server) Serve(h http.Handler) {
	c.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
	}
	srv := c.srv
	go func() { _ = srv.Serve(c.ln) }()
}

// URL returns the server's base URL including Options.Path.
func (c *Server) URL() string { return c.url }

// Close stops the server, releases hanging responses and waits (up to 5 s) for handlers.
func (c *Server) Close() {
	c.stop.Do(func() {
		close(c.done)
		if c.srv != nil {
			_ = c.srv.Close()
		} else {
			_ = c.ln.Close()
		}
		for deadline := time.Now().Add(5 * time.Second); c.inFlight.Load() > 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	})
}

// RequestStarted and RequestDone bracket the handling of any request (see InFlight).
func (c *Server) RequestStarted() { c.inFlight.Add(1) }

// RequestDone ends what RequestStarted began.
func (c *Server) RequestDone() { c.inFlight.Add(-1) }

// StreamStarted and StreamDone bracket the handling of a streamed request (see
// ActiveStreams).
func (c *Server) StreamStarted() { c.activeStreams.Add(1) }

// StreamDone ends what StreamStarted began.
func (c *Server) StreamDone() { c.activeStreams.Add(-1) }

// ActiveStreams returns how many streamed requests are being handled right now.
func (c *Server) ActiveStreams() int { return int(c.activeStreams.Load()) }

// InFlight returns how many requests of any kind are being handled right now.
func (c *Server) InFlight() int { return int(c.inFlight.Load()) }

// WaitIdle waits until no streamed request is active, or ctx ends.
func (c *Server) WaitIdle(ctx context.Context) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for c.ActiveStreams() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %d streams still active: %w", c.opts.Name, c.ActiveStreams(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// Sleep waits d; it reports false if ctx ended or the server closed meanwhile.
func (c *Server) Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-c.done:
	}
	return false
}

// Hang blocks until ctx ends or the server closes.
func (c *Server) Hang(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-c.done:
	}
}

// Abort hijacks the connection of w, flushes what was written to it and closes it, so the
// client sees the response break off (without the terminating chunk of a chunked body).
func Abort(w http.ResponseWriter) {
	conn, bufrw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	_ = bufrw.Flush()
	_ = conn.Close()
}
