package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/pipeline"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// errorProtocol is how one wire protocol tells its clients about errors: the one function
// that maps gavel's errors to the protocol's status and type, and the writer of its error
// body.
type errorProtocol struct {
	of    func(error) *APIError
	write func(echo.Context, *APIError)
}

// openAIErrors are the errors of the OpenAI-compatible endpoints.
var openAIErrors = errorProtocol{of: clientError, write: writeError}

// serve runs one API request through the pipeline: the decision id header first, the
// client's error in OpenAI's shape on failure, and the pipeline's record last.
func (s *Server) serve(c echo.Context, endpoint string, handle func(echo.Context, *pipeline.Exchange) error) error {
	return s.serveAs(c, endpoint, openAIErrors, handle)
}

// serveAs is serve for a protocol with errors of its own.
func (s *Server) serveAs(c echo.Context, endpoint string, proto errorProtocol, handle func(echo.Context, *pipeline.Exchange) error) error {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	x := s.p.Start(endpoint)
	c.Response().Header()[HeaderDecisionID] = x.HeaderSlot(pipeline.HeaderSlotID, x.ID)
	status, code := http.StatusOK, ""
	err := handle(c, x)
	switch ended := streamEnded(err); {
	case err == nil:
		if st := c.Response().Status; st != 0 {
			status = st
		}
	case ended != nil:
		// A stream that had started: the client was told in the stream, or cannot be.
		status, code = ended.api.Status, ended.api.Code
	default:
		api := proto.of(err)
		if api.Status >= 500 && errors.Is(c.Request().Context().Err(), context.Canceled) && !s.Draining() {
			// The client left while gavel was still deciding (policy evaluation, a ledger
			// call): the cancellation surfaced as that step's error, but nothing failed,
			// and nobody is there to read a 5xx.
			api = proto.of(errClientClosed())
		}
		if api.Status == StatusClientClosedRequest && s.Draining() {
			// Cancelled by the shutdown, not by the client, which is still there to be told.
			api = proto.of(errShuttingDown())
		}
		if api.Status >= 500 && api.Code != "upstream_error" && api.Code != "server_shutting_down" {
			s.failed.Log(api.Code, "request failed", "decision_id", x.ID, "err", err)
		}
		status, code = api.Status, api.Code
		tagFault(c, x)
		proto.write(c, api)
	}
	s.p.Finish(x, status, code)
	if !x.WentUpstream() {
		yieldAfterCPUOnly()
	}
	return nil
}

// streamEnded is err's streamEnd, nil when it has none (or err is nil). The pointer
// errors.As fills escapes, so it is allocated where it is declared: declared at the top of
// serveAs it cost an allocation on every request, failed or not.
func streamEnded(err error) *streamEnd {
	if err == nil {
		return nil
	}
	var ended *streamEnd
	if !errors.As(err, &ended) {
		return nil
	}
	return ended
}

// yieldAfterCPUOnly gives the P up once a request that never waited on an upstream (a cache
// hit, a denial, a rate-limited or malformed request) is answered. Such requests never park,
// so under saturation their connections' goroutines cycle in the P's local run queue: the
// client's next request is already there when the connection reads again. Connections the
// runtime's background poller readied meanwhile sit in the global queue, which a busy P
// serves one goroutine per 61 scheduling rounds: with one P and 32 clients sending cached
// requests, p99 was 140–220 ms against a p50 of 7 ms, in bursts every ~250 ms. Yielding puts
// this goroutine behind them (runtime.Gosched queues globally), so every connection gets
// its turn in arrival order. A request that went upstream parked on its socket and needs
// no help; yielding there too cost 4–7 % of CPU per request in the load benchmark.
func yieldAfterCPUOnly() { runtime.Gosched() }

// admitted writes what the pipeline's admission says in headers, whether or not the
// request was admitted: the revision, the A/B arm, the rate limits, budget warnings.
func admitted(c echo.Context, x *pipeline.Exchange) {
	h := c.Response().Header()
	if rev := x.Revision(); rev != nil {
		h[HeaderRevision] = x.HeaderSlot(pipeline.HeaderSlotRevision, rev.ID)
	}
	if d := x.Decision(); d != nil && d.AB != nil {
		h.Set(HeaderExperiment, d.AB.Experiment)
		h.Set(HeaderArm, d.AB.Arm)
	}
	if rd := x.RateDecision(); rd != nil {
		rd.SetHeaders(h)
	}
	if w := x.BudgetWarning(); w != "" {
		h.Set(HeaderBudgetWarning, w)
	}
}

// routed writes what the executor did in headers, before the answer starts: the target
// that answered, the substitution when the client named a provider/model and another one
// answered, and the request fields it was sent without. Every endpoint calls it once a
// target answered.
func routed(c echo.Context, x *pipeline.Exchange) {
	h := c.Response().Header()
	h[HeaderRoute] = x.HeaderSlot(pipeline.HeaderSlotRoute, x.Route())
	tagFault(c, x)
	if r := x.CacheResult(); r != "" {
		h.Set(HeaderCache, r)
		if bp, ok := x.CacheSimilarity(); ok {
			h.Set(HeaderCacheSimilarity, strconv.Itoa(bp))
		}
	}
	if sub := x.Substituted(); sub != "" {
		h.Set(HeaderSubstituted, sub)
	}
	if d := x.Dropped(); len(d) > 0 {
		h.Set(HeaderDroppedParams, strings.Join(d, ","))
	}
}

