package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/decisionlog"
	"github.com/gavel-gw/gavel/engine/executor"
	"github.com/gavel-gw/gavel/engine/pii"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/engine/tokens"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// exchange is one request's state, for the final log line and metrics.
type exchange struct {
	start      time.Time
	endpoint   string // "chat" unless set
	model      string // as asked, for the log line
	id         string
	caller     *auth.Caller
	req        *adapters.ChatRequest // as the client sent it
	up         *adapters.ChatRequest // as it leaves the gateway (redacted when the policy says so)
	rev        *policy.Revision
	input      ast.Value // the policy input, kept for the decision log
	result     ast.Value // data.gavel.decision as the policy returned it
	decision   *policy.Decision
	route      string
	upstream   time.Duration
	status     int
	usage      *adapters.Usage
	errCode    string
	streamFail bool
	spend      map[string]policy.SpendState
	rate       map[string]policy.RateState
	hold       *hold
	streamed   strings.Builder // streamed completion text, counted when the upstream sent no usage
	prompt     []policy.Message
	features   *policy.Request // what the policy saw, for the decision log

	// The shadows' slot for the primary's answer, and that answer when not streamed; nil
	// without shadows.
	primary *executor.PrimaryAnswer
	answer  *adapters.ChatResponse
}

func (s *Server) chatCompletions(c echo.Context) error {
	return s.serve(c, &exchange{start: time.Now(), id: newID(), route: "none"}, s.chat)
}

// serve runs one API request: the decision id header first, the client's error in
// OpenAI's shape on failure, and the record (metrics, log, decision log, ledger) last.
func (s *Server) serve(c echo.Context, x *exchange, handle func(echo.Context, *exchange) error) error {
	c.Response().Header().Set(HeaderDecisionID, x.id)
	if err := handle(c, x); err != nil {
		api := clientError(err)
		if api.Status >= 500 && api.Code != "upstream_error" {
			s.log.Error("request failed", "decision_id", x.id, "err", err)
		}
		x.status, x.errCode = api.Status, api.Code
		writeError(c, api)
	}
	s.finish(c, x)
	return nil
}

// admit is the policy half of every endpoint: the caller's standing, the decision, its
// headers, a denial as the client's error, and the budgets and rate limits it names.
func (s *Server) admit(c echo.Context, x *exchange, f policy.Request) (*policy.Decision, error) {
	r := c.Request()
	rev := s.o.Engine.Active()
	if rev == nil {
		return nil, policy.ErrNoBundle
	}
	x.rev = rev
	h := c.Response().Header()
	h.Set(HeaderRevision, rev.ID)
	var err error
	if x.spend, x.rate, err = s.standing(r.Context(), rev, x.caller); err != nil {
		return nil, ledgerError(err)
	}
	d, err := s.decide(r.Context(), x, f)
	if err != nil {
		return nil, err
	}
	x.decision = d
	if d.AB != nil {
		h.Set(HeaderExperiment, d.AB.Experiment)
		h.Set(HeaderArm, d.AB.Arm)
	}
	if !d.Allow {
		e := newAPIError(d.Deny.Status, d.Deny.Code, d.Deny.Message)
		if d.Deny.Type != "" {
			e.Type = d.Deny.Type
		}
		return nil, e
	}
	if x.hold, err = s.enforce(r.Context(), h, x, f.EstInputTokens, f.MaxTokens); err != nil {
		return nil, err
	}
	if w := budgetWarning(d, x.spend); w != "" {
		h.Set(HeaderBudgetWarning, w)
	}
	return d, nil
}

// requestContext bounds the whole request: the policy's timeout_ms, else request_timeout.
func (s *Server) requestContext(ctx context.Context, d *policy.Decision) (context.Context, context.CancelFunc) {
	timeout := s.o.RequestTimeout
	if d.Limits.TimeoutMS > 0 {
		timeout = time.Duration(d.Limits.TimeoutMS) * time.Millisecond
	}
	if timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, timeout)
}

