package test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawExchange writes raw requests on one TCP connection and reads the answers: the framing
// no HTTP client would produce. closed reports whether the server then closed the connection.
func rawExchange(t *testing.T, addr, raw string, answers int) (resps []*http.Response, bodies []string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for range answers {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("after %d answers: %v", len(resps), err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resps, bodies = append(resps, resp), append(bodies, string(b))
	}
	// A closed connection reads EOF (or a reset); an open one times out.
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = br.ReadByte()
	var ne net.Error
	closed = err != nil && !(errors.As(err, &ne) && ne.Timeout())
	return resps, bodies, closed
}

func chatHead(extra string) string {
	return "POST /v1/chat/completions HTTP/1.1\r\nHost: gavel\r\nContent-Type: application/json\r\n" + extra + "\r\n"
}

func chunked(body string) string {
	return strconv.FormatInt(int64(len(body)), 16) + "\r\n" + body + "\r\n0\r\n\r\n"
}

// RFC 9112 §6.3: a request with both Content-Length and Transfer-Encoding is a smuggling
// attempt: answered 400 in OpenAI's shape and the connection closed, whatever came before
// it on the connection and in whichever order the headers come.
func TestContentLengthWithTransferEncodingIsRejected(t *testing.T) {
	g := start(t, "", nil)
	addr := strings.TrimPrefix(g.URL, "http://")
	body := `{"model":"fast","messages":[{"role":"user","content":"hi"}]}`
	smuggled := "GET /v1/models HTTP/1.1\r\nHost: gavel\r\n\r\n"
	ok := chatHead("Content-Length: "+strconv.Itoa(len(body))+"\r\n") + body
	tests := []struct {
		name    string
		raw     string
		answers []int // statuses, in order
		closed  bool
	}{
		{"CL then TE", chatHead("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n") + chunked(body) + smuggled, []int{400}, true},
		{"TE then CL", chatHead("Transfer-Encoding: chunked\r\nContent-Length: 400\r\n") + chunked(body), []int{400}, true},
		{"lower case, after a good request", ok + chatHead("content-length: 3\r\ntransfer-encoding: chunked\r\n") + chunked(body), []int{200, 400}, true},
		{"two good requests keep the connection", ok + ok, []int{200, 200}, false},
		{"chunked alone is served, then closed", chatHead("Transfer-Encoding: chunked\r\n") + chunked(body) + smuggled, []int{200}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resps, bodies, closed := rawExchange(t, addr, tc.raw, len(tc.answers))
			for i, want := range tc.answers {
				if resps[i].StatusCode != want {
					t.Errorf("answer %d: %d, want %d: %s", i, resps[i].StatusCode, want, bodies[i])
				}
				if want != 400 {
					continue
				}
				var e struct {
					Error struct{ Message, Type, Code string }
				}
				if err := json.Unmarshal([]byte(bodies[i]), &e); err != nil || e.Error.Code != "ambiguous_framing" || e.Error.Type != "invalid_request_error" {
					t.Errorf("answer %d is not OpenAI's error shape: %q", i, bodies[i])
				}
				if !resps[i].Close {
					t.Errorf("answer %d does not say Connection: close", i)
				}
			}
			if closed != tc.closed {
				t.Errorf("connection closed = %v, want %v", closed, tc.closed)
			}
		})
	}
}
