package app

import (
	"container/list"
	"net"
	"net/http"
	"sync"
	"time"
)

// Bounds of kept-alive client connections.
const (
	// DefaultIdleTimeout closes a kept-alive connection that has had no request for this
	// long (http.Server.IdleTimeout).
	DefaultIdleTimeout = 120 * time.Second
	// DefaultMaxIdleConns bounds the kept-alive connections waiting for a next request.
	// Each holds a goroutine and its buffers (about 10 KB); a client that opens many and
	// leaves them open must not make gavel hold them all for the idle timeout.
	DefaultMaxIdleConns = 1024
)

// idleConns keeps at most max connections idle: when one more goes idle, the one idle
// longest is closed (a client that then sends on it sees the close, as after the idle
// timeout). It is an http.Server's ConnState hook.
type idleConns struct {
	max   int
	mu    sync.Mutex
	order *list.List // idle connections, longest idle first
	at    map[net.Conn]*list.Element
}

func newIdleConns(max int) *idleConns {
	return &idleConns{max: max, order: list.New(), at: map[net.Conn]*list.Element{}}
}

func (ic *idleConns) track(c net.Conn, st http.ConnState) {
	var evict net.Conn
	ic.mu.Lock()
	if e, ok := ic.at[c]; ok {
		ic.order.Remove(e)
		delete(ic.at, c)
	}
	if st == http.StateIdle {
		ic.at[c] = ic.order.PushBack(c)
		if ic.order.Len() > ic.max {
			e := ic.order.Front()
			evict = e.Value.(net.Conn)
			ic.order.Remove(e)
			delete(ic.at, evict)
		}
	}
	ic.mu.Unlock()
	if evict != nil {
		evict.Close()
	}
}

// idle reports how many connections are idle (tests).
func (ic *idleConns) idle() int {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return ic.order.Len()
}
