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
	req := &responses.Request{}
	if e := s.readJSON(c, req); e != nil {
		return e
	}
	if e := responses.Validate(req); e != nil {
		return respError(e)
	}
	docs := s.documents()
	store := req.Stored() && docs != nil
	if req.Store != nil && *req.Store && docs == nil {
		return errBadRequest("unsupported_parameter", "store", "This gateway's ledger store keeps no documents, so responses cannot be stored; send store: false.")
	}
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
		history = st.History()
	}
	chat, e := responses.ToChat(req, history)
	if e != nil {
		return respError(e)
	}
	err = s.p.AdmitChat(r.Context(), x, caller, chat, r.Header.Get(HeaderTags))
	admitted(c, x)
	if err != nil {
		return err
	}
	if hosted := responses.Hosted(req); len(hosted) > 0 {
		return respError(responses.ErrHostedTools(hosted))
	}
	ctx, cancel := s.p.Context(r.Context(), x)
	defer cancel()
	res := responses.NewResponse("resp_"+x.ID, time.Now().Unix(), req)
	res.Store = store
	rs := &respState{s: s, x: x, caller: caller, docs: docs, store: store, history: history, input: responses.InputItems(req), res: res}
	if req.Stream {
		return s.responsesStream(ctx, c, rs)
	}
	out, err := s.p.Chat(ctx, x)
	if err != nil {
		return err
	}
	responses.FromChat(res, out, rs.ids)
	routed(c, x)
	rs.save(ctx)
	s.p.Settle(x)
	return s.writeAnswer(c, res)
}

// respState is one Responses request on its way out.
type respState struct {
	s       *Server
	x       *pipeline.Exchange
	caller  *auth.Caller
	docs    ledger.Documents
	store   bool
	history []responses.Item
	input   []responses.Item
	res     *responses.Response
	n       int
}

// ids makes the response's item ids: unique within the gateway because the decision id is.
func (rs *respState) ids(prefix string) string {
	rs.n++
	return prefix + rs.x.ID + strconv.Itoa(rs.n)
}

// save stores a finished response for GET and previous_response_id. A failure is logged,
// not the client's: the answer exists and was charged; only its continuation is lost.
func (rs *respState) save(ctx context.Context) {
	if !rs.store {
		return
	}
	b, err := json.Marshal(responses.NewStored(rs.res, rs.history, rs.input))
	if err == nil {
		// Not the request's context: a client that leaves now still gets its answer stored.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err = rs.docs.PutDocument(sctx, responseKey(rs.caller, rs.res.ID), b, rs.s.responsesTTL())
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
	if err := json.Unmarshal(b, st); err != nil || st.Response == nil {
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
	str := responses.NewStreamer(rs.res, rs.ids, w.named)
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
			if err := str.Finish(); err != nil {
				return s.writeFailed(err)
			}
			return nil
		}
		if err != nil {
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
		if chunk == nil {
			continue
		}
		if err := str.Chunk(chunk); err != nil {
			return s.writeFailed(err)
		}
	}
}

// responsesDegraded serves a streaming client from a buffered call (degrade.stream=false):
// the whole answer is re-emitted as the events a stream of it would have had.
func (s *Server) responsesDegraded(ctx context.Context, c echo.Context, rs *respState) error {
	x := rs.x
	out, err := s.p.Chat(ctx, x)
	if err != nil {
		return err
	}
	routed(c, x)
	c.Response().Header().Set("X-Gavel-Degraded", "stream")
	w := s.startSSE(c, ctx)
	defer w.end()
	str := responses.NewStreamer(rs.res, rs.ids, w.named)
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
	writeJSON(c, http.StatusOK, st.Response)
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
