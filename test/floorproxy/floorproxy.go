// Package floorproxy is the floor of the load benchmark: the least any LLM gateway must do
// per chat completion, on the same HTTP stack class as gavel (echo v4 over net/http).
//
// It reads and decodes the chat body (model, stream, messages), forwards the body unchanged
// to one upstream over a pooled net/http client and relays the answer, JSON or SSE, flushing
// after every read. No policy, no metrics, no logs, no retries. What gavel costs per request
// as a multiple of this ("× floor") is what everything gavel adds costs, on a scale that
// does not move with the machine the way absolute CPU figures do.
package floorproxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// chatRequest is the part of the body a gateway cannot avoid reading: which model, whether
// to stream, and that the messages are well-formed JSON.
type chatRequest struct {
	Model    string          `json:"model"`
	Stream   bool            `json:"stream"`
	Messages json.RawMessage `json:"messages"`
}

// relayBuffer is the read size for the upstream's answer (and so the largest write the
// client sees per flush).
const relayBuffer = 32 << 10

// New returns the floor handler: POST /v1/chat/completions relayed to upstream (a base URL
// ending in /v1), authenticating with apiKey.
func New(upstream, apiKey string) http.Handler {
	client := &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}}
	target := upstream + "/chat/completions"
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/healthz", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	e.POST("/v1/chat/completions", func(c echo.Context) error {
		body, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return err
		}
		var r chatRequest
		if err := json.Unmarshal(body, &r); err != nil || r.Model == "" {
			return c.JSON(http.StatusBadRequest, map[string]string{"error": "bad request"})
		}
		req, err := http.NewRequestWithContext(c.Request().Context(), http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := client.Do(req)
		if err != nil {
			return c.JSON(http.StatusBadGateway, map[string]string{"error": err.Error()})
		}
		defer resp.Body.Close()
		w := c.Response()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, relayBuffer)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return nil // the client left; nothing to tell it
				}
				w.Flush()
			}
			if err != nil {
				return nil
			}
		}
	})
	return e
}
