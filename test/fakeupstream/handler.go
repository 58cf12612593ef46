package fakeupstream

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/test/internal/fakecore"
)

const maxBody = 32 << 20 // larger request bodies get 413

// Header values shared by every response; net/http only reads them.
var (
	contentJSON  = []string{"application/json"}
	contentSSE   = []string{"text/event-stream"}
	cacheNoCache = []string{"no-cache"}
)

// bufPool recycles request-body and response buffers: the load benchmark sends tens of
// thousands of requests a second through here.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer { b := bufPool.Get().(*bytes.Buffer); b.Reset(); return b }

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 { // do not pin huge buffers
		bufPool.Put(b)
	}
}

// ServeHTTP serves the OpenAI API subset the fake implements.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.core.RequestStarted()
	defer s.core.RequestDone()

	path := r.URL.Path
	if path != "/v1/chat/completions" && path != "/v1/embeddings" && path != "/v1/responses" {
		s.recordOther(r)
	}
	if !strings.HasPrefix(path, "/v1/") {
		writeError(w, http.StatusNotFound, Step{Message: "Invalid URL (" + r.Method + " " + path + ")"})
		return
	}
	if !s.authorized(r) {
		writeError(w, http.StatusUnauthorized, Step{
			Message: "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
			Code:    "invalid_api_key",
		})
		return
	}
	switch {
	case path == "/v1/chat/completions" && r.Method == http.MethodPost:
		s.chat(w, r)
	case path == "/v1/embeddings" && r.Method == http.MethodPost:
		s.embeddings(w, r)
	case path == "/v1/responses" && r.Method == http.MethodPost:
		s.responses(w, r)
	case path == "/v1/models" && r.Method == http.MethodGet:
		data := []modelObject{}
		for _, id := range s.modelIDs() {
			data = append(data, s.model(id))
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
	case strings.HasPrefix(path, "/v1/models/") && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.model(strings.TrimPrefix(path, "/v1/models/")))
	case path == "/v1/chat/completions" || path == "/v1/models" || strings.HasPrefix(path, "/v1/models/"):
		writeError(w, http.StatusMethodNotAllowed, Step{Message: "Method " + r.Method + " not allowed on " + path})
	default:
		writeError(w, http.StatusNotFound, Step{Message: "Invalid URL (" + r.Method + " " + path + ")"})
	}
}

func (s *Server) authorized(r *http.Request) bool {
	key := s.apiKey.Load()
	return key == nil || *key == "" || r.Header.Get("Authorization") == "Bearer "+*key
}

// requestHead is the part of a chat request the fake needs when it is not recording;
// decoding only this is cheaper than a full adapters.ChatRequest.
type requestHead struct {
	Model         string                  `json:"model"`
	Stream        bool                    `json:"stream"`
	StreamOptions *adapters.StreamOptions `json:"stream_options"`
}

// chat serves POST /v1/chat/completions.
func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	buf := getBuf()
	defer putBuf(buf)
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, maxBody+1)); err != nil {
		return // the client went away mid-body
	}
	if buf.Len() > maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, Step{Message: "request body too large"})
		return
	}

	var head requestHead
	var err error
	if s.rec.On() {
		var req adapters.ChatRequest
		err = json.Unmarshal(buf.Bytes(), &req)
		head = requestHead{Model: req.Model, Stream: req.Stream, StreamOptions: req.StreamOptions}
		s.rec.Add(Recorded{
			Time: time.Now(), Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(),
			Raw: bytes.Clone(buf.Bytes()), Body: req, Model: req.Model, Stream: req.Stream,
		})
	} else {
		err = json.Unmarshal(buf.Bytes(), &head)
	}
	switch {
	case err != nil:
		writeError(w, http.StatusBadRequest, Step{Message: "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"})
		return
	case head.Model == "":
		writeError(w, http.StatusBadRequest, Step{Message: "you must provide a model parameter"})
		return
	}

	st, defaults := s.steps.Next(head.Model)
	if st.Continue && head.Stream {
		var req adapters.ChatRequest
		if json.Unmarshal(buf.Bytes(), &req) == nil {
			st, defaults = continued(head.Model, st, req.Messages), nil
		}
	}
	includeUsage := head.StreamOptions != nil && head.StreamOptions.IncludeUsage && !st.IgnoreIncludeUsage
	resp := s.renderFor(head.Model, st, defaults, head.Stream, includeUsage)
	if head.Stream {
		s.core.StreamStarted()
		defer s.core.StreamDone()
	}
	s.respond(w, r, resp)
}

// respond writes a rendered response, applying the step's latency, interval and fault.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, resp *rendered) {
	st := &resp.step
	rep := fakecore.Reply{
		Status: resp.status, Stream: resp.stream, Ends: resp.ends,
		Latency: st.Latency, ChunkInterval: st.ChunkInterval,
		Fault: fakecore.Fault(st.Fault), FaultAfter: st.FaultAfter,
	}
	if !s.core.Prelude(w, r, &rep) {
		return
	}

	n := s.seq.Add(1)
	rep.Body = resp.body
	if len(resp.idAt) > 0 {
		out := getBuf()
		defer putBuf(out)
		out.Write(resp.body)
		rep.Body = out.Bytes()
		for _, off := range resp.idAt {
			putDigits(rep.Body[off:off+idDigits], n)
		}
	}

	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	reqID := make([]byte, 0, 8+idDigits)
	reqID = append(reqID, "req_fake"...)
	reqID = reqID[:8+idDigits]
	putDigits(reqID[8:], n)
	h["X-Request-Id"] = []string{string(reqID)}

	if resp.stream {
		h["Content-Type"] = contentSSE
		h["Cache-Control"] = cacheNoCache
	} else {
		h["Content-Type"] = contentJSON
		h["Content-Length"] = []string{strconv.Itoa(len(rep.Body))}
	}
	s.core.Send(w, r, &rep)
}

// putDigits writes n as zero-padded decimal filling b.
func putDigits(b []byte, n uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = '0' + byte(n%10)
		n /= 10
	}
}

// recordOther records a request that is not a chat completion (body kept raw).
func (s *Server) recordOther(r *http.Request) {
	if !s.rec.On() {
		return
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	s.rec.Add(Recorded{Time: time.Now(), Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Raw: raw})
}

// modelObject is an entry of GET /v1/models.
type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (s *Server) model(id string) modelObject {
	return modelObject{ID: id, Object: "model", Created: s.created, OwnedBy: "fakeupstream"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b := marshal(v)
	h := w.Header()
	h["Content-Type"] = contentJSON
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError writes OpenAI's {"error":{...}} for status, filling defaults from the step.
func writeError(w http.ResponseWriter, status int, st Step) {
	writeJSON(w, status, errorEnvelope(st, status))
}
