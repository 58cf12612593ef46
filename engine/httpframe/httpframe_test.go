package httpframe

import (
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
)

// readConn is a net.Conn that reads r in pieces of at most size bytes.
type readConn struct {
	net.Conn
	r    io.Reader
	size int
}

func (c *readConn) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.size)]) }

func TestFramingTrackerFollowsHeadsAcrossReads(t *testing.T) {
	body := `{"model":"fast"}`
	cl := "POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	get := "GET /healthz HTTP/1.1\r\nHost: g\r\n\r\n"
	// A body that looks like a smuggled head must be skipped as body.
	fake := "Transfer-Encoding: chunked\r\n\r\n"
	sneaky := "POST /x HTTP/1.1\r\nHost: g\r\nContent-Length: " + strconv.Itoa(len(fake)) + "\r\n\r\n" + fake
	tests := []struct {
		name      string
		stream    string
		stoppedAt int64
		ambiguous bool
	}{
		{"plain requests", cl + get + cl, 0, false},
		{"a head-like body is body", sneaky + get, 0, false},
		{"both headers on the third", cl + get + "POST / HTTP/1.1\r\nTRANSFER-ENCODING: chunked\r\nContent-Length: 5\r\n\r\n", 3, true},
		{"chunked alone", get + "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 2, false},
		{"bare LF line ends", "POST / HTTP/1.1\nContent-Length: 2\nTransfer-Encoding: chunked\n\n", 1, true},
		{"conflicting lengths", "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", 1, false},
		{"overlong line", "POST / HTTP/1.1\r\nX-Pad: " + strings.Repeat("a", 500) + "\r\n\r\n" + get, 0, false},
	}
	for _, tc := range tests {
		for _, size := range []int{1, 3, 17, 4096} {
			t.Run(tc.name+"/"+strconv.Itoa(size), func(t *testing.T) {
				fc := &framingConn{Conn: &readConn{r: strings.NewReader(tc.stream), size: size}}
				fc.startHead()
				buf := make([]byte, 4096)
				for {
					if _, err := fc.Read(buf); err != nil {
						break
					}
				}
				if got := fc.stoppedAt.Load(); got != tc.stoppedAt || fc.ambiguous.Load() != tc.ambiguous {
					t.Errorf("stopped at head %d (ambiguous %v), want %d (%v)", got, fc.ambiguous.Load(), tc.stoppedAt, tc.ambiguous)
				}
			})
		}
	}
}

// BenchmarkFramingTracker is the tracker's cost per request on a keep-alive connection.
func BenchmarkFramingTracker(b *testing.B) {
	body := strings.Repeat("x", 300)
	req := []byte("POST /v1/chat/completions HTTP/1.1\r\nHost: gavel\r\nUser-Agent: OpenAI/Go 3.0\r\nAuthorization: Bearer sk-abc\r\n" +
		"Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	fc := &framingConn{}
	fc.startHead()
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		fc.track(req)
	}
	if fc.stoppedAt.Load() != 0 {
		b.Fatal("lost track")
	}
}
