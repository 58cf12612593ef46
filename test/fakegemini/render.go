package fakegemini

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strings"

	"github.com/gavel-gw/gavel/test/internal/fakecore"
)

// rendered is a response ready to be written: status, headers and body bytes.
type rendered struct {
	step   Step
	status int
	header http.Header // extra headers, nil when none
	stream bool        // body is a sequence of events
	body   []byte      // the JSON body, or all events back to back
	ends   []int       // stream only: end offset in body of each event
	tail   []byte      // stream only: bytes after the last event (the "]" of a JSON array)
}

// response is a GenerateContentResponse.
type response struct {
	Candidates     []candidate     `json:"candidates,omitempty"`
	PromptFeedback *promptFeedback `json:"promptFeedback,omitempty"`
	UsageMetadata  *UsageMetadata  `json:"usageMetadata,omitempty"`
	ModelVersion   string          `json:"modelVersion"`
	ResponseID     string          `json:"responseId"`
}

type candidate struct {
	Content      *content `json:"content,omitempty"`
	FinishReason string   `json:"finishReason,omitempty"`
	Index        int      `json:"index"`
}

type content struct {
	Parts []part `json:"parts"`
	Role  string `json:"role"`
}

type part struct {
	Text             *string       `json:"text,omitempty"`
	FunctionCall     *functionCall `json:"functionCall,omitempty"`
	ThoughtSignature string        `json:"thoughtSignature,omitempty"`
}

type functionCall struct {
	ID   string          `json:"id,omitempty"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args"`
}

type promptFeedback struct {
	BlockReason string `json:"blockReason"`
}

// streamFormat is how streamGenerateContent frames its responses.
type streamFormat int

const (
	formatNone  streamFormat = iota // generateContent: one JSON object
	formatSSE                       // alt=sse: data: {...} events
	formatArray                     // no alt=sse: a JSON array streamed element by element
)

// render builds the response a step gives to a generate request for model; id is the
// responseId and term ends each SSE event.
func render(model string, st Step, format streamFormat, id, term string) *rendered {
	r := &rendered{step: st, status: http.StatusOK, header: extraHeaders(st)}
	if st.isError() {
		r.status = st.Status
		r.body = marshalIndent(errorEnvelope(st, st.Status))
		return r
	}
	events := responses(model, st, id)
	if format == formatNone {
		r.body = marshalIndent(merge(events))
		return r
	}
	r.stream = true
	var encoded [][]byte
	for _, e := range events {
		encoded = append(encoded, encodeEvent(e, format, term))
	}
	if st.Fault == MidStreamError { // never after the final event
		name := st.StatusName
		if name == "" {
			name = "UNAVAILABLE"
		}
		code := statusCode(name)
		e := errorEnvelope(Step{StatusName: name, Message: st.Message, Details: []map[string]any{}}, code)
		encoded = fakecore.FailAt(encoded, st.FaultAfter, encodeEvent(e, format, term))
	}
	for i, e := range encoded {
		if format == formatArray {
			if i == 0 {
				r.body = append(r.body, '[')
			} else {
				r.body = append(r.body, ",\r\n"...)
			}
		}
		r.body = append(r.body, e...)
		r.ends = append(r.ends, len(r.body))
	}
	if format == formatArray {
		r.tail = []byte("]")
	}
	return r
}

func encodeEvent(v any, format streamFormat, term string) []byte {
	if format == formatArray {
		return marshalIndent(v)
	}
	b := marshal(v)
	out := make([]byte, 0, len(b)+6+len(term))
	out = append(out, "data: "...)
	out = append(out, b...)
	return append(out, term...)
}

// extraHeaders collects the step's Retry-After and custom headers.
func extraHeaders(st Step) http.Header {
	return fakecore.ExtraHeaders(st.Header, "Retry-After", st.RetryAfter)
}

