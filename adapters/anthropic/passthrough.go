package anthropic

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

var _ adapters.Passthrough = (*Provider)(nil)

// forwarded are the client headers a passed-through Messages request keeps: the API
// version its body is written for, and the betas it opts into.
var forwarded = [...]string{"Anthropic-Version", "Anthropic-Beta"}

// RawCall passes a Messages API request (or a count_tokens request) through with only its
// model, and its max_tokens when the decision caps it, rewritten. The client's
// anthropic-version and anthropic-beta headers replace the provider's; the API key is the
// provider's.
func (p *Provider) RawCall(ctx context.Context, req *adapters.RawRequest) (*adapters.RawResult, error) {
	if req.Protocol != adapters.ProtocolAnthropic {
		return nil, adapters.ErrNotNative
	}
	url := p.url
	switch req.Op {
	case "":
	case adapters.OpCountTokens:
		url = p.url + "/count_tokens"
	default:
		return nil, adapters.ErrNotNative
	}
	body, err := p.rawBody(req)
	if err != nil {
		return nil, err
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
	if req.Stream && req.Op == "" {
		rc, status, err := p.OpenRawStream(ctx, url, body, fwd)
		if err != nil {
			return nil, err
		}
		s := &rawStream{p: p}
		s.Open(ctx, &p.Base, rc)
		return &adapters.RawResult{Status: status, Stream: s}, nil
	}
	status, out, err := p.ExchangeRaw(ctx, url, body, fwd, p.rawCheck)
	if err != nil {
		return nil, err
	}
	res := &adapters.RawResult{Status: status, Body: out}
	if req.Op == "" {
		var a rawAnswer
		if json.Unmarshal(out, &a) == nil {
			res.Model = a.Model
			if a.Usage.InputTokens != nil || a.Usage.OutputTokens != nil {
				res.Usage = usage(&a.Usage)
			}
		}
	}
	return res, nil
}

// rawBody rewrites the client's body for the target: its model, and max_tokens lowered
// to the decision's cap (count_tokens takes no max_tokens).
func (p *Provider) rawBody(req *adapters.RawRequest) ([]byte, error) {
	body, err := rawjson.SetString(req.Body, "model", req.Model)
	if err != nil {
		return nil, &adapters.Error{Provider: p.Name(), Kind: adapters.KindBadRequest, Message: "request body is not a JSON object", Err: err}
	}
	if m := req.MaxOutputTokens; m > 0 && req.Op == "" {
		cur, ok, _ := rawjson.Get(body, "max_tokens")
		n, perr := strconv.Atoi(string(bytes.TrimSpace(cur)))
		if !ok || perr != nil || n > m {
			if body, err = rawjson.Set(body, "max_tokens", strconv.AppendInt(nil, int64(m), 10)); err != nil {
				return nil, &adapters.Error{Provider: p.Name(), Kind: adapters.KindBadRequest, Message: "request body is not a JSON object", Err: err}
			}
		}
	}
	return body, nil
}

// rawAnswer is what gavel reads of a passed-through answer: who answered and its usage.
type rawAnswer struct {
	Type  string           `json:"type"`
	Model string           `json:"model"`
	Usage wireUsage        `json:"usage"`
	Error *wireErrorObject `json:"error"`
}

// rawCheck returns the error a 2xx body reports, as for Chat.
func (p *Provider) rawCheck(body []byte) *adapters.Error {
	var a rawAnswer
	if json.Unmarshal(body, &a) != nil {
		return p.ProtocolError("upstream answer is not a JSON object", nil)
	}
	if a.Type == "error" || a.Error != nil {
		return p.streamError(errorObject(a.Error))
	}
	return nil
}

// rawEvent is what gavel reads of a passed-through stream event: its type, the usage of
// message_start and message_delta, an error's.
type rawEvent struct {
	Type    string `json:"type"`
	Message struct {
		Model string    `json:"model"`
		Usage wireUsage `json:"usage"`
	} `json:"message"`
	Usage wireUsage        `json:"usage"`
	Error *wireErrorObject `json:"error"`
}

// rawStream is the adapters.RawStream of a passed-through Messages stream: each event as
// the upstream sent it, with the usage read on the way.
type rawStream struct {
	httpx.StreamBody
	p      *Provider
	ev     rawEvent
	events int
	u      wireUsage
	counts [4]int
	seen   bool
}

// Recv returns the next event as it came. An error event ends the stream with its
// *adapters.Error (not relayed: the client is told in gavel's words), message_stop is the
// last event, and a body that ends before it is a truncated stream.
func (s *rawStream) Recv() (adapters.RawEvent, error) {
	if err := s.Stopped(); err != nil {
		return adapters.RawEvent{}, err
	}
	for {
		data, err := s.Next()
		if err != nil {
			// A complete message_stop the body ended without its blank line still ends the
			// stream well, as for Chat.
			if err == io.EOF && isMessageStop(data) && s.ReadError(err) == nil {
				return s.handle(nil, bytes.TrimSpace(data))
			}
			if e := s.ReadError(err); e != nil {
				return adapters.RawEvent{}, s.End(e)
			}
			return adapters.RawEvent{}, s.End(s.EndedBefore("message_stop", "event", s.events))
		}
		if len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		return s.handle(s.Event(), data)
	}
}

func (s *rawStream) handle(name, data []byte) (adapters.RawEvent, error) {
	s.ev = rawEvent{}
	if err := json.Unmarshal(data, &s.ev); err != nil {
		return adapters.RawEvent{}, s.End(s.p.ProtocolError("cannot decode stream event", err))
	}
	s.events++
	switch s.ev.Type {
	case "error":
		return adapters.RawEvent{}, s.End(s.p.streamError(errorObject(s.ev.Error)))
	case "message_start":
		s.add(&s.ev.Message.Usage)
	case "message_delta":
		s.add(&s.ev.Usage)
	case "message_stop":
		s.MarkDone()
		// The last event is copied (it is small) so the stream can end now and hand its
		// reader back; the next Recv returns io.EOF.
		ev := adapters.RawEvent{Name: bytes.Clone(name), Data: bytes.Clone(data)}
		s.End(io.EOF)
		return ev, nil
	}
	return adapters.RawEvent{Name: name, Data: data}, nil
}

// add takes the counts an event reports: cumulative, so a later count replaces an
// earlier one, and a count left out is kept.
func (s *rawStream) add(u *wireUsage) {
	for i, v := range [4]*int{u.InputTokens, u.OutputTokens, u.CacheCreationInputTokens, u.CacheReadInputTokens} {
		if v == nil {
			continue
		}
		s.seen = true
		s.counts[i] = *v
		switch i {
		case 0:
			s.u.InputTokens = &s.counts[0]
		case 1:
			s.u.OutputTokens = &s.counts[1]
		case 2:
			s.u.CacheCreationInputTokens = &s.counts[2]
		case 3:
			s.u.CacheReadInputTokens = &s.counts[3]
		}
	}
}

// Usage is the usage reported so far; nil before any.
func (s *rawStream) Usage() *adapters.Usage {
	if !s.seen {
		return nil
	}
	return usage(&s.u)
}
