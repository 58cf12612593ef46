package fakeupstream

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/test/internal/fakecore"
)

// Every response id is written as idPrefix followed by idDigits zeros; each request then
// overwrites the digits with its own sequence number. That lets a rendered response be
// cached and replayed byte for byte while ids stay unique.
const (
	idPrefix = "chatcmpl-fake"
	idDigits = 16
)

var (
	idPlaceholder = []byte(idPrefix + strings.Repeat("0", idDigits))
	jsonNull      = json.RawMessage("null")
	doneEvent     = []byte("data: [DONE]\n\n")
)

// rendered is a response ready to be written: status, headers and body bytes, with the
// offsets where the per-request id goes. It is immutable once built, so the default
// behaviour's rendering is cached and shared by concurrent requests.
type rendered struct {
	step   Step
	status int
	header http.Header // extra headers, nil when none
	stream bool        // body is a sequence of SSE events
	body   []byte      // the JSON body, or all SSE events back to back
	ends   []int       // stream only: end offset in body of each event
	idAt   []int       // offsets in body of the id digits to patch per request
}

// render builds the response a step gives to a request for model.
func render(model string, st Step, stream, includeUsage bool, created int64) *rendered {
	r := &rendered{step: st, status: http.StatusOK, header: extraHeaders(st)}
	switch {
	case st.isError():
		r.status = st.Status
		r.body = marshal(errorEnvelope(st, st.Status))
	case stream:
		r.stream = true
		r.body, r.ends = streamEvents(model, st, includeUsage, created)
	default:
		r.body = marshal(completion(model, st, created))
	}
	for off := 0; ; {
		i := bytes.Index(r.body[off:], idPlaceholder)
		if i < 0 {
			break
		}
		r.idAt = append(r.idAt, off+i+len(idPrefix))
		off += i + len(idPlaceholder)
	}
	return r
}

// extraHeaders collects the step's Retry-After, retry-after-ms and custom headers.
func extraHeaders(st Step) http.Header {
	return fakecore.ExtraHeaders(st.Header, "Retry-After", st.RetryAfter, "retry-after-ms", st.RetryAfterMs)
}

// completion is the non-streamed chat.completion for a step.
func completion(model string, st Step, created int64) *adapters.ChatResponse {
	reply := replyText(model, st)
	msg := adapters.Message{Role: "assistant"}
	if reply != "" {
		msg.Content = adapters.TextContent(reply)
	}
	for i, tc := range st.ToolCalls {
		msg.ToolCalls = append(msg.ToolCalls, adapters.ToolCall{
			ID:       toolCallID(tc, i),
			Type:     "function",
			Function: adapters.FunctionCall{Name: tc.Name, Arguments: tc.Arguments},
		})
	}
	return &adapters.ChatResponse{
		ID:      string(idPlaceholder),
		Object:  adapters.ObjectChatCompletion,
		Created: created,
		Model:   model,
		Choices: []adapters.Choice{{
			Index:        0,
			Message:      msg,
			FinishReason: finishReason(st),
			Logprobs:     jsonNull,
		}},
		Usage:             usage(st, reply),
		SystemFingerprint: SystemFingerprint,
		ServiceTier:       "default",
	}
}

// streamEvents renders the SSE events of a streamed completion (see Step for the sequence)
// and returns them back to back with the end offset of each.
func streamEvents(model string, st Step, includeUsage bool, created int64) ([]byte, []int) {
	chunk := func(delta adapters.Delta, finish *string) []byte {
		return sseEvent(&adapters.ChatChunk{
			ID:                string(idPlaceholder),
			Object:            adapters.ObjectChatCompletionChunk,
			Created:           created,
			Model:             model,
			SystemFingerprint: SystemFingerprint,
			ServiceTier:       "default",
			Choices: []adapters.ChunkChoice{{
				Index: 0, Delta: delta, FinishReason: finish, Logprobs: jsonNull,
			}},
		})
	}

	reply := replyText(model, st)
	calls := st.ToolCalls
	role := adapters.Delta{Role: "assistant"}
	if reply != "" || len(calls) == 0 {
		role.Content = new(string)
	} else {
		// Without text, OpenAI's first delta carries the role and the first call's header.
		role.ToolCalls = []adapters.ToolCall{toolCallHeader(calls[0], 0)}
	}
	var events [][]byte
	events = append(events, chunk(role, nil))
	for _, piece := range split(reply, chunks(st.Chunks, DefaultChunks)) {
		events = append(events, chunk(adapters.Delta{Content: &piece}, nil))
	}
	for i, tc := range calls {
		if i > 0 || reply != "" {
			events = append(events, chunk(adapters.Delta{ToolCalls: []adapters.ToolCall{toolCallHeader(tc, i)}}, nil))
		}
		for _, piece := range split(tc.Arguments, chunks(tc.Pieces, DefaultArgPieces)) {
			idx := i
			events = append(events, chunk(adapters.Delta{ToolCalls: []adapters.ToolCall{{
				Index: &idx, Function: adapters.FunctionCall{Arguments: piece},
			}}}, nil))
		}
	}
	finish := finishReason(st)
	events = append(events, chunk(adapters.Delta{}, &finish))
	if includeUsage {
		events = append(events, sseEvent(&adapters.ChatChunk{
			ID:                string(idPlaceholder),
			Object:            adapters.ObjectChatCompletionChunk,
			Created:           created,
			Model:             model,
			SystemFingerprint: SystemFingerprint,
			ServiceTier:       "default",
			Choices:           []adapters.ChunkChoice{},
			Usage:             usage(st, reply),
		}))
	}
	events = append(events, doneEvent)

	if st.Fault == MidStreamError { // never after [DONE]
		typ := st.Type
		if typ == "" {
			typ = defaultMidStreamType
		}
		e := errorEnvelope(Step{Code: st.Code, Type: typ, Message: st.Message, Param: st.Param}, http.StatusInternalServerError)
		events = fakecore.FailAt(events, st.FaultAfter, sseEvent(e))
	}
	return fakecore.Join(events)
}

