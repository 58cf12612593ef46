package httpx

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"time"
)

// Bounds on what an adapter keeps of a failed upstream response.
const (
	// MaxErrorBody bounds what is read of a failed response: error bodies are small, and a
	// misbehaving proxy must not make the gateway buffer a large page per failed attempt.
	MaxErrorBody = 64 << 10
	// MaxMessage bounds the upstream message kept in an error, which may travel into logs
	// and into the client's response.
	MaxMessage = 2 << 10
	// MaxCode bounds an upstream error code or type.
	MaxCode = 128
)

// RawText renders a JSON scalar as text: strings unquoted, numbers and booleans verbatim,
// null and composites as "". Upstream error fields are not always the type the docs say.
func RawText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return s
	case c == '-' || (c >= '0' && c <= '9'):
		if _, err := strconv.ParseFloat(string(raw), 64); err != nil {
			return ""
		}
		return string(raw)
	case bytes.Equal(raw, []byte("true")) || bytes.Equal(raw, []byte("false")):
		return string(raw)
	}
	return ""
}

// drainLimit and drainTimeout bound how long Drain reads past a stream's end marker.
// Reading the body to its end is what returns an HTTP/1.1 connection to the idle pool;
// closing it early forces a new connection (and TLS handshake) for the next request.
const (
	drainLimit   = 16 << 10
	drainTimeout = 50 * time.Millisecond
)

// Drain reads what follows a stream's end marker (normally just the end of the chunked
// body) so the transport can keep the connection, giving up quickly on a server that
// keeps it open.
func Drain(body io.ReadCloser) {
	t := time.AfterFunc(drainTimeout, func() { body.Close() })
	_, _ = io.CopyN(io.Discard, body, drainLimit)
	t.Stop()
}