func (s *Server) chat(c echo.Context, x *exchange) error {
	r := c.Request()
	caller, err := s.o.Keys.Authenticate(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	x.caller = caller
	req, apiErr := s.decode(c)
	if apiErr != nil {
		return apiErr
	}
	x.req = req
	f := features(x.id, req, r.Header, caller)
	x.prompt = f.Messages
	d, err := s.admit(c, x, f)
	if err != nil {
		return err
	}
	if x.up, err = s.o.Executor.Prepare(req, d); err != nil {
		return &errPolicy{err: err}
	}
	if len(d.Shadow) > 0 {
		s.shadow(r.Context(), x, d, f.EstInputTokens, f.MaxTokens)
	}
	ctx, cancel := s.requestContext(r.Context(), d)
	defer cancel()
	if req.Stream {
		if d.Degrade.Stream != nil && !*d.Degrade.Stream {
			return s.degradedStream(ctx, c, x)
		}
		return s.stream(ctx, c, x)
	}
	res, err := s.o.Executor.Chat(ctx, x.up, d)
	if err != nil {
		return err
	}
	x.route, x.upstream, x.usage = res.Target.String(), res.Upstream, res.Response.Usage
	if x.primary != nil {
		x.answer = res.Response
	}
	c.Response().Header().Set(HeaderRoute, x.route)
	x.status = http.StatusOK
	writeJSON(c, http.StatusOK, res.Response)
	return nil
}

// experimentOf names the experiment a decision's shadow belongs to, for metrics and logs.
func experimentOf(d *policy.Decision) string {
	if e := d.Labels["experiment"]; e != "" {
		return e
	}
	if d.AB != nil {
		return d.AB.Experiment
	}
	return ""
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

// readJSON reads the body within the size limit and decodes it into v.
func (s *Server) readJSON(c echo.Context, v any) *APIError {
	r := c.Request()
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 {
			bufPool.Put(buf)
		}
	}()
	_, err := buf.ReadFrom(http.MaxBytesReader(c.Response(), r.Body, s.o.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return newAPIError(http.StatusRequestEntityTooLarge, "request_too_large",
				"Request body is larger than the gateway's limit of "+strconv.FormatInt(s.o.MaxBodyBytes, 10)+" bytes.")
		}
		return errBadRequest("invalid_body", "", "Could not read the request body.")
	}
	if buf.Len() == 0 {
		return errBadRequest("invalid_body", "", "The request body is empty; send a JSON request body.")
	}
	if err := json.Unmarshal(buf.Bytes(), v); err != nil {
		return errBadRequest("invalid_json", "", "We could not parse the JSON body of your request: "+jsonReason(err))
	}
	return nil
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

// decide builds the input and evaluates the policy. Any failure denies: a request the
// policy could not judge does not go anywhere.
func (s *Server) decide(ctx context.Context, x *exchange, f policy.Request) (*policy.Decision, error) {
	start := time.Now()
	shared := s.o.Planner.Current(ctx, x.rev)
	in := policy.Input{
		Request:   f,
		PII:       s.findPII(f.Messages),
		Spend:     x.spend,
		Rate:      x.rate,
		Caller:    x.caller.Value,
		Providers: shared.Providers,
		Plan:      shared.Plan,
		NowNS:     x.start.UnixNano(),
	}
	x.features = &in.Request
	x.input = in.Value()
	var d *policy.Decision
	var err error
	if x.result, err = x.rev.Evaluate(ctx, x.input); err == nil {
		d, err = policy.ParseDecision(x.result)
	}
	outcome := "allow"
	switch {
	case err != nil:
		outcome = "error"
	case !d.Allow:
		outcome = "deny"
	}
	s.o.Metrics.Decision(outcome, time.Since(start))
	if d != nil {
		s.o.Metrics.DecisionRules(d.Reasons)
	}
	s.traceDecide(ctx, start, x.rev, d, err)
	if err != nil {
		return nil, &errPolicy{err: err}
	}
	return d, nil
}

// countUsage counts tokens with the real tokenizer, for streams that reported no usage.
func (s *Server) countUsage(route string, prompt []policy.Message, completion string) *adapters.Usage {
	_, model, _ := strings.Cut(route, "/")
	u := &adapters.Usage{PromptTokens: 3}
	for _, m := range prompt {
		n, err := s.counter.Count(model, m.Text)
		if err != nil {
			n = tokens.Estimate(m.Text)
		}
		u.PromptTokens += n + 4
	}
	n, err := s.counter.Count(model, completion)
	if err != nil {
		n = tokens.Estimate(completion)
	}
	u.CompletionTokens = n
	u.TotalTokens = u.PromptTokens + n
	return u
}

// findPII runs gavel's detectors over every message text: the policy decides what to do
// with the findings without scanning text itself.
func (s *Server) findPII(msgs []policy.Message) map[string]int {
	if s.o.PII == nil {
		return nil
	}
	var counts pii.Counts
	for i := range msgs {
		c := s.o.PII.Counts(msgs[i].Text)
		for t, n := range c {
			if counts == nil {
				counts = pii.Counts{}
			}
			counts[t] += n
		}
	}
	if counts == nil {
		return nil
	}
	out := make(map[string]int, len(counts))
	for t, n := range counts {
		out[string(t)] = n
	}
	return out
}

// finish records the request: metrics and one structured log line without any prompt
// or completion text.
func (s *Server) finish(c echo.Context, x *exchange) {
	dur := time.Since(x.start)
	cost, priced := s.charge(x)
	if x.status == 0 {
		x.status = c.Response().Status
	}
	if x.primary != nil {
		answerShadows(x)
	}
	arm := ""
	stream := false
	if x.decision != nil && x.decision.AB != nil {
		arm = x.decision.AB.Arm
	}
	if x.req != nil {
		stream = x.req.Stream
	}
	endpoint := x.endpoint
	if endpoint == "" {
		endpoint = "chat"
	}
	s.o.Metrics.Request(endpoint, x.route, strconv.Itoa(x.status), arm, stream, dur)
	s.o.Metrics.ExperimentRequest(experimentOfExchange(x), arm, dur)
	if s.o.DecisionLog != nil && x.rev != nil {
		s.o.DecisionLog.Log(decisionlog.Record{ID: x.id, Time: x.start, Revision: x.rev.ID, Input: x.input, Request: x.features,
			Result: x.result, Route: x.route, Status: x.status, Error: x.errCode})
	}
	if x.upstream > 0 {
		s.o.Metrics.Overhead(max(0, dur-x.upstream))
	}
	if !s.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	// Typed attributes: no interface boxing on a line written for every request.
	attrs := make([]slog.Attr, 0, 20)
	attrs = append(attrs, slog.String("decision_id", x.id), slog.Int("status", x.status), slog.String("route", x.route),
		slog.Int64("duration_ms", dur.Milliseconds()), slog.Int64("upstream_ms", x.upstream.Milliseconds()),
		slog.String("endpoint", endpoint))
	if x.req != nil {
		attrs = append(attrs, slog.String("model", x.req.Model), slog.Bool("stream", x.req.Stream))
	} else if x.model != "" {
		attrs = append(attrs, slog.String("model", x.model))
	}
	if x.caller != nil {
		attrs = append(attrs, slog.String("key_id", x.caller.Record.KeyID), slog.String("team", x.caller.Record.Team))
	}
	if x.rev != nil {
		attrs = append(attrs, slog.String("bundle_revision", x.rev.ID))
	}
	if arm != "" {
		attrs = append(attrs, slog.String("experiment", x.decision.AB.Experiment), slog.String("arm", arm))
	}
	if x.usage != nil {
		attrs = append(attrs, slog.Int("input_tokens", x.usage.PromptTokens), slog.Int("output_tokens", x.usage.CompletionTokens))
	} else if priced {
		attrs = append(attrs, slog.Int("input_tokens", 0), slog.Int("output_tokens", 0))
	}
	if priced {
		attrs = append(attrs, slog.Int64("cost_micro_usd", cost))
	} else {
		attrs = append(attrs, slog.Bool("usage_counted_async", true))
	}
	if x.errCode != "" {
		attrs = append(attrs, slog.String("error_code", x.errCode))
	}
	if x.streamFail {
		attrs = append(attrs, slog.Bool("stream_failed", true))
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}
