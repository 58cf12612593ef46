package fakegemini

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const maxBody = 20 << 20 // Gemini's limit for an inline request; larger bodies get 400

const (
	contentJSON = "application/json; charset=UTF-8"
	contentSSE  = "text/event-stream"
)

// parsePath splits "/v1beta/models/{model}:{action}" (or /v1/...); ok is false for any
// other path or an unknown action.
func parsePath(path string) (model, action string, ok bool) {
	rest, found := strings.CutPrefix(path, "/v1beta/models/")
	if !found {
		if rest, found = strings.CutPrefix(path, "/v1/models/"); !found {
			return "", "", false
		}
	}
	model, action, found = strings.Cut(rest, ":")
	if !found || model == "" || strings.Contains(model, "/") {
		return "", "", false
	}
	switch action {
	case ActionGenerate, ActionStream, ActionBatchEmbed, ActionEmbed:
		return model, action, true
	}
	return model, "", false
}

// ServeHTTP serves the part of the Gemini API the fake implements.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)

	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return // the client went away mid-body
	}
	model, action, ok := parsePath(r.URL.Path)
	query := r.URL.Query()
	rec := Recorded{
		Time: time.Now(), Method: r.Method, Path: r.URL.Path, Query: query, Header: r.Header.Clone(), Raw: raw,
		Model: model, Action: action, Stream: action == ActionStream,
	}
	headerKey, queryKey := r.Header.Get("X-Goog-Api-Key"), query.Get("key")
	switch {
	case headerKey != "" && queryKey != "":
		rec.APIKey, rec.KeyFrom = headerKey, KeyBoth
	case headerKey != "":
		rec.APIKey, rec.KeyFrom = headerKey, KeyHeader
	case queryKey != "":
		rec.APIKey, rec.KeyFrom = queryKey, KeyQuery
	}
	var body map[string]any
	if json.Unmarshal(raw, &body) == nil {
		rec.Body = body
	}
	s.record(rec)

	if !ok || r.Method != http.MethodPost {
		writeError(w, http.StatusNotFound, Step{Message: fmt.Sprintf("Method not found: %s %s", r.Method, r.URL.Path)})
		return
	}
	switch {
	case rec.APIKey == "":
		writeError(w, http.StatusForbidden, Step{Message: "Method doesn't allow unregistered callers (callers without established identity). " +
			"Please use API Key or other form of API consumer identity to call this API."})
		return
	case !s.authorized(rec.APIKey):
		writeError(w, http.StatusBadRequest, Step{
			Message: "API key not valid. Please pass a valid API key.",
			Details: []map[string]any{{
				"@type":    "type.googleapis.com/google.rpc.ErrorInfo",
				"reason":   "API_KEY_INVALID",
				"domain":   "googleapis.com",
				"metadata": map[string]any{"service": "generativelanguage.googleapis.com"},
			}},
		})
		return
	case len(raw) > maxBody:
		writeError(w, http.StatusBadRequest, Step{Message: fmt.Sprintf("Request payload size exceeds the limit: %d bytes.", maxBody)})
		return
	case body == nil:
		writeError(w, http.StatusBadRequest, Step{Message: "Invalid JSON payload received. Expected a JSON object."})
		return
	}

	switch action {
	case ActionGenerate, ActionStream:
		if msg := validateGenerate(body); msg != "" {
			writeError(w, http.StatusBadRequest, Step{Message: msg})
			return
		}
		st := s.next(model)
		format := formatNone
		if action == ActionStream {
			format = formatArray
			if query.Get("alt") == "sse" {
				format = formatSSE
			}
			s.activeStreams.Add(1)
			defer s.activeStreams.Add(-1)
		}
		id := fmt.Sprintf("fakeresp%016d", s.seq.Add(1))
		s.respond(w, r, render(model, st, format, id, *s.terminator.Load()), format)
	default:
		out, msg := embed(body, model, action)
		if msg != "" {
			writeError(w, http.StatusBadRequest, Step{Message: msg})
			return
		}
		st := s.next(model)
		resp := &rendered{step: st, status: http.StatusOK, header: extraHeaders(st), body: marshalIndent(out)}
		if st.isError() {
			resp.status, resp.body = st.Status, marshalIndent(errorEnvelope(st, st.Status))
		}
		s.respond(w, r, resp, formatNone)
	}
}

type embedding struct {
	Values []float32 `json:"values"`
}

