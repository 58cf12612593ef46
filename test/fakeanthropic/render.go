package fakeanthropic

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/gavel-gw/gavel/test/internal/fakecore"
)

// rendered is a response ready to be written: status, headers and body bytes.
type rendered struct {
	step   Step
	status int
	header http.Header // extra headers, nil when none
	stream bool        // body is a sequence of SSE events
	body   []byte      // the JSON body, or all SSE events back to back
	ends   []int       // stream only: end offset in body of each event
}

// message is a Messages API response object (type "message").
type message struct {
	ID           string  `json:"id"`
	Type         string  `json:"type"`
	Role         string  `json:"role"`
	Model        string  `json:"model"`
	Content      []any   `json:"content"` // textBlock and toolUseBlock values
	StopReason   *string `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
	Usage        Usage   `json:"usage"`
}

type textBlock struct {
	Type string `json:"type"` // "text"
	Text string `json:"text"`
}

type thinkingBlock struct {
	Type      string `json:"type"` // "thinking"
	Thinking  string `json:"thinking"`
	Signature string `json:"signature"`
}

type thinkingDelta struct {
	Type     string `json:"type"` // "thinking_delta"
	Thinking string `json:"thinking"`
}

type signatureDelta struct {
	Type      string `json:"type"` // "signature_delta"
	Signature string `json:"signature"`
}

type toolUseBlock struct {
	Type  string          `json:"type"` // "tool_use"
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

// Stream event payloads.
type (
	messageStartEvent struct {
		Type    string   `json:"type"`
		Message *message `json:"message"`
	}
	blockStartEvent struct {
		Type         string `json:"type"`
		Index        int    `json:"index"`
		ContentBlock any    `json:"content_block"`
	}
	blockDeltaEvent struct {
		Type  string `json:"type"`
		Index int    `json:"index"`
		Delta any    `json:"delta"`
	}
	textDelta struct {
		Type string `json:"type"` // "text_delta"
		Text string `json:"text"`
	}
	inputJSONDelta struct {
		Type        string `json:"type"` // "input_json_delta"
		PartialJSON string `json:"partial_json"`
	}
	blockStopEvent struct {
		Type  string `json:"type"`
		Index int    `json:"index"`
	}
	messageDeltaEvent struct {
		Type  string       `json:"type"`
		Delta messageDelta `json:"delta"`
		Usage deltaUsage   `json:"usage"`
	}
	messageDelta struct {
		StopReason   *string `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	}
	deltaUsage struct {
		OutputTokens int `json:"output_tokens"`
	}
	typeOnly struct {
		Type string `json:"type"`
	}
)

// render builds the response a step gives to a request for model; id is the message id.
func render(model string, st Step, stream bool, id string) *rendered {
	r := &rendered{step: st, status: http.StatusOK, header: extraHeaders(st)}
	switch {
	case st.isError():
		r.status = st.Status
		r.body = marshal(errorEnvelope(st.Type, st.Message, st.Status))
	case stream:
		r.stream = true
		r.body, r.ends = streamEvents(model, st, id)
	default:
		r.body = marshal(fullMessage(model, st, id))
	}
	return r
}

// extraHeaders collects the step's retry-after and custom headers.
func extraHeaders(st Step) http.Header {
	return fakecore.ExtraHeaders(st.Header, "Retry-After", st.RetryAfter)
}

// fullMessage is the non-streamed message for a step.
func fullMessage(model string, st Step, id string) *message {
	reply := replyText(model, st)
	m := &message{
		ID: id, Type: "message", Role: "assistant", Model: model,
		Content: []any{},
		Usage:   usage(st, reply),
	}
	if st.Thinking != "" {
		m.Content = append(m.Content, thinkingBlock{Type: "thinking", Thinking: st.Thinking, Signature: st.Signature})
	}
	if reply != "" {
		m.Content = append(m.Content, textBlock{Type: "text", Text: reply})
	}
	for i, tc := range st.ToolCalls {
		m.Content = append(m.Content, toolUseBlock{
			Type: "tool_use", ID: toolUseID(tc, i), Name: tc.Name, Input: toolInput(tc),
		})
	}
	m.StopReason, m.StopSequence = stopReason(st)
	return m
}