// continued is st for a request that asks to continue an answer (Step.Continue): the
// reply without the assistant text the request ends with, after Repeat bytes of it.
func continued(model string, st Step, msgs []adapters.Message) Step {
	n := len(msgs)
	var prefix string
	switch {
	case n >= 1 && msgs[n-1].Role == "assistant":
		prefix = msgs[n-1].Content.String()
	case n >= 2 && msgs[n-2].Role == "assistant" && msgs[n-1].Role == "user":
		prefix = msgs[n-2].Content.String()
	default:
		return st
	}
	reply := replyText(model, st)
	if !strings.HasPrefix(reply, prefix) {
		return st
	}
	r := min(st.Repeat, len(prefix))
	for r < len(prefix) && r > 0 && !utf8.RuneStart(prefix[len(prefix)-r]) {
		r++
	}
	st.Reply = prefix[len(prefix)-r:] + reply[len(prefix):]
	st.empty = st.Reply == ""
	return st
}

// toolCallHeader is a call's first delta: index, id, type, name and empty arguments.
func toolCallHeader(tc ToolCall, i int) adapters.ToolCall {
	return adapters.ToolCall{
		Index:    &i,
		ID:       toolCallID(tc, i),
		Type:     "function",
		Function: adapters.FunctionCall{Name: tc.Name, Arguments: ""},
	}
}

func toolCallID(tc ToolCall, i int) string {
	if tc.ID != "" {
		return tc.ID
	}
	return "call_fake" + strconv.Itoa(i)
}

func replyText(model string, st Step) string {
	if st.Reply == "" && len(st.ToolCalls) == 0 && !st.empty {
		return "Hello from " + model
	}
	return st.Reply
}

func finishReason(st Step) string {
	switch {
	case st.FinishReason != "":
		return st.FinishReason
	case len(st.ToolCalls) > 0:
		return adapters.FinishToolCalls
	}
	return adapters.FinishStop
}

func usage(st Step, reply string) *adapters.Usage {
	if st.Usage != nil {
		u := *st.Usage
		return &u
	}
	completion := len(strings.Fields(reply)) + toolCallTokens*len(st.ToolCalls)
	return &adapters.Usage{
		PromptTokens:            DefaultPromptTokens,
		CompletionTokens:        completion,
		TotalTokens:             DefaultPromptTokens + completion,
		PromptTokensDetails:     &adapters.PromptTokensDetails{},
		CompletionTokensDetails: &adapters.CompletionTokensDetails{},
	}
}

var (
	chunks = fakecore.Chunks
	split  = fakecore.Split
)

// apiError is OpenAI's error object; param and code are null when unset.
type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

type errorBody struct {
	Error apiError `json:"error"`
}

// errorEnvelope is the {"error":{...}} body for a step, with defaults derived from status.
func errorEnvelope(st Step, status int) *errorBody {
	e := apiError{Message: st.Message, Type: st.Type}
	if e.Message == "" {
		e.Message = "fake upstream: " + strings.ToLower(http.StatusText(status))
	}
	if e.Type == "" {
		e.Type = errorType(status)
	}
	if st.Param != "" {
		e.Param = &st.Param
	}
	if st.Code != "" {
		e.Code = &st.Code
	}
	return &errorBody{Error: e}
}

// errorType is the error.type OpenAI uses for a status.
func errorType(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "requests"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

func sseEvent(v any) []byte {
	b := marshal(v)
	out := make([]byte, 0, len(b)+8)
	out = append(out, "data: "...)
	out = append(out, b...)
	return append(out, "\n\n"...)
}

// marshal encodes like OpenAI: no HTML escaping, no trailing newline.
var marshal = fakecore.Marshal
