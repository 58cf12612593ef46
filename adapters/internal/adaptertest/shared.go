package adaptertest

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

// Provider is an adapter's provider as the shared tests use it.
type Provider interface {
	adapters.Provider
	Close() error
}

// NewProvider makes an adapter's provider for a server at baseURL with the given API key.
// It must not close the provider on cleanup: the shared tests close it themselves, before
// they look for leaked goroutines.
type NewProvider func(tb testing.TB, baseURL, apiKey string) Provider

// Adapter describes an adapter to the shared tests.
type Adapter struct {
	New NewProvider
	// Request returns a chat request the adapter accepts.
	Request func() *adapters.ChatRequest
}

func (a Adapter) open(tb testing.TB, baseURL string) Provider {
	tb.Helper()
	return a.New(tb, baseURL, "")
}

// SSEServer starts a server that answers every request with body as text/event-stream,
// closed when the test ends.
func SSEServer(tb testing.TB, body []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(body)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// BlockingSSEServer serves first as text/event-stream, then holds the response open
// until the client leaves, which it reports on left.
func BlockingSSEServer(first []byte) (srv *httptest.Server, left <-chan struct{}) {
	l := make(chan struct{}, 1)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(first)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			l <- struct{}{}
		case <-time.After(10 * time.Second):
		}
	}))
	return srv, l
}

// Blocking configures the tests of a stream that stalls after its first events.
type Blocking struct {
	Adapter
	// First is the start of a stream, up to an event boundary, that the server sends
	// before it holds the response open.
	First []byte
	// ReadFirst reads the chunks First yields, failing the test if they are not as
	// expected. Nil reads one chunk.
	ReadFirst func(t *testing.T, s adapters.ChunkStream)
}

func (b Blocking) readFirst(t *testing.T, s adapters.ChunkStream) {
	t.Helper()
	if b.ReadFirst != nil {
		b.ReadFirst(t, s)
		return
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
}

// StreamContextEndsRecv checks that a cancelled or expired context unblocks a Recv
// waiting on a stalled upstream with KindCanceled or KindTimeout, that the upstream sees
// the client leave, and that nothing leaks.
func StreamContextEndsRecv(t *testing.T, b Blocking) {
	tests := []struct {
		name string
		kind adapters.Kind
		ctx  func() (context.Context, context.CancelFunc)
		end  func(cancel context.CancelFunc)
	}{
		{name: "cancel", kind: adapters.KindCanceled,
			ctx: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			end: func(cancel context.CancelFunc) { time.AfterFunc(50*time.Millisecond, cancel) }},
		{name: "deadline", kind: adapters.KindTimeout,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 300*time.Millisecond)
			},
			end: func(context.CancelFunc) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := CheckNoLeak(t)
			srv, left := BlockingSSEServer(b.First)
			p := b.open(t, srv.URL)
			ctx, cancel := tt.ctx()
			defer cancel()
			s, err := p.ChatStream(ctx, b.Request())
			if err != nil {
				t.Fatal(err)
			}
			b.readFirst(t, s)
			tt.end(cancel)
			start := time.Now()
			_, err = s.Recv()
			AsError(t, err, tt.kind)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Recv unblocked after %v", d)
			}
			if err := s.Close(); err != nil {
				t.Error(err)
			}
			s.Close() // idempotent
			select {
			case <-left:
			case <-time.After(2 * time.Second):
				t.Error("upstream did not see the client leave")
			}
			srv.Close()
			p.Close()
			done()
		})
	}
}

// StreamCloseAbortsRecv checks that Close unblocks a Recv waiting on a stalled upstream
// with KindCanceled, that Recv fails afterwards, and that nothing leaks.
func StreamCloseAbortsRecv(t *testing.T, b Blocking) {
	done := CheckNoLeak(t)
	srv, _ := BlockingSSEServer(b.First)
	p := b.open(t, srv.URL)
	s, err := p.ChatStream(context.Background(), b.Request())
	if err != nil {
		t.Fatal(err)
	}
	b.readFirst(t, s)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Recv()
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	s.Close()
	select {
	case err := <-errc:
		AsError(t, err, adapters.KindCanceled)
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock Recv")
	}
	if _, err := s.Recv(); err == nil {
		t.Error("Recv after Close returned no error")
	}
	s.Close()
	srv.Close()
	p.Close()
	done()
}

// StreamTruncatedOverHTTP serves cut and then drops the connection without ending the
// chunked body: the stream must end with KindConnection, not a clean end, and nothing
// may leak. It returns the chunks read before the cut, for the adapter to check.
func StreamTruncatedOverHTTP(t *testing.T, a Adapter, cut []byte) []*adapters.ChatChunk {
	t.Helper()
	done := CheckNoLeak(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(cut)
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close() // no terminating chunk: the body ends abruptly
		}
	}))
	p := a.open(t, srv.URL)
	s, err := p.ChatStream(context.Background(), a.Request())
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := DrainStream(s)
	AsError(t, err, adapters.KindConnection)
	s.Close()
	srv.Close()
	p.Close()
	done()
	return chunks
}

