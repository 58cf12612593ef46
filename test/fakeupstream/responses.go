package fakeupstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gavel-gw/gavel/test/internal/fakecore"
)

// The fake's Responses API (POST /v1/responses), for gavel's pass-through of Responses
// requests to OpenAI: the same Steps script it (a reply, tool calls, errors, faults; a
// Step's Reasoning adds a reasoning item), counted with the chat requests. Answers and
// stream events are written as OpenAI writes them: every field of the response object in
// its order, nulls included, each event named and numbered by sequence_number.

// responsesRequest is what the fake reads of a Responses request.
type responsesRequest struct {
	Model        string  `json:"model"`
	Stream       bool    `json:"stream"`
	Instructions *string `json:"instructions"`
	Store        *bool   `json:"store"`
	Previous     *string `json:"previous_response_id"`
}

// responses serves POST /v1/responses.
func (s *Server) responses(w http.ResponseWriter, r *http.Request) {
	buf := getBuf()
	defer putBuf(buf)
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, maxBody+1)); err != nil {
		return
	}
	if buf.Len() > maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, Step{Message: "request body too large"})
		return
	}
	var req responsesRequest
	err := json.Unmarshal(buf.Bytes(), &req)
	s.rec.Add(Recorded{Time: time.Now(), Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(),
		Raw: bytes.Clone(buf.Bytes()), Model: req.Model, Stream: req.Stream})
	switch {
	case err != nil:
		writeError(w, http.StatusBadRequest, Step{Message: "We could not parse the JSON body of your request."})
		return
	case req.Model == "":
		writeError(w, http.StatusBadRequest, Step{Message: "Missing required parameter: 'model'.", Code: "missing_required_parameter", Param: "model"})
		return
	}
	st, _ := s.steps.Next(req.Model)
	n := s.seq.Add(1)
	resp := renderResponses(&req, st, n, s.created)
	if req.Stream {
		s.core.StreamStarted()
		defer s.core.StreamDone()
	}
	s.respond(w, r, resp)
}

// Wire types of the fake's Responses answers, in OpenAI's field order.
type (
	respObject struct {
		ID                 string            `json:"id"`
		Object             string            `json:"object"`
		CreatedAt          int64             `json:"created_at"`
		Status             string            `json:"status"`
		Background         bool              `json:"background"`
		Error              *respError        `json:"error"`
		IncompleteDetails  *respIncomplete   `json:"incomplete_details"`
		Instructions       *string           `json:"instructions"`
		MaxOutputTokens    *int              `json:"max_output_tokens"`
		Model              string            `json:"model"`
		Output             []any             `json:"output"`
		ParallelToolCalls  bool              `json:"parallel_tool_calls"`
		PreviousResponseID *string           `json:"previous_response_id"`
		Reasoning          respReasoning     `json:"reasoning"`
		ServiceTier        string            `json:"service_tier"`
		Store              bool              `json:"store"`
		Temperature        float64           `json:"temperature"`
		Text               json.RawMessage   `json:"text"`
		ToolChoice         string            `json:"tool_choice"`
		Tools              []any             `json:"tools"`
		TopLogprobs        int               `json:"top_logprobs"`
		TopP               float64           `json:"top_p"`
		Truncation         string            `json:"truncation"`
		Usage              *respUsage        `json:"usage"`
		User               *string           `json:"user"`
		Metadata           map[string]string `json:"metadata"`
	}
	respError struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	respIncomplete struct {
		Reason string `json:"reason"`
	}
	respReasoning struct {
		Effort  *string `json:"effort"`
		Summary *string `json:"summary"`
	}
	respUsage struct {
		InputTokens         int            `json:"input_tokens"`
		InputTokensDetails  map[string]int `json:"input_tokens_details"`
		OutputTokens        int            `json:"output_tokens"`
		OutputTokensDetails map[string]int `json:"output_tokens_details"`
		TotalTokens         int            `json:"total_tokens"`
	}
	respReasoningItem struct {
		ID               string `json:"id"`
		Type             string `json:"type"`
		EncryptedContent string `json:"encrypted_content"`
		Summary          []any  `json:"summary"`
	}
	respMessage struct {
		ID      string     `json:"id"`
		Type    string     `json:"type"`
		Status  string     `json:"status"`
		Content []respText `json:"content"`
		Role    string     `json:"role"`
	}
	respText struct {
		Type        string `json:"type"`
		Annotations []any  `json:"annotations"`
		Logprobs    []any  `json:"logprobs"`
		Text        string `json:"text"`
	}
	respCall struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		Status    string `json:"status"`
		Arguments string `json:"arguments"`
		CallID    string `json:"call_id"`
		Name      string `json:"name"`
	}
)

