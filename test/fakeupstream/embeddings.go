package fakeupstream

import (
	"encoding/json"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

// embeddings serves POST /v1/embeddings in OpenAI's shape: one deterministic unit vector
// per input (8 dimensions unless the request asks otherwise), derived from the input text,
// and usage. Scripted steps with Status ≥ 400 answer with an error, as for chat.
func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, Step{Message: "could not read body"})
		return
	}
	var req adapters.EmbeddingRequest
	if err := json.Unmarshal(raw, &req); err != nil || req.Model == "" || req.Input.Len() == 0 {
		writeError(w, http.StatusBadRequest, Step{Message: "'$.input' is invalid. Please check the API reference.", Param: "input"})
		return
	}
	if s.rec.On() {
		s.rec.Add(Recorded{Time: time.Now(), Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Raw: raw, Model: req.Model})
	}
	st, _ := s.steps.Next(req.Model)
	if st.isError() {
		for k, v := range extraHeaders(st) {
			w.Header()[k] = v
		}
		writeError(w, st.Status, st)
		return
	}
	dims := 8
	if req.Dimensions != nil && *req.Dimensions > 0 {
		dims = *req.Dimensions
	}
	texts := req.Input.Texts
	for _, toks := range req.Input.Tokens {
		texts = append(texts, strconv.Itoa(len(toks)))
	}
	resp := adapters.EmbeddingResponse{Object: "list", Model: req.Model, Usage: &adapters.EmbeddingUsage{}}
	for i, t := range texts {
		v := Vector(t, dims)
		if set, ok := s.vectors.Load(t); ok {
			v = set.([]float32)
		}
		vec, _ := json.Marshal(v)
		resp.Data = append(resp.Data, adapters.Embedding{Object: "embedding", Index: i, Embedding: vec})
		n := max(1, len(t)/4)
		resp.Usage.PromptTokens += n
		resp.Usage.TotalTokens += n
	}
	writeJSON(w, http.StatusOK, resp)
}

// SetVector makes v the embedding of text (whatever the request's dimensions), instead of
// the one Vector derives: a test sets the similarities it needs.
func (s *Server) SetVector(text string, v []float32) { s.vectors.Store(text, v) }

// Vector is the embedding the fake returns for text, so tests can check it.
func Vector(text string, dims int) []float32 {
	h := fnv.New64a()
	h.Write([]byte(text))
	seed := h.Sum64()
	v := make([]float32, dims)
	var norm float64
	for i := range v {
		seed ^= seed << 13
		seed ^= seed >> 7
		seed ^= seed << 17
		x := float64(int64(seed%2001)-1000) / 1000
		v[i] = float32(x)
		norm += x * x
	}
	if norm > 0 {
		for i := range v {
			v[i] = float32(float64(v[i]) / math.Sqrt(norm))
		}
	}
	return v
}