// streamEvents renders the SSE events of a streamed message (see Step for the sequence)
// and returns them back to back with the end offset of each.
func streamEvents(model string, st Step, id string) ([]byte, []int) {
	reply := replyText(model, st)
	u := usage(st, reply)
	startUsage := u
	startUsage.OutputTokens = min(u.OutputTokens, 1)

	var events [][]byte
	add := func(name string, v any) { events = append(events, sseEvent(name, v)) }
	add("message_start", messageStartEvent{Type: "message_start", Message: &message{
		ID: id, Type: "message", Role: "assistant", Model: model, Content: []any{}, Usage: startUsage,
	}})

	index := 0
	block := func(start any, deltas []any) {
		add("content_block_start", blockStartEvent{Type: "content_block_start", Index: index, ContentBlock: start})
		if index == 0 {
			add("ping", typeOnly{Type: "ping"})
		}
		for _, d := range deltas {
			add("content_block_delta", blockDeltaEvent{Type: "content_block_delta", Index: index, Delta: d})
		}
		add("content_block_stop", blockStopEvent{Type: "content_block_stop", Index: index})
		index++
	}
	if st.Thinking != "" {
		var deltas []any
		for _, piece := range split(st.Thinking, 2) {
			deltas = append(deltas, thinkingDelta{Type: "thinking_delta", Thinking: piece})
		}
		deltas = append(deltas, signatureDelta{Type: "signature_delta", Signature: st.Signature})
		block(thinkingBlock{Type: "thinking"}, deltas)
	}
	if reply != "" {
		var deltas []any
		for _, piece := range split(reply, chunks(st.Chunks, DefaultChunks)) {
			deltas = append(deltas, textDelta{Type: "text_delta", Text: piece})
		}
		block(textBlock{Type: "text", Text: ""}, deltas)
	}
	for i, tc := range st.ToolCalls {
		var deltas []any
		for _, piece := range split(string(toolInput(tc)), chunks(tc.Pieces, DefaultArgPieces)) {
			deltas = append(deltas, inputJSONDelta{Type: "input_json_delta", PartialJSON: piece})
		}
		block(toolUseBlock{Type: "tool_use", ID: toolUseID(tc, i), Name: tc.Name, Input: json.RawMessage("{}")}, deltas)
	}
	reason, seq := stopReason(st)
	add("message_delta", messageDeltaEvent{
		Type:  "message_delta",
		Delta: messageDelta{StopReason: reason, StopSequence: seq},
		Usage: deltaUsage{OutputTokens: u.OutputTokens},
	})
	add("message_stop", typeOnly{Type: "message_stop"})

	if st.Fault == MidStreamError { // never after message_stop
		typ, msg := st.Type, st.Message
		if typ == "" {
			typ = defaultMidStreamErr
		}
		if msg == "" {
			msg = defaultMessage(typ, 0)
		}
		events = fakecore.FailAt(events, st.FaultAfter, sseEvent("error", errorEnvelope(typ, msg, 0)))
	}
	return fakecore.Join(events)
}

func toolUseID(tc ToolCall, i int) string {
	if tc.ID != "" {
		return tc.ID
	}
	return "toolu_fake" + strconv.Itoa(i)
}

// toolInput is the call's input object, compacted so that the streamed pieces join to
// exactly what the non-streamed message carries.
func toolInput(tc ToolCall) json.RawMessage { return fakecore.CompactObject(tc.Arguments) }

// continued is st for a request whose last message is an assistant prefill
// (Step.Continue): the reply without the prefill's text.
func continued(model string, st Step, body map[string]any) Step {
	msgs, _ := body["messages"].([]any)
	if len(msgs) == 0 {
		return st
	}
	last, _ := msgs[len(msgs)-1].(map[string]any)
	if last["role"] != "assistant" {
		return st
	}
	var prefix string
	switch c := last["content"].(type) {
	case string:
		prefix = c
	case []any:
		for _, b := range c {
			if m, ok := b.(map[string]any); ok && m["type"] == "text" {
				t, _ := m["text"].(string)
				prefix += t
			}
		}
	}
	reply := replyText(model, st)
	if !strings.HasPrefix(reply, prefix) {
		return st
	}
	st.Reply = reply[len(prefix):]
	st.empty = st.Reply == ""
	return st
}

func replyText(model string, st Step) string {
	if st.Reply == "" && len(st.ToolCalls) == 0 && !st.empty {
		return "Hello from " + model
	}
	return st.Reply
}

func stopReason(st Step) (reason, sequence *string) {
	r := StopEndTurn
	switch {
	case st.StopReason != "":
		r = st.StopReason
	case len(st.ToolCalls) > 0:
		r = StopToolUse
	}
	if r == StopSequence {
		s := st.StopSequence
		sequence = &s
	}
	return &r, sequence
}

func usage(st Step, reply string) Usage {
	if st.Usage != nil {
		return *st.Usage
	}
	return Usage{
		InputTokens:  DefaultInputTokens,
		OutputTokens: len(strings.Fields(reply)) + toolCallTokens*len(st.ToolCalls),
	}
}

var (
	chunks = fakecore.Chunks
	split  = fakecore.Split
)

// apiError is Anthropic's error object.
type apiError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

type errorBody struct {
	Type  string   `json:"type"` // "error"
	Error apiError `json:"error"`
}

// errorEnvelope is the {"type":"error","error":{...}} body; an empty typ or msg gets the
// default for status.
func errorEnvelope(typ, msg string, status int) *errorBody {
	if typ == "" {
		typ = ErrorType(status)
	}
	if msg == "" {
		msg = defaultMessage(typ, status)
	}
	return &errorBody{Type: "error", Error: apiError{Type: typ, Message: msg}}
}

// ErrorType is the error.type Anthropic uses for an HTTP status.
func ErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
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
	case 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

func defaultMessage(typ string, status int) string {
	switch typ {
	case "overloaded_error":
		return "Overloaded"
	case "api_error":
		return "Internal server error"
	case "rate_limit_error":
		return "Number of requests has exceeded your rate limit. Please try again later."
	case "not_found_error":
		return "Not found"
	case "request_too_large":
		return "Request exceeds the maximum allowed number of bytes."
	}
	if text := http.StatusText(status); text != "" {
		return "fakeanthropic: " + strings.ToLower(text)
	}
	return "fakeanthropic: " + typ
}

// sseEvent frames one event as Anthropic does: an event line, a data line, a blank line.
func sseEvent(name string, v any) []byte {
	b := marshal(v)
	out := make([]byte, 0, len(name)+len(b)+16)
	out = append(out, "event: "...)
	out = append(out, name...)
	out = append(out, "\ndata: "...)
	out = append(out, b...)
	return append(out, "\n\n"...)
}

// marshal encodes compactly like Anthropic: no HTML escaping, no trailing newline.
var marshal = fakecore.Marshal
