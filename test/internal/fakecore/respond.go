package fakecore

import (
	"net/http"
	"time"
)

// Fault is a failure injected into an otherwise successful response. The fakes' own Fault
// types share these values (NoFault 0, Abort 1, Hang 2); other values are handled by the
// fakes' rendering and ignored here.
type Fault int

// Faults Reply can inject.
const (
	NoFault Fault = iota
	// FaultAbort breaks the connection off (see Abort).
	FaultAbort
	// FaultHang stops writing until the client goes away or the server closes.
	FaultHang
)

// Reply is a rendered response and how to send it.
type Reply struct {
	Status int    // the HTTP status; a stream is a 200
	Stream bool   // Body is a sequence of events ending at Ends
	Body   []byte // the whole body, or all events back to back
	Ends   []int  // stream only: end offset in Body of each event
	Tail   []byte // stream only: written after the last event when the stream ends normally

	Latency       time.Duration // waited before the headers
	ChunkInterval time.Duration // waited between consecutive events
	// Fault is injected after FaultAfter events of a stream. In a non-streamed 200,
	// FaultAfter <= 0 fails before any response byte, FaultAfter > 0 after the headers
	// and half the body. Error responses never fail.
	Fault      Fault
	FaultAfter int
}

func (rep *Reply) failing() bool {
	return rep.Status == http.StatusOK && (rep.Fault == FaultAbort || rep.Fault == FaultHang)
}

// Prelude waits the reply's latency and performs a fault due before any response byte.
// It reports whether the caller should go on: set its headers and call Send. Body, Ends
// and Tail are not used yet.
func (c *Server) Prelude(w http.ResponseWriter, r *http.Request, rep *Reply) bool {
	if !c.Sleep(r.Context(), rep.Latency) {
		c.cut()
		return false
	}
	if rep.failing() && !rep.Stream && rep.FaultAfter <= 0 {
		c.fault(w, r, rep.Fault, false)
		return false
	}
	return true
}

// Send writes the status and the body of a reply whose headers the caller has set, or its
// events one by one, flushing each like a real upstream, waiting ChunkInterval between
// them and stopping as soon as the client is gone; and injects the reply's fault.
func (c *Server) Send(w http.ResponseWriter, r *http.Request, rep *Reply) {
	failing := rep.failing()
	if !rep.Stream {
		w.WriteHeader(rep.Status)
		if failing { // FaultAfter > 0: half the body, then the fault
			_, _ = w.Write(rep.Body[:len(rep.Body)/2])
			c.fault(w, r, rep.Fault, true)
			return
		}
		_, _ = w.Write(rep.Body)
		return
	}

	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	start := 0
	for i, end := range rep.Ends {
		if failing && i == rep.FaultAfter {
			c.fault(w, r, rep.Fault, true)
			return
		}
		if i > 0 && !c.Sleep(r.Context(), rep.ChunkInterval) {
			c.cut() // the stream must not look complete
			return
		}
		if r.Context().Err() != nil {
			return
		}
		if _, err := w.Write(rep.Body[start:end]); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		start = end
	}
	if failing { // FaultAfter beyond the last event: fail instead of ending cleanly
		c.fault(w, r, rep.Fault, true)
		return
	}
	if len(rep.Tail) > 0 {
		_, _ = w.Write(rep.Tail)
	}
}

// cut ends a response whose wait was cut short: with Options.Drop it drops the connection.
func (c *Server) cut() {
	if c.opts.Drop {
		panic(http.ErrAbortHandler)
	}
}

// fault performs an Abort or a Hang. wroteHeader says whether headers (and maybe part of
// the body) have been written: a hang then flushes them so the client sees them first.
func (c *Server) fault(w http.ResponseWriter, r *http.Request, f Fault, wroteHeader bool) {
	switch f {
	case FaultAbort:
		// Hijacking flushes what was written, then we close without the terminating chunk.
		Abort(w)
	case FaultHang:
		if wroteHeader {
			_ = http.NewResponseController(w).Flush()
		}
		c.Hang(r.Context())
		c.cut()
	}
}