// renderResponses builds the answer a step gives to a Responses request: an error, the
// response object, or its stream of events.
func renderResponses(req *responsesRequest, st Step, n uint64, created int64) *rendered {
	r := &rendered{step: st, status: http.StatusOK, header: extraHeaders(st)}
	if st.isError() {
		r.status = st.Status
		r.body = marshal(errorEnvelope(st, st.Status))
		return r
	}
	id := fmt.Sprintf("resp_fake%016d", n)
	reply := replyText(req.Model, st)
	u := usage(st, reply)
	res := &respObject{ID: id, Object: "response", CreatedAt: created, Status: "in_progress", Instructions: req.Instructions,
		Model: req.Model, Output: []any{}, ParallelToolCalls: true, PreviousResponseID: req.Previous, ServiceTier: "default",
		Store: req.Store == nil || *req.Store, Temperature: 1, Text: json.RawMessage(`{"format":{"type":"text"},"verbosity":"medium"}`),
		ToolChoice: "auto", Tools: []any{}, TopP: 1, Truncation: "disabled", Metadata: map[string]string{}}
	var items []any
	if st.Reasoning != "" {
		items = append(items, respReasoningItem{ID: fmt.Sprintf("rs_fake%016d", n), Type: "reasoning", EncryptedContent: st.Reasoning, Summary: []any{}})
	}
	msgID := fmt.Sprintf("msg_fake%016d", n)
	if reply != "" {
		items = append(items, respMessage{ID: msgID, Type: "message", Status: "completed", Role: "assistant",
			Content: []respText{{Type: "output_text", Annotations: []any{}, Logprobs: []any{}, Text: reply}}})
	}
	for i, tc := range st.ToolCalls {
		items = append(items, respCall{ID: fmt.Sprintf("fc_fake%016d_%d", n, i), Type: "function_call", Status: "completed",
			Arguments: tc.Arguments, CallID: toolCallID(tc, i), Name: tc.Name})
	}
	done := *res
	done.Status, done.Output = "completed", items
	if finishReason(st) == "length" {
		done.Status, done.IncompleteDetails = "incomplete", &respIncomplete{Reason: "max_output_tokens"}
	}
	done.Usage = &respUsage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens, TotalTokens: u.TotalTokens,
		InputTokensDetails: map[string]int{"cached_tokens": 0}, OutputTokensDetails: map[string]int{"reasoning_tokens": 0}}
	if !req.Stream {
		r.body = marshal(&done)
		return r
	}

	r.stream = true
	var events [][]byte
	seq := 0
	ev := func(typ string, fields ...any) {
		// fields are key, value pairs written after "type", then sequence_number.
		var b bytes.Buffer
		b.WriteString(`{"type":`)
		b.Write(marshal(typ))
		for i := 0; i+1 < len(fields); i += 2 {
			b.WriteString(`,"` + fields[i].(string) + `":`)
			b.Write(marshal(fields[i+1]))
		}
		fmt.Fprintf(&b, `,"sequence_number":%d}`, seq)
		seq++
		events = append(events, []byte("event: "+typ+"\ndata: "+b.String()+"\n\n"))
	}
	ev("response.created", "response", res)
	ev("response.in_progress", "response", res)
	for i, it := range items {
		switch it := it.(type) {
		case respReasoningItem:
			ev("response.output_item.added", "output_index", i, "item", it)
			ev("response.output_item.done", "output_index", i, "item", it)
		case respMessage:
			added := it
			added.Status, added.Content = "in_progress", []respText{}
			ev("response.output_item.added", "output_index", i, "item", added)
			ev("response.content_part.added", "item_id", it.ID, "output_index", i, "content_index", 0,
				"part", respText{Type: "output_text", Annotations: []any{}, Logprobs: []any{}})
			for _, piece := range split(reply, chunks(st.Chunks, DefaultChunks)) {
				ev("response.output_text.delta", "item_id", it.ID, "output_index", i, "content_index", 0, "delta", piece, "logprobs", []any{})
			}
			ev("response.output_text.done", "item_id", it.ID, "output_index", i, "content_index", 0, "text", reply, "logprobs", []any{})
			ev("response.content_part.done", "item_id", it.ID, "output_index", i, "content_index", 0, "part", it.Content[0])
			ev("response.output_item.done", "output_index", i, "item", it)
		case respCall:
			added := it
			added.Status, added.Arguments = "in_progress", ""
			ev("response.output_item.added", "output_index", i, "item", added)
			tc := st.ToolCalls[len(st.ToolCalls)-(len(items)-i)]
			for _, piece := range split(it.Arguments, chunks(tc.Pieces, DefaultArgPieces)) {
				ev("response.function_call_arguments.delta", "item_id", it.ID, "output_index", i, "delta", piece)
			}
			ev("response.function_call_arguments.done", "item_id", it.ID, "name", it.Name, "output_index", i, "arguments", it.Arguments)
			ev("response.output_item.done", "output_index", i, "item", it)
		}
	}
	if done.Status == "incomplete" {
		ev("response.incomplete", "response", &done)
	} else {
		ev("response.completed", "response", &done)
	}
	if st.Fault == MidStreamError && st.FaultAfter < len(events) {
		code := st.Code
		if code == "" {
			code = "server_error"
		}
		msg := st.Message
		if msg == "" {
			msg = "fake upstream: the model failed"
		}
		events, seq = events[:st.FaultAfter], st.FaultAfter
		failed := *res
		failed.Status, failed.Error = "failed", &respError{Code: code, Message: msg}
		ev("error", "code", code, "message", msg, "param", nil)
		ev("response.failed", "response", &failed)
	}
	r.body, r.ends = fakecore.Join(events)
	return r
}
