package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/executor"
	frontanthropic "github.com/gavel-gw/gavel/engine/frontend/anthropic"
	"github.com/gavel-gw/gavel/engine/pipeline"
)

// anthropicErrors are the errors of the Messages endpoints, in Anthropic's shape.
var anthropicErrors = errorProtocol{of: anthropicError, write: writeAnthropicError}

// StatusOverloaded is Anthropic's 529 overloaded_error.
const StatusOverloaded = 529

// anthropicError is the one place that decides what a Messages API client sees for an
// error: gavel's mapping (clientError: statuses, messages, Retry-After) in Anthropic's
// error types, and an upstream's overload as Anthropic's own 529 overloaded_error, which
// Anthropic's SDKs and Claude Code retry.
func anthropicError(err error) *APIError {
	api := *clientError(err)
	if overloaded(err) {
		api.Status, api.Code = StatusOverloaded, "overloaded"
		api.Message = "The upstream provider is overloaded. " + api.Message
	}
	api.Type = anthropicType(api.Status)
	return &api
}

// overloaded reports that the failure reported to the client is an upstream's overload.
func overloaded(err error) bool {
	var fe *executor.FailedError
	var se *pipeline.StreamError
	var reason error
	switch {
	case errors.As(err, &fe):
		if fe.AllRejected() {
			return false
		}
		reason = fe.Reason()
	case errors.As(err, &se):
		reason = se.Err
	default:
		return false
	}
	ae := adapters.AsError(reason)
	return ae != nil && ae.Kind == adapters.KindOverloaded
}

// anthropicType is Anthropic's error type for a status.
func anthropicType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	case http.StatusServiceUnavailable, StatusOverloaded:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// anthropicPath reports that a request path belongs to the Anthropic Messages API.
func anthropicPath(p string) bool {
	return p == "/v1/messages" || strings.HasPrefix(p, "/v1/messages/")
}

// writeAnthropicError writes {"type":"error","error":{"type","message"}}.
func writeAnthropicError(c echo.Context, e *APIError) {
	h := c.Response().Header()
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if e.Status == StatusClientClosedRequest {
		c.Response().WriteHeader(e.Status)
		return
	}
	writeJSON(c, e.Status, anthropicBody(e))
}

// anthropicBody is e in Anthropic's shape, with the denial's remediation.
func anthropicBody(e *APIError) frontanthropic.ErrorBody {
	b := frontanthropic.NewError(e.Type, e.Message)
	b.Error.Remediation = e.Remediation
	return b
}

// authenticateAnthropic accepts a gavel key as Anthropic's x-api-key (what the SDKs and
// Claude Code send) or as a bearer token.
func (s *Server) authenticateAnthropic(r *http.Request) (*auth.Caller, error) {
	if k := r.Header.Get("X-Api-Key"); k != "" && r.Header.Get("Authorization") == "" {
		return s.o.Keys.Authenticate("Bearer " + k)
	}
	return s.o.Keys.Authenticate(r.Header.Get("Authorization"))
}

// anthropicHeaders are the client's protocol headers a passed-through request keeps.
func anthropicHeaders(r *http.Request) http.Header {
	var h http.Header
	for _, k := range [...]string{"Anthropic-Version", "Anthropic-Beta"} {
		if v := r.Header.Values(k); len(v) > 0 {
			if h == nil {
				h = make(http.Header, 2)
			}
			h[k] = v
		}
	}
	return h
}

// decodeMessages reads, checks and translates a Messages request body.
func (s *Server) decodeMessages(c echo.Context, count bool) ([]byte, *frontanthropic.Request, *adapters.ChatRequest, error) {
	body, apiErr := s.readBody(c)
	if apiErr != nil {
		return nil, nil, nil, apiErr
	}
	req, err := frontanthropic.Decode(body, count)
	if err == nil {
		var canon *adapters.ChatRequest
		if canon, err = frontanthropic.ToCanonical(req); err == nil {
			return body, req, canon, nil
		}
	}
	var re *frontanthropic.RequestError
	if errors.As(err, &re) {
		return nil, nil, nil, errBadRequest("invalid_request", re.Param, re.Error())
	}
	return nil, nil, nil, err
}

func (s *Server) messages(c echo.Context) error {
	return s.serveAs(c, pipeline.EndpointMessages, anthropicErrors, s.handleMessages)
}

// handleMessages serves POST /v1/messages: the request is judged in its canonical form,
// passed through as sent to a target that speaks the Messages API, translated for any
// other, and answered in Anthropic's format either way.
func (s *Server) handleMessages(c echo.Context, x *pipeline.Exchange) error {
	r := c.Request()
	caller, err := s.authenticateAnthropic(r)
	if err != nil {
		return err
	}
	body, req, canon, err := s.decodeMessages(c, false)
	if err != nil {
		return err
	}
	x.Passthrough(&adapters.RawRequest{Protocol: adapters.ProtocolAnthropic, Body: body, Stream: req.Stream, Header: anthropicHeaders(r)})
	x.Fields(frontanthropic.FieldNames(body, req))
	if err := s.admitChat(c, x, caller, canon); err != nil {
		return err
	}
	ctx, cancel := s.p.Context(r.Context(), x)
	defer cancel()
	if req.Stream {
		if x.DegradeStream() {
			return s.messagesDegraded(ctx, c, x)
		}
		return s.messagesStream(ctx, c, x, req.Model)
	}
	res, raw, err := s.p.ChatNative(ctx, x)
	if err != nil {
		return err
	}
	routed(c, x)
	s.p.Settle(x) // before the client may hold the answer: see chat
	if raw != nil {
		writeRawJSON(c, http.StatusOK, raw.Body)
		return nil
	}
	writeJSON(c, http.StatusOK, frontanthropic.FromCanonical(res))
	return nil
}

