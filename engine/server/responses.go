package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/frontend/responses"
	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/pipeline"
)

// DefaultResponsesTTL is how long a stored response (store: true, the default) can be
// read back and continued with previous_response_id: OpenAI's 30 days.
const DefaultResponsesTTL = 30 * 24 * time.Hour

// respError is a Responses request error in OpenAI's shape.
func respError(e *responses.Error) *APIError {
	api := newAPIError(e.Status, e.Code, e.Message)
	api.Param = e.Param
	return api
}

// documents is where stored responses live: the ledger's store when it keeps documents.
func (s *Server) documents() ledger.Documents {
	d, _ := s.o.Ledger.(ledger.Documents)
	return d
}

// responseKey is a stored response's document key: under its owner's key id, so that
// another key's lookup finds nothing (a 404 like an id that never existed).
func responseKey(caller *auth.Caller, id string) string {
	owner := caller.Record.KeyID
	if caller.Anonymous || owner == "" {
		owner = "-"
	}
	return "responses:" + owner + ":" + id
}

func (s *Server) createResponse(c echo.Context) error {
	return s.serve(c, pipeline.EndpointResponses, s.responsesCreate)
}

func (s *Server) responsesCreate(c echo.Context, x *pipeline.Exchange) error {
	r := c.Request()
	caller, err := s.o.Keys.Authenticate(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	body, apiErr := s.readBody(c)
	if apiErr != nil {
		return apiErr
	}
	req := &responses.Request{}
	if err := unmarshal(body, req); err != nil { // unmarshal keeps the body's member names for the policy
		return errBadRequest("invalid_json", "", "We could not parse the JSON body of your request: "+jsonReason(err))
	}
	if e := responses.Validate(req); e != nil {
		return respError(e)
	}
	docs := s.documents()
	if req.Store != nil && *req.Store && docs == nil {
		return errBadRequest("unsupported_parameter", "store", "This gateway's ledger store keeps no documents, so responses cannot be stored; send store: false.")
	}
	rs := &respState{s: s, x: x, caller: caller, docs: docs, store: req.Stored() && docs != nil, input: responses.InputRaw(req)}
	var history []responses.Item
	if id := req.PreviousResponseID; id != "" {
		if docs == nil {
			return errBadRequest("unsupported_parameter", "previous_response_id", "This gateway's ledger store keeps no documents, so previous_response_id cannot be resolved.")
		}
		st, err := s.loadResponse(r.Context(), docs, caller, id)
		if err != nil {
			if errors.Is(err, ledger.ErrNotFound) {
				return respError(responses.ErrNotFound("previous_response_id", id))
			}
			return err
		}
		rs.history = st.History()
		// A conversation holding hosted tool calls cannot be translated; it can still
		// pass through, which Items' refusal is checked against after the decision.
		history, rs.historyErr = responses.Items(rs.history)
		if body, err = responses.Inline(body, rs.history, rs.input); err != nil {
			return errBadRequest("invalid_json", "", "We could not parse the JSON body of your request.")
		}
	}
	chat, e := responses.ToChat(req, history)
	if e != nil {
		return respError(e)
	}
	// Targets that speak the Responses API get the body as sent (only the model
	// rewritten); the others get the canonical request.
	x.Passthrough(&adapters.RawRequest{Protocol: adapters.ProtocolResponses, Body: body, Stream: req.Stream,
		Header: forwardedHeaders(r.Header, "OpenAI-Beta")})
	if err := s.admitChat(c, x, caller, chat); err != nil {
		return err
	}
	rs.hosted = responses.Hosted(req)
	if !s.p.NativeOnly(x, adapters.ProtocolResponses) {
		if len(rs.hosted) > 0 {
			return respError(responses.ErrHostedTools(rs.hosted))
		}
		if rs.historyErr != nil {
			return respError(rs.historyErr)
		}
	}
	ctx, cancel := s.p.Context(r.Context(), x)
	defer cancel()
	rs.res = responses.NewResponse("resp_"+x.ID, time.Now().Unix(), req)
	rs.res.Store = rs.store
	if req.Stream {
		return s.responsesStream(ctx, c, rs)
	}
	out, raw, err := s.p.ChatNative(ctx, x)
	if err != nil {
		return err
	}
	routed(c, x)
	if raw != nil {
		// OpenAI's own answer, relayed as it came.
		rs.saveRaw(ctx, raw.Body)
		s.p.Settle(x)
		writeRaw(c, http.StatusOK, raw.Body)
		return nil
	}
	responses.FromChat(rs.res, out, rs.ids)
	rs.save(ctx)
	s.p.Settle(x)
	return s.writeAnswer(c, rs.res)
}

// forwardedHeaders are the client's headers named, for a pass-through; nil when none is set.
func forwardedHeaders(h http.Header, names ...string) http.Header {
	var out http.Header
	for _, n := range names {
		if v := h.Values(n); len(v) > 0 {
			if out == nil {
				out = make(http.Header, len(names))
			}
			out[http.CanonicalHeaderKey(n)] = v
		}
	}
	return out
}

// writeRaw writes a JSON body as it is.
func writeRaw(c echo.Context, status int, b []byte) {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	h.Set(echo.HeaderContentLength, strconv.Itoa(len(b)))
	c.Response().WriteHeader(status)
	c.Response().Write(b)
}

// respState is one Responses request on its way out.
type respState struct {
	s          *Server
	x          *pipeline.Exchange
	caller     *auth.Caller
	docs       ledger.Documents
	store      bool
	history    []json.RawMessage // the previous response's conversation, items as they were
	historyErr *responses.Error  // why history cannot be translated; nil when it can
	hosted     []string          // the request's hosted tools
	input      []json.RawMessage
	res        *responses.Response
	n          int
}

// ids makes the response's item ids: unique within the gateway because the decision id is.
func (rs *respState) ids(prefix string) string {
	rs.n++
	return prefix + rs.x.ID + strconv.Itoa(rs.n)
}

// save stores a translated response for GET and previous_response_id.
func (rs *respState) save(ctx context.Context) {
	if !rs.store {
		return
	}
	st, err := responses.NewStored(rs.res, rs.history, rs.input)
	rs.put(ctx, rs.res.ID, st, err)
}

// saveRaw stores a response that passed through, under the upstream's id.
func (rs *respState) saveRaw(ctx context.Context, response []byte) {
	if !rs.store {
		return
	}
	st, err := responses.NewStoredRaw(response, rs.history, rs.input)
	rs.put(ctx, responses.ResponseID(response), st, err)
}

// put writes a stored response. A failure is logged, not the client's: the answer
// exists and was charged; only its continuation is lost.
func (rs *respState) put(ctx context.Context, id string, st *responses.Stored, err error) {
	if err == nil && id == "" {
		err = errors.New("the response has no id")
	}
	var b []byte
	if err == nil {
		b, err = json.Marshal(st)
	}
	if err == nil {
		// Not the request's context: a client that leaves now still gets its answer stored.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err = rs.docs.PutDocument(sctx, responseKey(rs.caller, id), b, rs.s.responsesTTL())
		cancel()
	}
	if err != nil {
		rs.s.log.Warn("could not store a response", "decision_id", rs.x.ID, "err", err)
	}
}

func (s *Server) responsesTTL() time.Duration {
	if s.o.ResponsesTTL > 0 {
		return s.o.ResponsesTTL
	}
	return DefaultResponsesTTL
}

// loadResponse reads a stored response the caller owns.
func (s *Server) loadResponse(ctx context.Context, docs ledger.Documents, caller *auth.Caller, id string) (*responses.Stored, error) {
	if len(id) > 200 {
		return nil, ledger.ErrNotFound
	}
	b, err := docs.GetDocument(ctx, responseKey(caller, id))
	if err != nil {
		return nil, err
	}
	st := &responses.Stored{}
	if err := json.Unmarshal(b, st); err != nil || len(st.Response) == 0 {
		s.log.Warn("unreadable stored response", "id", id, "err", err)
		return nil, ledger.ErrNotFound
	}
	return st, nil
}

// responsesStream relays an upstream chat stream as Responses events. As for chat, a
// failure before the first event is an HTTP error; after it, an error event and
// response.failed end the stream.
func (s *Server) responsesStream(ctx context.Context, c echo.Context, rs *respState) error {
	x := rs.x
	if x.DegradeStream() {
		return s.responsesDegraded(ctx, c, rs)
	}
	up, err := s.p.OpenStream(ctx, x)
	if err != nil {
		return err
	}
	defer up.Close()
	routed(c, x)
	w := s.startSSE(c, ctx)
	defer w.end()
	if up.Raw() {
		return s.responsesRelay(ctx, c, rs, up, w)
	}
	str := responses.NewStreamer(rs.res, rs.ids, w.raw)
	// A chunk's events are written together, and with the next chunk's when that one is
	// already read (adapters.ReadyStream); the opening events go with the first chunk's.
	w.hold = true
	if err := str.Start(); err != nil {
		return s.writeFailed(err)
	}
	for {
		chunk, err := up.Recv()
		if errors.Is(err, io.EOF) {
			if err := str.Finalize(); err != nil {
				return s.writeFailed(err)
			}
			rs.save(ctx)
			s.p.Settle(x) // before the client reads the end: see stream
			w.final()
			w.hold = true
			if err := str.Finish(); err != nil {
				return s.writeFailed(err)
			}
			if err := w.close(); err != nil {
				return s.writeFailed(err)
			}
			return nil
		}
		if err != nil {
			return s.responsesFailed(ctx, c, str, up, w, err)
		}
		if chunk != nil {
			if err := str.Chunk(chunk); err != nil {
				return s.writeFailed(err)
			}
		}
		if err := w.batch(up.NextReady()); err != nil {
			return s.writeFailed(err)
		}
	}
}

// responsesRelay relays a stream that passed through to OpenAI event by event, as it
// came. The terminal event's response is stored (store) and the spend settled before the
// client reads it; a failure after the start ends the stream with gavel's error and
// response.failed events, numbered on from the upstream's.
func (s *Server) responsesRelay(ctx context.Context, c echo.Context, rs *respState, up *pipeline.Stream, w *sseWriter) error {
	x := rs.x
	relayed := 0
	for {
		ev, err := up.RecvRaw()
		if errors.Is(err, io.EOF) {
			s.p.Settle(x)
			return nil
		}
		if err != nil {
			str := responses.NewStreamer(rs.res, rs.ids, w.raw)
			str.Resume(relayed)
			return s.responsesFailed(ctx, c, str, up, w, err)
		}
		if name := string(ev.Name); name == responses.EventCompleted || name == responses.EventIncomplete {
			var t struct {
				Response json.RawMessage `json:"response"`
			}
			if json.Unmarshal(ev.Data, &t) == nil && len(t.Response) > 0 {
				rs.saveRaw(ctx, t.Response)
			}
			s.p.Settle(x) // before the client reads the end: see stream
			w.final()
		} else if relayed == 0 {
			// The failure events of this stream carry the upstream's response id.
			var t struct {
				Response struct {
					ID string `json:"id"`
				} `json:"response"`
			}
			if json.Unmarshal(ev.Data, &t) == nil && t.Response.ID != "" {
				rs.res.ID = t.Response.ID
			}
		}
		if err := w.relay(ev.Name, ev.Data); err != nil {
			return s.writeFailed(err)
		}
		relayed++
	}
}

// responsesDegraded serves a streaming client from a buffered call (degrade.stream=false):
// the whole answer is re-emitted as the events a stream of it would have had.
func (s *Server) responsesDegraded(ctx context.Context, c echo.Context, rs *respState) error {
	x := rs.x
	if len(rs.hosted) > 0 {
		// A buffered call is translated, and hosted tools do not translate.
		return respError(responses.ErrHostedTools(rs.hosted))
	}
	out, err := s.p.Chat(ctx, x)
	if err != nil {
		return err
	}
	routed(c, x)
	c.Response().Header().Set("X-Gavel-Degraded", "stream")
	w := s.startSSE(c, ctx)
	defer w.end()
	w.hold = true // the whole answer is in hand: one write
	str := responses.NewStreamer(rs.res, rs.ids, w.raw)
	if err := str.Start(); err != nil {
		return s.writeFailed(err)
	}
	for _, ch := range chunksOf(out, true) {
		if err := str.Chunk(ch); err != nil {
			return s.writeFailed(err)
		}
	}
	if err := str.Finalize(); err != nil {
		return s.writeFailed(err)
	}
	rs.save(ctx)
	s.p.Settle(x)
	if err := str.Finish(); err != nil {
		return s.writeFailed(err)
	}
	if err := w.close(); err != nil {
		return s.writeFailed(err)
	}
	return nil
}

// getResponse serves GET /v1/responses/{id}: a response the caller's key stored.
func (s *Server) getResponse(c echo.Context) error {
	caller, docs, id, err := s.responseLookup(c)
	if err != nil {
		return err
	}
	st, err := s.loadResponse(c.Request().Context(), docs, caller, id)
	if err != nil {
		return s.lookupError(err, id)
	}
	writeRaw(c, http.StatusOK, st.Response)
	return nil
}

// deleteResponse serves DELETE /v1/responses/{id}.
func (s *Server) deleteResponse(c echo.Context) error {
	caller, docs, id, err := s.responseLookup(c)
	if err != nil {
		return err
	}
	if len(id) > 200 {
		return s.lookupError(ledger.ErrNotFound, id)
	}
	if err := docs.DeleteDocument(c.Request().Context(), responseKey(caller, id)); err != nil {
		return s.lookupError(err, id)
	}
	writeJSON(c, http.StatusOK, responses.Deleted{ID: id, Object: responses.ObjectResponse, Deleted: true})
	return nil
}

func (s *Server) responseLookup(c echo.Context) (*auth.Caller, ledger.Documents, string, error) {
	caller, err := s.o.Keys.Authenticate(c.Request().Header.Get("Authorization"))
	if err != nil {
		return nil, nil, "", clientError(err)
	}
	docs := s.documents()
	if docs == nil {
		return nil, nil, "", newAPIError(http.StatusNotFound, "not_found", "This gateway's ledger store keeps no documents, so no response is stored.")
	}
	return caller, docs, c.Param("id"), nil
}

func (s *Server) lookupError(err error, id string) error {
	if errors.Is(err, ledger.ErrNotFound) {
		return respError(responses.ErrNotFound("", id))
	}
	return clientError(err)
}

// responsesFailed ends a Responses stream that failed after it started, translated or
// relayed alike: gavel's error and response.failed events, unless the client left or the
// shutdown cut it.
func (s *Server) responsesFailed(ctx context.Context, c echo.Context, str *responses.Streamer, up *pipeline.Stream, w *sseWriter, err error) error {
	switch {
	case s.Draining() && ctx.Err() != nil:
		api := errShuttingDown()
		w.final()
		str.Fail(api.Code, api.Message)
		return &streamEnd{api}
	case ctx.Err() != nil && c.Request().Context().Err() != nil:
		if w.err != nil {
			return s.writeFailed(w.err)
		}
		return &streamEnd{errClientClosed()}
	}
	api := streamError(up.Fail(ctx, err))
	w.final()
	str.Fail(api.Code, api.Message)
	return nil
}