// responses is the sequence of partial responses of a streamed answer (see Step); a
// non-streamed answer merges them into one.
func responses(model string, st Step, id string) []*response {
	u := usage(model, st)
	if st.Blocked {
		reason := st.BlockReason
		if reason == "" {
			reason = BlockSafety
		}
		bu := UsageMetadata{PromptTokenCount: u.PromptTokenCount, TotalTokenCount: u.PromptTokenCount}
		if st.Usage != nil {
			bu = *st.Usage
		}
		return []*response{{PromptFeedback: &promptFeedback{BlockReason: reason}, UsageMetadata: &bu, ModelVersion: model, ResponseID: id}}
	}

	var out []*response
	var sofar strings.Builder // the text streamed so far
	calls := 0                // function calls streamed so far
	add := func(parts []part) {
		r := &response{
			Candidates:   []candidate{{Content: &content{Parts: parts, Role: "model"}, Index: 0}},
			ModelVersion: model, ResponseID: id,
		}
		if st.UsageEveryEvent {
			emitted := len(strings.Fields(sofar.String())) + toolCallTokens*calls
			r.UsageMetadata = &UsageMetadata{
				PromptTokenCount:     u.PromptTokenCount,
				CandidatesTokenCount: emitted,
				TotalTokenCount:      u.PromptTokenCount + emitted,
			}
		}
		out = append(out, r)
	}
	for _, piece := range split(replyText(model, st), chunks(st.Chunks, DefaultChunks)) {
		sofar.WriteString(piece)
		add([]part{{Text: &piece}})
	}
	if len(st.ToolCalls) > 0 {
		var parts []part
		for _, tc := range st.ToolCalls {
			parts = append(parts, part{
				FunctionCall:     &functionCall{ID: tc.ID, Name: tc.Name, Args: args(tc)},
				ThoughtSignature: tc.ThoughtSignature,
			})
		}
		calls = len(st.ToolCalls)
		add(parts)
	}
	if len(out) == 0 { // no content at all: a bare candidate with its finish reason
		out = append(out, &response{Candidates: []candidate{{Index: 0}}, ModelVersion: model, ResponseID: id})
	}
	last := out[len(out)-1]
	last.Candidates[0].FinishReason = finishReason(st)
	last.UsageMetadata = &u
	return out
}

// merge folds streamed partial responses into the one generateContent answers with.
func merge(events []*response) *response {
	last := events[len(events)-1]
	if last.PromptFeedback != nil {
		return last
	}
	c := last.Candidates[0]
	var parts []part
	var text strings.Builder
	hasText := false
	for _, e := range events {
		if e.Candidates[0].Content == nil {
			continue
		}
		for _, p := range e.Candidates[0].Content.Parts {
			if p.Text != nil {
				text.WriteString(*p.Text)
				hasText = true
			} else {
				parts = append(parts, p)
			}
		}
	}
	if hasText {
		s := text.String()
		parts = append([]part{{Text: &s}}, parts...)
	}
	if parts != nil {
		c.Content = &content{Parts: parts, Role: "model"}
	}
	return &response{Candidates: []candidate{c}, UsageMetadata: last.UsageMetadata, ModelVersion: last.ModelVersion, ResponseID: last.ResponseID}
}

// args is the call's args object, compacted.
func args(tc ToolCall) json.RawMessage { return fakecore.CompactObject(tc.Arguments) }

func replyText(model string, st Step) string {
	if st.Reply != "" || len(st.ToolCalls) > 0 {
		return st.Reply
	}
	switch st.FinishReason {
	case "", FinishStop, FinishMaxTokens:
		return "Hello from " + model
	}
	return ""
}

func finishReason(st Step) string {
	if st.FinishReason != "" {
		return st.FinishReason
	}
	return FinishStop
}

func usage(model string, st Step) UsageMetadata {
	if st.Usage != nil {
		return *st.Usage
	}
	out := len(strings.Fields(replyText(model, st))) + toolCallTokens*len(st.ToolCalls)
	return UsageMetadata{
		PromptTokenCount:     DefaultPromptTokens,
		CandidatesTokenCount: out,
		TotalTokenCount:      DefaultPromptTokens + out,
	}
}

var (
	chunks = fakecore.Chunks
	split  = fakecore.Split
)

