package app

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestIdleConnsBounded: kept-alive connections beyond the bound are closed, longest idle
// first, and a connection in use is never closed for it.
func TestIdleConnsBounded(t *testing.T) {
	ic := newIdleConns(2)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	srv.Config.ConnState = ic.track
	srv.Start()
	defer srv.Close()

	var conns []net.Conn
	for i := range 4 {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		resp.Body.Close()
		conns = append(conns, c)
		time.Sleep(10 * time.Millisecond) // an order of going idle
	}
	deadline := time.Now().Add(2 * time.Second)
	for ic.idle() != 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := ic.idle(); n != 2 {
		t.Fatalf("%d idle connections kept; want 2", n)
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		closed := err != nil && !isTimeout(err)
		if want := i < 2; closed != want {
			t.Errorf("conn %d closed=%t (err %v); want the two idle longest closed", i, closed, err)
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
