package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
	"github.com/gavel-gw/gavel/adapters/internal/rawjson"
)

var (
	_ adapters.Passthrough = (*Provider)(nil)
	_ adapters.Speaker     = (*Provider)(nil)
)

// forwarded are the client headers a passed-through Responses request keeps.
var forwarded = [...]string{"OpenAI-Beta"}

// Speaks reports whether the upstream serves protocol natively: the Responses API when
// the provider is configured to (Config.Responses; on by default for OpenAI's own API).
func (p *Provider) Speaks(protocol string) bool {
	return protocol == adapters.ProtocolResponses && p.responses != ""
}

// RawCall passes a Responses API request through to POST {base}/responses with only its
// model, and its max_output_tokens when the decision caps it, rewritten. The client's
// OpenAI-Beta header is kept; the API key, organization and project are the provider's.
func (p *Provider) RawCall(ctx context.Context, req *adapters.RawRequest) (*adapters.RawResult, error) {
	if !p.Speaks(req.Protocol) || req.Op != "" {
		return nil, adapters.ErrNotNative
	}
	body, err := rawjson.SetString(req.Body, "model", req.Model)
	if err == nil && req.MaxOutputTokens > 0 {
		cur, ok, _ := rawjson.Get(body, "max_output_tokens")
		n, perr := strconv.Atoi(string(bytes.TrimSpace(cur)))
		if !ok || perr != nil || n > req.MaxOutputTokens {
			body, err = rawjson.Set(body, "max_output_tokens", strconv.AppendInt(nil, int64(req.MaxOutputTokens), 10))
		}
	}
	if err != nil {
		return nil, &adapters.Error{Provider: p.Name(), Kind: adapters.KindBadRequest, Message: "request body is not a JSON object", Err: err}
	}
	var fwd http.Header
	for _, k := range forwarded {
		if v := req.Header.Values(k); len(v) > 0 {
			if fwd == nil {
				fwd = make(http.Header, len(forwarded))
			}
			fwd[k] = v
		}
	}
	if req.Stream {
		rc, status, err := p.OpenRawStream(ctx, p.responses, body, fwd)
		if err != nil {
			return nil, err
		}
		s := &rawStream{p: p}
		s.Open(ctx, &p.Base, rc)
		return &adapters.RawResult{Status: status, Stream: s}, nil
	}
	status, out, err := p.ExchangeRaw(ctx, p.responses, body, fwd, p.rawCheck)
	if err != nil {
		return nil, err
	}
	res := &adapters.RawResult{Status: status, Body: out}
	var a rawResponse
	if json.Unmarshal(out, &a) == nil {
		res.Model = a.Model
		res.Usage = a.Usage.canonical()
	}
	return res, nil
}

// rawResponse is what gavel reads of a Responses answer: who answered, its usage, and the
// error of a failed one.
type rawResponse struct {
	Model  string           `json:"model"`
	Status string           `json:"status"`
	Usage  *responsesUsage  `json:"usage"`
	Error  *json.RawMessage `json:"error"`
}

// responsesUsage is a Responses usage object.
type responsesUsage struct {
	InputTokens        int `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int `json:"total_tokens"`
}

// canonical is the usage in the canonical counts (input_tokens includes the cached ones,
// as prompt_tokens does); nil stays nil.
func (u *responsesUsage) canonical() *adapters.Usage {
	if u == nil {
		return nil
	}
	out := &adapters.Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.TotalTokens}
	if out.TotalTokens == 0 {
		out.TotalTokens = u.InputTokens + u.OutputTokens
	}
	if c := u.InputTokensDetails.CachedTokens; c > 0 {
		out.PromptTokensDetails = &adapters.PromptTokensDetails{CachedTokens: c}
	}
	if r := u.OutputTokensDetails.ReasoningTokens; r > 0 {
		out.CompletionTokensDetails = &adapters.CompletionTokensDetails{ReasoningTokens: r}
	}
	return out
}

// rawCheck returns the error a 2xx body reports, as for Chat.
func (p *Provider) rawCheck(body []byte) *adapters.Error {
	if !mayHoldError(body) {
		return nil
	}
	var a rawResponse
	if json.Unmarshal(body, &a) != nil {
		return p.ProtocolError("upstream answer is not a JSON object", nil)
	}
	if a.Status == "" && a.Error != nil && !isNull(*a.Error) {
		if w, ok := parseErrorBody(body); ok {
			return p.streamError(w)
		}
	}
	return nil
}

// rawEvent is what gavel reads of a Responses stream event: its type, the response of
// the lifecycle events (usage, error), an error event's fields.
type rawEvent struct {
	Type     string `json:"type"`
	Response struct {
		Usage *responsesUsage `json:"usage"`
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"response"`
	Code    json.RawMessage `json:"code"`
	Message string          `json:"message"`
	Param   json.RawMessage `json:"param"`
}

// rawStream is the adapters.RawStream of a passed-through Responses stream: each event as
// the upstream sent it, the usage read from the terminal event.
type rawStream struct {
	httpx.StreamBody
	p      *Provider
	ev     rawEvent
	events int
	usage  *adapters.Usage
}

// Recv returns the next event as it came. response.completed and response.incomplete are
// the last events; an error event or response.failed ends the stream with its
// *adapters.Error (the client is told in gavel's words); a body that ends before a last
// event is a truncated stream.
func (s *rawStream) Recv() (adapters.RawEvent, error) {
	if err := s.Stopped(); err != nil {
		return adapters.RawEvent{}, err
	}
	for {
		data, err := s.Next()
		if err != nil {
			if e := s.ReadError(err); e != nil {
				return adapters.RawEvent{}, s.End(e)
			}
			return adapters.RawEvent{}, s.End(s.EndedBefore("response.completed", "event", s.events))
		}
		data = bytes.TrimSpace(data)
		if len(data) == 0 {
			continue
		}
		s.ev = rawEvent{}
		if err := json.Unmarshal(data, &s.ev); err != nil {
			return adapters.RawEvent{}, s.End(s.p.ProtocolError("cannot decode stream event", err))
		}
		s.events++
		switch s.ev.Type {
		case "error":
			return adapters.RawEvent{}, s.End(s.p.streamError(wireError{Code: httpx.RawText(s.ev.Code), Message: s.ev.Message, Param: httpx.RawText(s.ev.Param)}))
		case "response.failed":
			w := wireError{Code: "server_error", Message: "the response failed"}
			if e := s.ev.Response.Error; e != nil {
				w = wireError{Code: e.Code, Message: e.Message}
			}
			s.usage = s.ev.Response.Usage.canonical()
			return adapters.RawEvent{}, s.End(s.p.streamError(w))
		case "response.completed", "response.incomplete":
			s.usage = s.ev.Response.Usage.canonical()
			s.MarkDone()
			// The last event is copied so the stream can end now; the next Recv is io.EOF.
			ev := adapters.RawEvent{Name: bytes.Clone(s.Event()), Data: bytes.Clone(data)}
			s.End(io.EOF)
			return ev, nil
		}
		return adapters.RawEvent{Name: s.Event(), Data: data}, nil
	}
}

// Usage is the usage of the terminal event; nil before it.
func (s *rawStream) Usage() *adapters.Usage { return s.usage }
