package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
)

// MetricsHandler serves /metrics, behind the metrics token when one is configured; nil
// when the server has no metrics. The app mounts it on the main listener or on its own.
func (s *Server) MetricsHandler() http.Handler {
	if s.o.Metrics == nil {
		return nil
	}
	h := s.o.Metrics.Handler()
	if s.o.MetricsToken == "" {
		return h
	}
	// Compare digests: equal length, so the comparison's time says nothing of the token.
	want := sha256.Sum256([]byte("Bearer " + s.o.MetricsToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gavel metrics"`)
			writePlainError(w, newAPIError(http.StatusUnauthorized, "invalid_metrics_token",
				"A valid metrics token is required: Authorization: Bearer <metrics token>."))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// writePlainError writes e in OpenAI's shape outside echo (net/http handlers).
func writePlainError(w http.ResponseWriter, e *APIError) {
	b, _ := json.Marshal(e.body())
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.Status)
	w.Write(b)
}

// AmbiguousFraming answers a request with both Content-Length and Transfer-Encoding
// (httpframe.Strict finds them) in OpenAI's shape.
func AmbiguousFraming(w http.ResponseWriter, _ *http.Request) {
	writePlainError(w, errBadRequest("ambiguous_framing", "",
		"The request has both Content-Length and Transfer-Encoding headers; send only one of them."))
}