// embed validates an embedding request and builds its answer.
func embed(body map[string]any, model, action string) (any, string) {
	if action == ActionEmbed {
		msg, text, dims := validateEmbed(body, model, "EmbedContentRequest", false)
		if msg != "" {
			return nil, msg
		}
		return map[string]any{"embedding": embedding{Values: Embedding(text, dims)}}, ""
	}
	if msg := unknownField(body, fieldSet("requests"), ""); msg != "" {
		return nil, msg
	}
	reqs, _ := body["requests"].([]any)
	if len(reqs) == 0 {
		return nil, "* BatchEmbedContentsRequest.requests: requests is not specified\n"
	}
	out := make([]embedding, 0, len(reqs))
	for i, raw := range reqs {
		req, _ := raw.(map[string]any)
		msg, text, dims := validateEmbed(req, model, fmt.Sprintf("BatchEmbedContentsRequest.requests[%d]", i), true)
		if msg != "" {
			return nil, msg
		}
		out = append(out, embedding{Values: Embedding(text, dims)})
	}
	return map[string]any{"embeddings": out}, ""
}

func (s *Server) authorized(key string) bool {
	want := s.apiKey.Load()
	return want == nil || *want == "" || key == *want
}

// respond writes a rendered response, applying the step's latency, interval and fault.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, resp *rendered, format streamFormat) {
	st := &resp.step
	if !s.sleep(r.Context(), st.Latency) {
		panic(http.ErrAbortHandler) // drop the connection rather than answer an empty 200
	}
	failing := resp.status == http.StatusOK && (st.Fault == Abort || st.Fault == Hang)
	if failing && !resp.stream && st.FaultAfter <= 0 {
		s.fault(w, r, st.Fault, false)
		return
	}

	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	if !resp.stream {
		h.Set("Content-Type", contentJSON)
		h.Set("Content-Length", strconv.Itoa(len(resp.body)))
		w.WriteHeader(resp.status)
		if failing { // FaultAfter > 0: half the body, then the fault
			_, _ = w.Write(resp.body[:len(resp.body)/2])
			s.fault(w, r, st.Fault, true)
			return
		}
		_, _ = w.Write(resp.body)
		return
	}

	if format == formatSSE {
		h.Set("Content-Type", contentSSE)
	} else {
		h.Set("Content-Type", contentJSON)
	}
	w.WriteHeader(http.StatusOK)
	s.writeEvents(w, r, resp, failing)
}

// writeEvents sends a stream's events one by one, flushing each like the real API, and
// stops as soon as the client is gone.
func (s *Server) writeEvents(w http.ResponseWriter, r *http.Request, resp *rendered, failing bool) {
	st := &resp.step
	rc := http.NewResponseController(w)
	start := 0
	for i, end := range resp.ends {
		if failing && i == st.FaultAfter {
			s.fault(w, r, st.Fault, true)
			return
		}
		if i > 0 && !s.sleep(r.Context(), st.ChunkInterval) {
			panic(http.ErrAbortHandler) // the stream must not look complete
		}
		if r.Context().Err() != nil {
			return
		}
		if _, err := w.Write(resp.body[start:end]); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		start = end
	}
	if failing { // FaultAfter beyond the last event: fail instead of ending cleanly
		s.fault(w, r, st.Fault, true)
		return
	}
	_, _ = w.Write(resp.tail)
}

// fault performs an Abort or a Hang; it does not return normally from a Hang. wroteHeader
// says whether headers (and maybe part of the body) have been written: a hang then flushes
// them so the client sees them first.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, f Fault, wroteHeader bool) {
	rc := http.NewResponseController(w)
	switch f {
	case Abort:
		// Hijacking flushes what was written, then we close without the terminating chunk.
		conn, bufrw, err := rc.Hijack()
		if err != nil {
			return
		}
		_ = bufrw.Flush()
		_ = conn.Close()
	case Hang:
		if wroteHeader {
			_ = rc.Flush()
		}
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		// Released: drop the connection, so that neither an implicit empty 200 nor the end
		// of a chunked stream is sent.
		panic(http.ErrAbortHandler)
	}
}

// sleep waits d; it reports false if the client went away or the server closed meanwhile.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-s.done:
	}
	return false
}

// writeError writes Google's {"error":{...}} for status, filling defaults from the step.
func writeError(w http.ResponseWriter, status int, st Step) {
	b := marshalIndent(errorEnvelope(st, status))
	h := w.Header()
	h.Set("Content-Type", contentJSON)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