// tagFault marks a request a chaos drill faulted (X-Gavel-Fault: <kind>), on answers and
// errors alike, so a client and a dashboard can tell a drill from an incident.
func tagFault(c echo.Context, x *pipeline.Exchange) {
	if k := x.Fault(); k != "" {
		c.Response().Header().Set(HeaderFault, k)
	}
}

func (s *Server) chatCompletions(c echo.Context) error {
	return s.serve(c, pipeline.EndpointChat, s.chat)
}

func (s *Server) chat(c echo.Context, x *pipeline.Exchange) error {
	r := c.Request()
	caller, err := s.o.Keys.Authenticate(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	req, apiErr := s.decode(c)
	if apiErr != nil {
		return apiErr
	}
	if err := s.admitChat(c, x, caller, req); err != nil {
		return err
	}
	ctx, cancel := s.p.Context(r.Context(), x)
	defer cancel()
	if req.Stream {
		if x.DegradeStream() {
			return s.degradedStream(ctx, c, x)
		}
		return s.stream(ctx, c, x)
	}
	res, err := s.p.Chat(ctx, x)
	if err != nil {
		return err
	}
	routed(c, x)
	// The spend is committed before the answer is written: once a client may hold the
	// answer, a crash must not lose its charge.
	s.p.Settle(x)
	if b := x.CachedAnswer(); b != nil {
		// A hit: the entry's answer was encoded by the first hit on it.
		writeJSONHeaders(c, http.StatusOK, len(b))
		return s.writeBody(c, b)
	}
	return s.writeAnswer(c, res)
}

// idempotency hands the request's Idempotency-Key to the exchange; a key too long to be
// one is refused.
// admitChat is what every chat-kind endpoint (chat, messages, responses) does once its
// body is decoded: take the Idempotency-Key, decide, and set the decision's headers, which
// a refusal carries too.
func (s *Server) admitChat(c echo.Context, x *pipeline.Exchange, caller *auth.Caller, req *adapters.ChatRequest) error {
	r := c.Request()
	if err := idempotency(r, x); err != nil {
		return err
	}
	err := s.p.AdmitChat(r.Context(), x, caller, req, r.Header.Get(HeaderTags))
	admitted(c, x)
	return err
}

func idempotency(r *http.Request, x *pipeline.Exchange) *APIError {
	k := r.Header.Get(HeaderIdempotencyKey)
	if len(k) > maxIdempotencyKey {
		return errBadRequest("invalid_idempotency_key", "", "The Idempotency-Key header is longer than "+strconv.Itoa(maxIdempotencyKey)+" characters.")
	}
	x.Idempotency(k)
	return nil
}

// answerPiece is how much of a non-streamed answer is written under one stall deadline.
const answerPiece = 64 << 10

// writeAnswer writes a non-streamed answer under the stall bound, a piece at a time so
// that a slow reader still making progress is not cut: an answer of many megabytes to a
// client that reads nothing must not hold the handler until it leaves.
func (s *Server) writeAnswer(c echo.Context, v any) error {
	b, held := encodeJSON(c, http.StatusOK, v)
	defer releaseJSON(held, b)
	return s.writeBody(c, b)
}

// writeJSONHeaders writes the status and headers of a JSON body of n bytes.
func writeJSONHeaders(c echo.Context, status, n int) {
	h := c.Response().Header()
	h[echo.HeaderContentType] = hvJSON
	h[echo.HeaderContentLength] = contentLength(n)
	c.Response().WriteHeader(status)
}

// contentLength is the Content-Length header value of a body of n bytes: for most answers
// (up to sharedLengths bytes) one of a table made once and shared like hvJSON, instead of a
// string and a one-element slice per answer.
func contentLength(n int) []string {
	if n >= 0 && n < len(sharedLengths) {
		return sharedLengths[n : n+1 : n+1]
	}
	return []string{strconv.Itoa(n)}
}

// sharedLengths[n] is n in decimal, for n under 4 KiB: its strings are cut from one.
var sharedLengths = func() []string {
	const n = 4 << 10
	var digits []byte
	ends := make([]int, n)
	for i := range n {
		digits = strconv.AppendInt(digits, int64(i), 10)
		ends[i] = len(digits)
	}
	all := string(digits)
	out := make([]string, n)
	start := 0
	for i, end := range ends {
		out[i], start = all[start:end], end
	}
	return out
}()

// bufferedAnswer is the size of body net/http holds in the response's buffer until the
// handler returns or writes more (its bufferBeforeChunkingSize; HTTP/2's buffer is
// larger): a body this small reaches the connection only after writeBody's deadline is
// cleared, so setting one bounds no write. Most answers are this small, and each deadline
// set or cleared re-arms a runtime timer. TestSmallAnswerIsWrittenAfterTheHandler holds
// net/http to it.
const bufferedAnswer = 2048

// writeBody writes an encoded answer whose headers are written, under the stall bound
// when the connection has write deadlines (a writer without them gets it in one write).
func (s *Server) writeBody(c echo.Context, b []byte) error {
	if len(b) <= bufferedAnswer {
		if _, err := c.Response().Write(b); err != nil {
			return s.writeFailed(err)
		}
		return nil
	}
	rc := http.NewResponseController(c.Response().Writer)
	if rc.SetWriteDeadline(time.Now().Add(s.o.WriteStallTimeout)) != nil {
		c.Response().Write(b)
		return nil
	}
	defer rc.SetWriteDeadline(time.Time{})
	for len(b) > 0 {
		n := min(len(b), answerPiece)
		rc.SetWriteDeadline(time.Now().Add(s.o.WriteStallTimeout))
		if _, err := c.Response().Write(b[:n]); err != nil {
			return s.writeFailed(err)
		}
		b = b[n:]
	}
	return nil
}

// decode reads and parses a chat completion body within the size limit.
func (s *Server) decode(c echo.Context) (*adapters.ChatRequest, *APIError) {
	req := &adapters.ChatRequest{}
	if e := s.readJSON(c, req); e != nil {
		return nil, e
	}
	if e := validate(req); e != nil {
		return nil, e
	}
	return req, nil
}

// readBody reads the body within the size limit into a slice the caller owns: a body
// passed through to an upstream is kept for the whole request.
func (s *Server) readBody(c echo.Context) ([]byte, *APIError) {
	var out []byte
	e := s.read(c, func(b []byte) *APIError {
		out = bytes.Clone(b)
		return nil
	})
	return out, e
}

// readJSON reads the body within the size limit and decodes it into v (see unmarshal).
func (s *Server) readJSON(c echo.Context, v any) *APIError {
	return s.read(c, func(b []byte) *APIError {
		if err := unmarshal(b, v); err != nil {
			return errBadRequest("invalid_json", "", "We could not parse the JSON body of your request: "+jsonReason(err))
		}
		return nil
	})
}

// read reads the body within the size limit into a pooled buffer and hands it to use.
func (s *Server) read(c echo.Context, use func([]byte) *APIError) *APIError {
	r := c.Request()
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 {
			bufPool.Put(buf)
		}
	}()
	body := r.Body
	if r.ContentLength < 0 || r.ContentLength > s.o.MaxBodyBytes {
		// A body of a declared length within the limit cannot exceed it (net/http reads no
		// more than the length), so only the others are wrapped: one allocation each.
		body = http.MaxBytesReader(c.Response(), r.Body, s.o.MaxBodyBytes)
	}
	_, err := buf.ReadFrom(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			drainBody(c, r.Body)
			return newAPIError(http.StatusRequestEntityTooLarge, "request_too_large",
				"Request body is larger than the gateway's limit of "+strconv.FormatInt(s.o.MaxBodyBytes, 10)+
					" bytes (max_body_bytes in gavel.yaml).")
		}
		return errBadRequest("invalid_body", "", "Could not read the request body.")
	}
	if buf.Len() == 0 {
		return errBadRequest("invalid_body", "", "The request body is empty; send a JSON request body.")
	}
	return use(buf.Bytes())
}