// writeRawJSON writes an upstream's JSON answer as it came.
func writeRawJSON(c echo.Context, status int, b []byte) {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	h.Set(echo.HeaderContentLength, strconv.Itoa(len(b)))
	c.Response().WriteHeader(status)
	c.Response().Write(b)
}

var eventMessageStop = []byte(frontanthropic.EventMessageStop)

// messagesStream relays a stream as Anthropic's events: a passed-through stream event by
// event as the upstream sent it, a translated one through the encoder. Failover happened
// while the pipeline opened it; from the first write on, a failure ends the stream with an
// error event.
func (s *Server) messagesStream(ctx context.Context, c echo.Context, x *pipeline.Exchange, model string) error {
	st, err := s.p.OpenStream(ctx, x)
	if err != nil {
		return err
	}
	defer st.Close()
	routed(c, x)
	w := s.startSSE(c, ctx)
	defer w.end()
	raw := st.Raw()
	var enc *frontanthropic.Encoder
	if !raw {
		enc = frontanthropic.NewEncoder(w.named, model)
		enc.SetInputTokens(x.EstimatedInputTokens()) // until the upstream's own count arrives
	}
	for {
		if raw {
			ev, err := st.RecvRaw()
			if err == nil {
				if bytes.Equal(ev.Name, eventMessageStop) {
					s.p.Settle(x) // the usage is complete; committed before the last event
				}
				if err := w.rawEvent(ev.Name, ev.Data); err != nil {
					return s.writeFailed(err)
				}
				continue
			}
			if errors.Is(err, io.EOF) {
				s.p.Settle(x)
				return nil
			}
			return s.streamFailed(ctx, c, w, st, err, anthropicStreamError)
		}
		// A chunk's events are written together, and with the next chunk's when that one
		// is already read (adapters.ReadyStream).
		w.hold = true
		chunk, err := st.Recv()
		if err == nil {
			if chunk != nil {
				if err := enc.Chunk(chunk); err != nil {
					return s.writeFailed(err)
				}
			}
			if err := w.batch(st.NextReady()); err != nil {
				return s.writeFailed(err)
			}
			continue
		}
		if errors.Is(err, io.EOF) {
			s.p.Settle(x)
			if err := enc.End(); err != nil {
				return s.writeFailed(err)
			}
			if err := w.close(); err != nil {
				return s.writeFailed(err)
			}
			return nil
		}
		return s.streamFailed(ctx, c, w, st, err, anthropicStreamError)
	}
}

// anthropicStreamError ends a Messages stream with an error event.
func anthropicStreamError(w *sseWriter, err error) {
	w.final()
	api := anthropicError(err)
	w.named(frontanthropic.EventError, frontanthropic.NewError(api.Type, api.Message))
}

// messagesDegraded serves a streaming client from a buffered call (degrade.stream=false):
// the whole answer, thinking and signatures included, re-emitted as a Messages stream.
func (s *Server) messagesDegraded(ctx context.Context, c echo.Context, x *pipeline.Exchange) error {
	res, raw, err := s.p.ChatNative(ctx, x)
	if err != nil {
		return err
	}
	var msg *frontanthropic.Response
	if raw != nil {
		msg = new(frontanthropic.Response)
		if err := json.Unmarshal(raw.Body, msg); err != nil {
			return &adapters.Error{Kind: adapters.KindProtocol, Message: "cannot decode the upstream's message", Err: err}
		}
	} else {
		msg = frontanthropic.FromCanonical(res)
	}
	routed(c, x)
	c.Response().Header().Set("X-Gavel-Degraded", "stream")
	s.p.Settle(x)
	w := s.startSSE(c, ctx)
	defer w.end()
	w.hold = true // the whole answer is in hand: one write
	if err := frontanthropic.ResponseEvents(msg, w.named); err != nil {
		return s.writeFailed(err)
	}
	if err := w.close(); err != nil {
		return s.writeFailed(err)
	}
	return nil
}

func (s *Server) countTokens(c echo.Context) error {
	return s.serveAs(c, pipeline.EndpointCountTokens, anthropicErrors, s.handleCountTokens)
}

// handleCountTokens serves POST /v1/messages/count_tokens: judged like a message (the
// policy picks the target, and may refuse), counted by the first target that counts
// natively, estimated by gavel when none can. Counting costs nothing.
func (s *Server) handleCountTokens(c echo.Context, x *pipeline.Exchange) error {
	r := c.Request()
	caller, err := s.authenticateAnthropic(r)
	if err != nil {
		return err
	}
	body, req, canon, err := s.decodeMessages(c, true)
	if err != nil {
		return err
	}
	one := 1
	canon.MaxTokens, canon.Stream, canon.StreamOptions = &one, false, nil // nothing is generated
	x.Passthrough(&adapters.RawRequest{Protocol: adapters.ProtocolAnthropic, Op: adapters.OpCountTokens, Body: body, Header: anthropicHeaders(r)})
	x.Fields(frontanthropic.FieldNames(body, req))
	err = s.p.AdmitChat(r.Context(), x, caller, canon, r.Header.Get(HeaderTags))
	admitted(c, x)
	if err != nil {
		return err
	}
	ctx, cancel := s.p.Context(r.Context(), x)
	defer cancel()
	res, err := s.p.CountTokens(ctx, x)
	var fe *executor.FailedError
	if errors.As(err, &fe) && fe.NoCounter() {
		c.Response().Header().Set("X-Gavel-Estimated", "true")
		writeJSON(c, http.StatusOK, map[string]int{"input_tokens": x.EstimatedInputTokens()})
		return nil
	}
	if err != nil {
		return err
	}
	routed(c, x)
	s.p.Settle(x)
	writeRawJSON(c, http.StatusOK, res.Body)
	return nil
}
