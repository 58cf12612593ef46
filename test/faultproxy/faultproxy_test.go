package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// payload is what the echo-less target sends to every connection.
var payload = bytes.Repeat([]byte("0123456789"), 1000) // 10 000 bytes

// target is a TCP server that writes payload to each connection, then waits for the
// client to hang up, and reports every byte the client sent on got.
func target(t *testing.T) (addr string, got chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got = make(chan []byte, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write(payload)
				b, _ := io.ReadAll(c)
				got <- b
			}()
		}
	}()
	return ln.Addr().String(), got
}

func proxy(t *testing.T, f Faults) (*Proxy, chan []byte) {
	t.Helper()
	addr, got := target(t)
	p, err := New(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	p.Set(f)
	return p, got
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readFor reads from c until it ends or d passes, returning the bytes, how long the first
// byte took, and the error that ended the read (os.ErrDeadlineExceeded when d passed).
func readFor(c net.Conn, d time.Duration) (got []byte, first time.Duration, err error) {
	start := time.Now()
	c.SetReadDeadline(start.Add(d))
	buf := make([]byte, 4096)
	for {
		n, rerr := c.Read(buf)
		if n > 0 && got == nil {
			first = time.Since(start)
		}
		got = append(got, buf[:n]...)
		if rerr != nil {
			return got, first, rerr
		}
	}
}

func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults Faults
		within time.Duration
		check  func(t *testing.T, got []byte, first time.Duration, err error)
	}{
		{"none", Faults{}, 300 * time.Millisecond, func(t *testing.T, got []byte, _ time.Duration, err error) {
			if !bytes.Equal(got, payload) || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("got %d bytes (%v), want the whole payload on an open connection", len(got), err)
			}
		}},
		{"refuse", Faults{Refuse: true}, 2 * time.Second, func(t *testing.T, got []byte, _ time.Duration, err error) {
			if len(got) != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("got %d bytes, err %v; want nothing and a closed connection", len(got), err)
			}
		}},
		{"delay", Faults{Delay: 300 * time.Millisecond}, 800 * time.Millisecond, func(t *testing.T, got []byte, first time.Duration, _ error) {
			if first < 300*time.Millisecond || !bytes.Equal(got, payload) {
				t.Fatalf("first byte after %v, %d bytes; want ≥ 300ms and the payload", first, len(got))
			}
		}},
		{"stall", Faults{Stall: true, StallAfter: 1234}, 500 * time.Millisecond, func(t *testing.T, got []byte, _ time.Duration, err error) {
			if !bytes.Equal(got, payload[:1234]) || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("got %d bytes (%v); want 1234 and a connection that stays open", len(got), err)
			}
		}},
		{"cut", Faults{Cut: true, CutAfter: 777}, 2 * time.Second, func(t *testing.T, got []byte, _ time.Duration, err error) {
			if !bytes.Equal(got, payload[:777]) || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("got %d bytes (%v); want 777 then a closed connection", len(got), err)
			}
		}},
		{"corrupt", Faults{Corrupt: true, CorruptAfter: 100}, 300 * time.Millisecond, func(t *testing.T, got []byte, _ time.Duration, _ error) {
			if len(got) != len(payload) || !bytes.Equal(got[:100], payload[:100]) {
				t.Fatalf("got %d bytes; want %d with the first 100 intact", len(got), len(payload))
			}
			for i := 100; i < len(got); i++ {
				if got[i] != payload[i]^0xff {
					t.Fatalf("byte %d = %#x, want it flipped", i, got[i])
				}
			}
		}},
		{"slow read", Faults{DownRate: 20000}, 1500 * time.Millisecond, func(t *testing.T, got []byte, first time.Duration, err error) {
			// 10 000 bytes at 20 kB/s: about half a second, and never all of it at once.
			if !bytes.Equal(got, payload) {
				t.Fatalf("got %d bytes (%v)", len(got), err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := proxy(t, tc.faults)
			c, err := net.Dial("tcp", p.Addr())
			if err != nil {
				if tc.faults.Refuse {
					return // the reset beat the connect: refused all the same
				}
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			got, first, err := readFor(c, tc.within)
			tc.check(t, got, first, err)
			if tc.name == "slow read" {
				// The whole payload arrived, yet the deadline was not what ended the read
				// in under ~0.45 s: pacing held it back.
				if d := time.Since(start); d < 400*time.Millisecond {
					t.Errorf("10 000 bytes at 20 kB/s took %v", d)
				}
			}
		})
	}
}

// The slow-read case above only knows the total took long; this one waits for the data
// with a deadline, so a proxy that ignored the rate would fail it too.
func TestSlowReadTrickles(t *testing.T) {
	p, _ := proxy(t, Faults{DownRate: 10000})
	c := dial(t, p)
	got, _, _ := readFor(c, 300*time.Millisecond)
	if len(got) == 0 || len(got) >= len(payload)/2 {
		t.Fatalf("%d bytes in 300ms at 10 kB/s; want some but under half of %d", len(got), len(payload))
	}
}

func TestUpRateAndForwarding(t *testing.T) {
	p, got := proxy(t, Faults{UpRate: 5000})
	c := dial(t, p)
	msg := bytes.Repeat([]byte("x"), 1000)
	start := time.Now()
	c.Write(msg)
	c.(*net.TCPConn).CloseWrite()
	readFor(c, 2*time.Second) // drain the payload until the proxy closes
	select {
	case b := <-got:
		if !bytes.Equal(b, msg) {
			t.Fatalf("target got %d bytes, want 1000", len(b))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("target never saw the client hang up")
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("1000 bytes at 5 kB/s arrived in %v", d)
	}
}

// Set applies to open connections: a connection streaming freely stalls when told to.
func TestSetAppliesToOpenConnections(t *testing.T) {
	p, _ := proxy(t, Faults{DownRate: 10000})
	c := dial(t, p)
	got, _, _ := readFor(c, 200*time.Millisecond)
	p.Set(Faults{Cut: true})
	more, _, err := readFor(c, 2*time.Second)
	if errors.Is(err, os.ErrDeadlineExceeded) || len(got)+len(more) >= len(payload) {
		t.Fatalf("after Set(Cut): %d+%d bytes, err %v; want the connection cut early", len(got), len(more), err)
	}
}

func TestCloseDropsConnectionsAndCounts(t *testing.T) {
	p, _ := proxy(t, Faults{Stall: true})
	c := dial(t, p)
	deadline := time.Now().Add(5 * time.Second)
	for p.Open() < 2 { // client side and target side
		if time.Now().After(deadline) {
			t.Fatalf("open = %d", p.Open())
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.Close()
	if _, _, err := readFor(c, 2*time.Second); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("a stalled connection outlived Close")
	}
	if p.Open() != 0 || p.Accepted() != 1 || p.Refused() != 0 {
		t.Fatalf("open %d accepted %d refused %d", p.Open(), p.Accepted(), p.Refused())
	}
}

// A target the proxy cannot reach resets the client and is counted as the proxy's own
// failure, so a drill can tell it from a fault of the system under test.
func TestDialFailureCounted(t *testing.T) {
	p, err := New("127.0.0.1:1") // tcpmux: nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.DialFailed() != 0 || p.DialErr() != nil {
		t.Fatalf("a fresh proxy reports %d dial failures (%v)", p.DialFailed(), p.DialErr())
	}
	// The reset may come before the connect returns (loopback is that fast) or at the
	// first read.
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("read through a proxy whose target is down succeeded")
		}
	}
	if p.DialFailed() != 1 || p.DialErr() == nil {
		t.Fatalf("dial failures %d (%v), want 1 with its error", p.DialFailed(), p.DialErr())
	}
}
