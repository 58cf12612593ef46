package fakegemini

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gavel-gw/gavel/test/internal/fakecore"
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
	s.core.RequestStarted()
	defer s.core.RequestDone()

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
	s.rec.Add(rec)

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
		st, _ := s.steps.Next(model)
		format := formatNone
		if action == ActionStream {
			format = formatArray
			if query.Get("alt") == "sse" {
				format = formatSSE
			}
			s.core.StreamStarted()
			defer s.core.StreamDone()
		}
		id := fmt.Sprintf("fakeresp%016d", s.seq.Add(1))
		s.respond(w, r, render(model, st, format, id, *s.terminator.Load()), format)
	default:
		out, msg := embed(body, model, action)
		if msg != "" {
			writeError(w, http.StatusBadRequest, Step{Message: msg})
			return
		}
		st, _ := s.steps.Next(model)
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

// respond writes a rendered response, applying the step's latency, interval and fault. A
// wait cut short drops the connection rather than answer an empty 200 or end the stream
// cleanly.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, resp *rendered, format streamFormat) {
	st := &resp.step
	rep := fakecore.Reply{
		Status: resp.status, Stream: resp.stream, Body: resp.body, Ends: resp.ends, Tail: resp.tail,
		Latency: st.Latency, ChunkInterval: st.ChunkInterval,
		Fault: fakecore.Fault(st.Fault), FaultAfter: st.FaultAfter,
	}
	if !s.core.Prelude(w, r, &rep) {
		return
	}
	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	switch {
	case !resp.stream:
		h.Set("Content-Type", contentJSON)
		h.Set("Content-Length", strconv.Itoa(len(resp.body)))
	case format == formatSSE:
		h.Set("Content-Type", contentSSE)
	default:
		h.Set("Content-Type", contentJSON)
	}
	s.core.Send(w, r, &rep)
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