// Embedding returns the values the fake answers for text at dims dimensions: a unit vector
// derived from the SHA-256 of the text, so equal texts get equal embeddings and different
// texts (almost surely) different ones. A request content's text is its parts' texts
// concatenated.
func Embedding(text string, dims int) []float32 {
	seed := sha256.Sum256([]byte(text))
	state := binary.LittleEndian.Uint64(seed[:8]) ^ binary.LittleEndian.Uint64(seed[8:16])
	values := make([]float32, dims)
	var norm float64
	for i := range values {
		// splitmix64
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		v := float64(z>>11)/float64(1<<53)*2 - 1 // uniform in [-1, 1)
		values[i] = float32(v)
		norm += v * v
	}
	if norm = math.Sqrt(norm); norm > 0 {
		for i := range values {
			values[i] = float32(float64(values[i]) / norm)
		}
	}
	return values
}

// googleError is the google.rpc.Status body of every failure.
type googleError struct {
	Code    int              `json:"code"`
	Message string           `json:"message"`
	Status  string           `json:"status"`
	Details []map[string]any `json:"details,omitempty"`
}

type errorBody struct {
	Error googleError `json:"error"`
}

// errorEnvelope is the {"error":{...}} body for a step, with defaults derived from status.
func errorEnvelope(st Step, status int) *errorBody {
	e := googleError{Code: status, Message: st.Message, Status: st.StatusName, Details: st.Details}
	if e.Status == "" {
		e.Status = StatusName(status)
	}
	if e.Message == "" {
		e.Message = defaultMessage(status)
	}
	if e.Details == nil && status == http.StatusTooManyRequests {
		delay := st.RetryDelay
		if delay == "" {
			delay = "2s"
		}
		e.Details = []map[string]any{
			{
				"@type": "type.googleapis.com/google.rpc.QuotaFailure",
				"violations": []map[string]any{{
					"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
					"quotaId":     "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
					"quotaValue":  "10",
				}},
			},
			{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
		}
	}
	return &errorBody{Error: e}
}

// statuses pairs HTTP statuses with the google.rpc.Code names Google APIs report for them.
var statuses = []struct {
	code int
	name string
}{
	{400, "INVALID_ARGUMENT"},
	{400, "FAILED_PRECONDITION"},
	{400, "OUT_OF_RANGE"},
	{401, "UNAUTHENTICATED"},
	{403, "PERMISSION_DENIED"},
	{404, "NOT_FOUND"},
	{409, "ABORTED"},
	{409, "ALREADY_EXISTS"},
	{429, "RESOURCE_EXHAUSTED"},
	{499, "CANCELLED"},
	{500, "INTERNAL"},
	{500, "UNKNOWN"},
	{500, "DATA_LOSS"},
	{501, "UNIMPLEMENTED"},
	{503, "UNAVAILABLE"},
	{504, "DEADLINE_EXCEEDED"},
}

// StatusName is the error status string Google uses for an HTTP status
// (429 → "RESOURCE_EXHAUSTED"); unlisted 4xx are "INVALID_ARGUMENT", unlisted 5xx
// "INTERNAL".
func StatusName(code int) string {
	for _, s := range statuses {
		if s.code == code {
			return s.name
		}
	}
	if code >= 500 {
		return "INTERNAL"
	}
	return "INVALID_ARGUMENT"
}

// statusCode is the HTTP status of a google.rpc.Code name; 500 for unknown names.
func statusCode(name string) int {
	for _, s := range statuses {
		if s.name == name {
			return s.code
		}
	}
	return http.StatusInternalServerError
}

func defaultMessage(status int) string {
	switch status {
	case 400:
		return "Request contains an invalid argument."
	case 401:
		return "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."
	case 403:
		return "The caller does not have permission"
	case 404:
		return "Requested entity was not found."
	case 429:
		return "Resource has been exhausted (e.g. check quota)."
	case 500:
		return "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
	case 503:
		return "The model is overloaded. Please try again later."
	case 504:
		return "Deadline expired before operation could complete."
	}
	if text := http.StatusText(status); text != "" {
		return "fakegemini: " + strings.ToLower(text)
	}
	return "fakegemini: error"
}

// marshal encodes compactly on one line, as an SSE data field needs: no HTML escaping, no
// trailing newline.
var marshal = fakecore.Marshal

// marshalIndent encodes like Google's JSON responses: indented by two spaces, with a
// trailing newline.
func marshalIndent(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		panic("fakegemini: encoding response: " + err.Error())
	}
	return buf.Bytes()
}
