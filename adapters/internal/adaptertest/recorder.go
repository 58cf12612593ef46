package adaptertest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Recorder is an httptest handler that remembers the last request and answers every
// request with a fixed status, headers and body.
type Recorder struct {
	mu   sync.Mutex
	last Request

	contentType string
	status      int
	headers     map[string]string
	reply       []byte
}

// Request is what a Recorder remembers of a request.
type Request struct {
	Method string
	Path   string // escaped
	Query  string // raw
	URI    string // as sent on the request line
	Header http.Header
	Body   []byte
}

// NewRecorder starts a server that answers with status (200 when 0), headers and reply,
// with contentType as the Content-Type unless headers set one; the test stops it.
func NewRecorder(t *testing.T, contentType string, status int, reply []byte, headers map[string]string) (*Recorder, *httptest.Server) {
	rec := &Recorder{contentType: contentType, status: status, reply: reply, headers: headers}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return rec, srv
}

// Last returns the last request received.
func (rec *Recorder) Last() Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.last
}

func (rec *Recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.last = Request{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, URI: r.RequestURI,
		Header: r.Header.Clone(), Body: b}
	rec.mu.Unlock()
	for k, v := range rec.headers {
		w.Header().Set(k, v)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", rec.contentType)
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	w.Write(rec.reply)
}
