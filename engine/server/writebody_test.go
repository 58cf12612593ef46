package server

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// countingListener counts the bytes its connections write.
type countingListener struct {
	net.Listener
	written *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.written}, nil
}

type countingConn struct {
	net.Conn
	written *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// writeBody sets no write deadline for an answer of up to bufferedAnswer bytes because
// net/http holds such a body in the response's buffer and writes it to the connection
// only after the handler returned (when the deadline would have been cleared already).
// This holds net/http to that: nothing of the answer, headers included, reaches the
// connection while the handler runs (a 16 KiB one does: the test sees writes).
func TestSmallAnswerIsWrittenAfterTheHandler(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var written atomic.Int64
	s := &Server{o: Options{WriteStallTimeout: time.Minute}}
	e := echo.New()
	during := make(chan int64, 1)
	e.GET("/:n", func(c echo.Context) error {
		n, _ := strconv.Atoi(c.Param("n"))
		b := bytes.Repeat([]byte("x"), n)
		writeJSONHeaders(c, http.StatusOK, len(b))
		err := s.writeBody(c, b)
		during <- written.Load()
		return err
	})
	srv := &http.Server{Handler: e}
	go srv.Serve(countingListener{ln, &written})
	defer srv.Close()
	for _, tc := range []struct {
		n     int
		early bool
	}{{1, false}, {bufferedAnswer, false}, {16 << 10, true}} {
		written.Store(0)
		resp, err := http.Get("http://" + ln.Addr().String() + "/" + strconv.Itoa(tc.n))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		n := <-during
		if len(body) != tc.n || strings.Trim(string(body), "x") != "" {
			t.Fatalf("got %d bytes, want %d", len(body), tc.n)
		}
		if tc.early != (n > 0) {
			t.Errorf("%d-byte answer: %d bytes reached the connection before the handler returned", len(body), n)
		}
	}
}