// StreamReusesConnection checks that a stream of body read to its end and closed hands
// its connection back: otherwise every streamed request would pay a new TCP and TLS
// setup.
func StreamReusesConnection(t *testing.T, a Adapter, body []byte) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		// Flush the end of the stream before the handler returns, as real servers do, so
		// that the end of the chunked body arrives separately and only draining can see it.
		w.Write(body)
		w.(http.Flusher).Flush()
		time.Sleep(5 * time.Millisecond)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p := a.open(t, srv.URL)
	defer p.Close()
	for i := 0; i < 5; i++ {
		s, err := p.ChatStream(context.Background(), a.Request())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DrainStream(s); err != io.EOF {
			t.Fatal(err)
		}
		s.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 5 sequential streams, want 1", n)
	}
}

// StreamReadErrorIsConnection checks that s, a stream over a body that fails after ok
// good chunks (see ResetAfter), yields those chunks and then KindConnection with the
// cause kept.
func StreamReadErrorIsConnection(t *testing.T, s adapters.ChunkStream, ok int) {
	t.Helper()
	for i := 0; i < ok; i++ {
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Recv()
	e := AsError(t, err, adapters.KindConnection)
	if !strings.Contains(e.Error(), "connection reset") {
		t.Errorf("cause lost: %v", e)
	}
}

// TransportErrors checks that a refused connection is KindConnection without secret (a
// part of apiKey) in its text, and that a deadline or a cancellation while the upstream stalls ends Chat
// and ChatStream promptly with KindTimeout or KindCanceled.
func TransportErrors(t *testing.T, a Adapter, apiKey, secret string) {
	if secret == "" || !strings.Contains(apiKey, secret) {
		t.Fatalf("secret %q is not a part of the key %q", secret, apiKey)
	}
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		p := a.New(t, "http://"+addr, apiKey)
		t.Cleanup(func() { p.Close() })
		_, err = p.Chat(context.Background(), a.Request())
		e := AsError(t, err, adapters.KindConnection)
		if strings.Contains(e.Error(), secret) {
			t.Errorf("error leaks the key: %v", e)
		}
		_, err = p.ChatStream(context.Background(), a.Request())
		AsError(t, err, adapters.KindConnection)
	})

	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // the server notices a client leaving only once the body is read
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	for _, tt := range []struct {
		name   string
		ctx    func() (context.Context, context.CancelFunc)
		kind   adapters.Kind
		stream bool
	}{
		{name: "deadline", kind: adapters.KindTimeout, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}},
		{name: "deadline stream", kind: adapters.KindTimeout, stream: true, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}},
		{name: "cancel", kind: adapters.KindCanceled, ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(slow)
			defer srv.Close()
			p := a.open(t, srv.URL)
			defer p.Close()
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			var err error
			if tt.stream {
				_, err = p.ChatStream(ctx, a.Request())
			} else {
				_, err = p.Chat(ctx, a.Request())
			}
			AsError(t, err, tt.kind)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("returned after %v", d)
			}
		})
	}
}

// BenchStreamRecv measures reading body, n units (chunks or events) long, through
// streams made by open from memory, each of which must yield chunks chunks. It reports
// time, allocations and bytes per unit.
func BenchStreamRecv(b *testing.B, body []byte, unit string, n, chunks int, open func(io.Reader) adapters.ChunkStream) {
	rd := bytes.NewReader(body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		rd.Reset(body)
		s := open(rd)
		ready, _ := s.(adapters.ReadyStream) // asked after every chunk, as the server does
		got := 0
		for {
			if _, err := s.Recv(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
			got++
			if ready != nil {
				ready.NextReady()
			}
		}
		if got != chunks {
			b.Fatalf("%d chunks", got)
		}
		s.Close()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	runtime.ReadMemStats(&after)
	total := float64(b.N * n)
	b.ReportMetric(float64(elapsed.Nanoseconds())/total, "ns/"+unit)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, "allocs/"+unit)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/total, "B/"+unit)
}

// BenchChat measures a non-streamed round trip of req over loopback HTTP, answered
// with reply.
func BenchChat(b *testing.B, p NewProvider, apiKey string, req *adapters.ChatRequest, reply []byte) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(reply)
	}))
	defer srv.Close()
	pr := p(b, srv.URL, apiKey)
	defer pr.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := pr.Chat(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchChatStream measures a streamed round trip of req over loopback HTTP, answered
// with body and read to its end.
func BenchChatStream(b *testing.B, p NewProvider, apiKey string, req *adapters.ChatRequest, body []byte) {
	srv := SSEServer(b, body)
	pr := p(b, srv.URL, apiKey)
	defer pr.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := pr.ChatStream(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := s.Recv(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
		s.Close()
	}
}
