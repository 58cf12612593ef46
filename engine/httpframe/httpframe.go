// Package httpframe guards an http.Server against request smuggling by ambiguous framing
// (RFC 9112 §6.3): a request with both Content-Length and Transfer-Encoding is rejected and
// its connection closed. It works below net/http, on the listener's connections, because
// net/http drops Content-Length before any handler could see both.
package httpframe

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
)

// Request smuggling (RFC 9112 §6.3): a request with both Content-Length and
// Transfer-Encoding is framed differently by different HTTP implementations, and a server
// must close the connection after answering one. net/http follows Transfer-Encoding but
// deletes Content-Length before any handler runs and keeps the connection open, so gavel
// watches the bytes itself: Strict wraps the listener's connections with a small
// tracker of request heads and the handler with the check that uses it.
//
// The tracker follows message boundaries for requests framed by Content-Length (or with
// no body). At the first head with Transfer-Encoding it records whether Content-Length
// came too and stops: that request is answered 400 and the connection closed if both
// came, and otherwise (a plain chunked upload, rare from API clients) answered normally
// and the connection closed, so the tracker never has to parse chunked bodies.

// Strict makes hs answer requests with both Content-Length and Transfer-Encoding with
// reject (which writes the client's error; the connection is closed after it), and returns
// l wrapped for it: serve hs on the returned listener. Set hs.Handler first.
func Strict(hs *http.Server, l net.Listener, reject http.HandlerFunc) net.Listener {
	next := hs.Handler
	hs.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fc, ok := r.Context().Value(framingKey{}).(*framingConn); ok {
			switch fc.verdict() {
			case framingAmbiguous:
				w.Header().Set("Connection", "close")
				reject(w, r)
				return
			case framingUntracked:
				w.Header().Set("Connection", "close")
			}
		}
		next.ServeHTTP(w, r)
	})
	prev := hs.ConnContext
	hs.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prev != nil {
			ctx = prev(ctx, c)
		}
		if fc, ok := c.(*framingConn); ok {
			ctx = context.WithValue(ctx, framingKey{}, fc)
		}
		return ctx
	}
	// net/http answers "OPTIONS *" itself; every request must reach the handler so that
	// the handler's count matches the tracker's.
	hs.DisableGeneralOptionsHandler = true
	return framingListener{l}
}

type framingKey struct{}

type framingListener struct{ net.Listener }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	fc := &framingConn{Conn: c}
	fc.startHead()
	return fc, nil
}

// maxTrackedLine is how much of a header line the tracker keeps: enough for the names it
// looks for and any sane Content-Length.
const maxTrackedLine = 64

type framingConn struct {
	net.Conn

	// Read side: only the goroutine reading the connection touches these.
	state     int   // inHead, inBody or stopped
	body      int64 // bytes of the current body still to come
	line      [maxTrackedLine]byte
	lineLen   int
	truncated bool // the current line is longer than line
	first     bool // the current line is a request line
	hasCL     bool
	hasTE     bool
	clValue   int64
	badCL     bool
	heads     int64 // heads seen completely

	// Shared with the handler.
	stoppedAt atomic.Int64 // head number (1-based) at which tracking stopped; 0: still tracking
	ambiguous atomic.Bool  // that head had both Content-Length and Transfer-Encoding
	served    atomic.Int64 // requests the handler has seen
}

const (
	inHead = iota
	inBody
	stopped
)

type framingVerdict int

const (
	framingOK        framingVerdict = iota
	framingAmbiguous                // both headers: reject and close
	framingUntracked                // framing not followed from here on: close after answering
)

// verdict counts one request reaching the handler and says how to treat it. net/http
// serves a connection's requests one after another, in order, so the n-th call is the
// n-th head.
func (c *framingConn) verdict() framingVerdict {
	n := c.served.Add(1)
	at := c.stoppedAt.Load()
	switch {
	case at == 0 || n < at:
		return framingOK
	case n == at && c.ambiguous.Load():
		return framingAmbiguous
	}
	return framingUntracked
}

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.state != stopped {
		c.track(p[:n])
	}
	return n, err
}

// track follows request boundaries through b.
func (c *framingConn) track(b []byte) {
	for len(b) > 0 && c.state != stopped {
		if c.state == inBody {
			k := int64(len(b))
			if k > c.body {
				k = c.body
			}
			c.body -= k
			b = b[k:]
			if c.body == 0 {
				c.startHead()
			}
			continue
		}
		i := bytes.IndexByte(b, '\n')
		part := b
		if i >= 0 {
			part = b[:i]
		}
		if room := maxTrackedLine - c.lineLen; len(part) > room {
			c.truncated = true
			part = part[:room]
		}
		c.lineLen += copy(c.line[c.lineLen:], part)
		if i < 0 {
			return
		}
		b = b[i+1:]
		c.endLine()
	}
}

func (c *framingConn) startHead() {
	c.state, c.first, c.hasCL, c.hasTE, c.badCL, c.clValue = inHead, true, false, false, false, 0
}

// endLine handles one complete line of a head (without its LF).
func (c *framingConn) endLine() {
	line := c.line[:c.lineLen]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	truncated := c.truncated
	c.lineLen, c.truncated = 0, false
	if c.first {
		c.first = false
		return // the request line
	}
	if len(line) == 0 { // the end of the head
		c.heads++
		switch {
		case c.hasTE:
			c.stop(c.hasCL)
		case c.badCL:
			c.stop(false) // net/http refuses it and closes; nothing more to follow
		case c.hasCL && c.clValue > 0:
			c.state, c.body = inBody, c.clValue
		default:
			c.startHead()
		}
		return
	}
	if line[0] == ' ' || line[0] == '\t' {
		return // a folded continuation: it cannot start a header
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return // malformed: net/http refuses the request and closes
	}
	name, value := line[:colon], line[colon+1:]
	switch {
	case asciiEqualFold(name, "transfer-encoding"):
		c.hasTE = true
	case asciiEqualFold(name, "content-length"):
		v, err := strconv.ParseInt(string(bytes.TrimSpace(value)), 10, 64)
		if truncated || err != nil || v < 0 || (c.hasCL && v != c.clValue) {
			c.badCL = true
		}
		c.hasCL, c.clValue = true, v
	}
}

// stop ends tracking at the head just completed.
func (c *framingConn) stop(ambiguous bool) {
	c.ambiguous.Store(ambiguous)
	c.stoppedAt.Store(c.heads)
	c.state = stopped
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x := b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != s[i] {
			return false
		}
	}
	return true
}
