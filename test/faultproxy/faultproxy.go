// Package faultproxy is a loopback TCP proxy with switchable faults, in the spirit of
// toxiproxy, for gavel's drills and end-to-end tests.
//
//	p, _ := faultproxy.New("127.0.0.1:8081") // forwards 127.0.0.1:<random> → 127.0.0.1:8081
//	defer p.Close()
//	p.Set(faultproxy.Faults{Cut: true, CutAfter: 300}) // every response dies after 300 bytes
//
// Faults act on the downstream direction (target → client), where a gateway meets broken
// upstreams and slow readers; the upstream direction is only rate-limited. They are read
// afresh for every chunk, so Set takes effect on open connections too, and byte offsets
// count per connection. It is written here rather than imported because toxiproxy is a
// server with an HTTP control API and its own module graph, and everything a drill needs
// is a few hundred lines over net.Conn.
package faultproxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Faults is what the proxy does to the connections it forwards. The zero value forwards
// everything untouched.
type Faults struct {
	// Refuse accepts each new connection and resets it at once, as a dead upstream would.
	// Open connections are left alone; CloseConns drops them too.
	Refuse bool
	// Delay holds the first downstream bytes of each connection (the response headers)
	// this long.
	Delay time.Duration
	// Stall stops forwarding downstream after StallAfter bytes but keeps both connections
	// open, so the client waits on a live socket that never speaks again.
	Stall      bool
	StallAfter int64
	// Cut closes both connections after CutAfter downstream bytes: a TCP drop mid-response.
	// The close is an orderly one (FIN), so the client reads exactly CutAfter bytes and
	// then an unexpected end; a reset could discard bytes it had not read yet.
	Cut      bool
	CutAfter int64
	// Corrupt flips every downstream byte from offset CorruptAfter on.
	Corrupt      bool
	CorruptAfter int64
	// DownRate and UpRate, when positive, cap each connection's bytes per second towards
	// the client and towards the target: a slow reader and a slow writer.
	DownRate int
	UpRate   int
}

// Proxy forwards connections from its loopback listener to a target address. Its methods
// are safe for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener
	faults atomic.Pointer[Faults]

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup

	accepted   atomic.Int64
	refused    atomic.Int64
	dialFailed atomic.Int64
	dialErr    atomic.Pointer[error]
}

// New listens on a free 127.0.0.1 port and forwards to target.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.faults.Store(&Faults{})
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address ("127.0.0.1:port").
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Set replaces the faults; open connections see the change at their next chunk.
func (p *Proxy) Set(f Faults) { p.faults.Store(&f) }

// Clear removes every fault.
func (p *Proxy) Clear() { p.Set(Faults{}) }

// Accepted is how many connections the proxy accepted, refused ones included.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Refused is how many connections Refuse reset.
func (p *Proxy) Refused() int64 { return p.refused.Load() }

// DialFailed is how many accepted connections were reset because the target could not be
// reached, and DialErr the last such error (nil if none): a proxy that fails its own
// connects must not pass for a fault of the system under test.
func (p *Proxy) DialFailed() int64 { return p.dialFailed.Load() }

// DialErr is the last error dialing the target, nil if none.
func (p *Proxy) DialErr() error {
	if e := p.dialErr.Load(); e != nil {
		return *e
	}
	return nil
}

// Open is how many connections (client and target sides) are open now.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// CloseConns drops every open connection without stopping the listener.
func (p *Proxy) CloseConns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Close stops listening, drops every connection and waits for the proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.CloseConns()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.accepted.Add(1)
		if p.faults.Load().Refuse {
			p.refused.Add(1)
			reset(c)
			continue
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go p.handle(c)
	}
}

// reset closes c with an RST rather than a FIN, which is what a client of a refusing
// host sees once the connect has raced through the backlog.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

// handle forwards one connection until either side ends it or a fault does.
func (p *Proxy) handle(client net.Conn) {
	defer p.wg.Done()
	target, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		p.dialFailed.Add(1)
		p.dialErr.Store(&err)
	}
	if err != nil || !p.track(target) {
		if target != nil {
			target.Close()
		}
		reset(client)
		p.untrack(client)
		return
	}
	done := make(chan struct{})
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			client.Close()
			target.Close()
			close(done)
		})
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.up(client, target)
		closeBoth()
	}()
	p.down(target, client, done)
	closeBoth()
	p.untrack(client, target)
}

// up copies client → target, paced by UpRate.
func (p *Proxy) up(src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if werr := paced(dst, buf[:n], p.faults.Load().UpRate); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// down copies target → client applying the faults; done closes when the connection ends.
// A chunk is forwarded in slices (a tenth of a second's worth under DownRate), each under
// the faults as they are then, so Set reaches a connection in the middle of a response.
func (p *Proxy) down(src, dst net.Conn, done <-chan struct{}) {
	buf := make([]byte, 32<<10)
	var sent int64
	first := true
	for {
		n, err := src.Read(buf)
		for chunk := buf[:n]; len(chunk) > 0; {
			f := p.faults.Load()
			if first && f.Delay > 0 {
				select {
				case <-time.After(f.Delay):
				case <-done:
					return
				}
			}
			first = false
			piece := chunk
			if f.DownRate > 0 {
				piece = chunk[:min(len(chunk), max(1, f.DownRate/10))]
			}
			chunk = chunk[len(piece):]
			end := "" // why this piece is the last one forwarded
			if f.Stall && sent+int64(len(piece)) >= f.StallAfter {
				piece, end = piece[:max(0, f.StallAfter-sent)], "stall"
			}
			if f.Cut && sent+int64(len(piece)) >= f.CutAfter {
				piece, end = piece[:max(0, f.CutAfter-sent)], "cut"
			}
			if f.Corrupt {
				for i := range piece {
					if sent+int64(i) >= f.CorruptAfter {
						piece[i] ^= 0xff
					}
				}
			}
			if werr := paced(dst, piece, f.DownRate); werr != nil {
				return
			}
			sent += int64(len(piece))
			switch end {
			case "stall":
				<-done // the client gives up, or Close drops the connection
				return
			case "cut":
				return // the caller closes both sides
			}
		}
		if err != nil {
			return
		}
	}
}

// paced writes b to w, at most rate bytes a second when rate > 0, in slices of a tenth of
// a second's worth so a slow link trickles instead of bursting.
func paced(w net.Conn, b []byte, rate int) error {
	if rate <= 0 {
		_, err := w.Write(b)
		return err
	}
	step := max(1, rate/10)
	for len(b) > 0 {
		n := min(step, len(b))
		start := time.Now()
		if _, err := w.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
		if wait := time.Duration(n)*time.Second/time.Duration(rate) - time.Since(start); wait > 0 {
			time.Sleep(wait)
		}
	}
	return nil
}