// unmarshal decodes a body: a chat request keeps the members it has no typed field for
// (adapters.DecodeChatRequest), anything else is plain JSON, and a request type of another
// protocol that wants them (adapters.FieldNamer) gets its body's member names, which the
// policy sees as input.request.fields.
func unmarshal(b []byte, v any) error {
	if r, ok := v.(*adapters.ChatRequest); ok {
		return adapters.DecodeChatRequest(b, r)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	if fn, ok := v.(adapters.FieldNamer); ok {
		fn.SetFieldNames(adapters.MemberNames(b))
	}
	return nil
}

// Bounds of reading what is left of a body over the limit.
const (
	maxDrainBytes = 128 << 20
	drainTimeout  = 10 * time.Second
)

// drainBody reads and discards the rest of a body over the limit (within bounds) before
// the 413 is written: a client still sending when the server answers and closes sees a
// connection reset instead of the status (the Python SDK reports a connection error).
// Past the bounds the connection is closed as before.
func drainBody(c echo.Context, body io.Reader) {
	rc := http.NewResponseController(c.Response().Writer)
	if rc.SetReadDeadline(time.Now().Add(drainTimeout)) != nil {
		return
	}
	io.CopyN(io.Discard, body, maxDrainBytes)
	rc.SetReadDeadline(time.Time{})
}

// jsonReason describes a decoding error without echoing the body back.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "syntax error at byte " + strconv.FormatInt(se.Offset, 10) + "."
	case errors.As(err, &te):
		return "field '" + te.Field + "' has the wrong type (got " + te.Value + ")."
	}
	return err.Error()
}
