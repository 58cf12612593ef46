package responses

import (
	"strconv"

	"github.com/gavel-gw/gavel/internal/jsonenc"
)

// Every event a stream sends, and the response object the lifecycle events carry,
// encode themselves without reflection: AppendJSON writes what json.Marshal would, byte
// for byte (FuzzAppendJSON and FuzzResponseAppendJSON hold them to it), into the
// caller's buffer. A stream writes the response object three times and an added and a
// done event per item and content part; through encoding/json those cost a Responses
// stream a fifth more CPU than a chat stream of the same answer.
//
// The json.RawMessage fields (tools, tool_choice, text.format) hold JSON that was
// decoded from the client's request, so it is valid; they are written compacted and
// HTML-escaped, as json.Marshal writes a RawMessage. A nil or empty RawMessage is
// written as null (json.Marshal writes null for nil and fails on empty).

// AppendJSON appends the event's JSON to b.
func (e *textDeltaEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = jsonenc.String(b, e.Type)
	b = append(b, `,"item_id":`...)
	b = jsonenc.String(b, e.ItemID)
	b = append(b, `,"output_index":`...)
	b = strconv.AppendInt(b, int64(e.OutputIndex), 10)
	b = append(b, `,"content_index":`...)
	b = strconv.AppendInt(b, int64(e.ContentIndex), 10)
	b = append(b, `,"delta":`...)
	b = jsonenc.String(b, e.Delta)
	b = append(b, `,"logprobs":`...)
	b = jsonenc.RawList(b, e.Logprobs)
	b = append(b, `,"sequence_number":`...)
	b = strconv.AppendInt(b, int64(e.SequenceNumber), 10)
	return append(b, '}')
}

// AppendJSON appends the event's JSON to b.
func (e *textDoneEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = jsonenc.String(b, e.Type)
	b = append(b, `,"item_id":`...)
	b = jsonenc.String(b, e.ItemID)
	b = append(b, `,"output_index":`...)
	b = strconv.AppendInt(b, int64(e.OutputIndex), 10)
	b = append(b, `,"content_index":`...)
	b = strconv.AppendInt(b, int64(e.ContentIndex), 10)
	b = append(b, `,"text":`...)
	b = jsonenc.String(b, e.Text)
	b = append(b, `,"logprobs":`...)
	b = jsonenc.RawList(b, e.Logprobs)
	b = append(b, `,"sequence_number":`...)
	b = strconv.AppendInt(b, int64(e.SequenceNumber), 10)
	return append(b, '}')
}

// AppendJSON appends the event's JSON to b.
func (e *argsDeltaEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = jsonenc.String(b, e.Type)
	b = append(b, `,"item_id":`...)
	b = jsonenc.String(b, e.ItemID)
	b = append(b, `,"output_index":`...)
	b = strconv.AppendInt(b, int64(e.OutputIndex), 10)
	b = append(b, `,"delta":`...)
	b = jsonenc.String(b, e.Delta)
	b = append(b, `,"sequence_number":`...)
	b = strconv.AppendInt(b, int64(e.SequenceNumber), 10)
	return append(b, '}')
}

// AppendJSON appends the event's JSON to b.
func (e *argsDoneEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = jsonenc.String(b, e.Type)
	b = append(b, `,"item_id":`...)
	b = jsonenc.String(b, e.ItemID)
	b = append(b, `,"name":`...)
	b = jsonenc.String(b, e.Name)
	b = append(b, `,"output_index":`...)
	b = strconv.AppendInt(b, int64(e.OutputIndex), 10)
	b = append(b, `,"arguments":`...)
	b = jsonenc.String(b, e.Arguments)
	b = append(b, `,"sequence_number":`...)
	b = strconv.AppendInt(b, int64(e.SequenceNumber), 10)
	return append(b, '}')
}

// AppendJSON appends the event's JSON to b.
func (e *lifecycleEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = jsonenc.String(b, e.Type)
	b = append(b, `,"response":`...)
	if e.Response == nil {
		b = append(b, "null"...)
	} else {
		b = e.Response.AppendJSON(b)
	}
	b = append(b, `,"sequence_number":`...)
	b = strconv.AppendInt(b, int64(e.SequenceNumber), 10)
	return append(b, '}')
}

// AppendJSON appends the event's JSON to b.
func (e *itemEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = jsonenc.String(b, e.Type)
	b = append(b, `,"output_index":`...)
	b = strconv.AppendInt(b, int64(e.OutputIndex), 10)
	b = append(b, `,"item":`...)
	b = e.Item.AppendJSON(b)
	b = append(b, `,"sequence_number":`...)
	b = strconv.AppendInt(b, int64(e.SequenceNumber), 10)
	return append(b, '}')
}

// AppendJSON appends the event's JSON to b.
func (e *partEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = jsonenc.String(b, e.Type)
	b = append(b, `,"item_id":`...)
	b = jsonenc.String(b, e.ItemID)
	b = append(b, `,"output_index":`...)
	b = strconv.AppendInt(b, int64(e.OutputIndex), 10)
	b = append(b, `,"content_index":`...)
	b = strconv.AppendInt(b, int64(e.ContentIndex), 10)
	b = append(b, `,"part":`...)
	b = e.Part.AppendJSON(b)
	b = append(b, `,"sequence_number":`...)
	b = strconv.AppendInt(b, int64(e.SequenceNumber), 10)
	return append(b, '}')
}

// AppendJSON appends the event's JSON to b.
func (e *errorEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = jsonenc.String(b, e.Type)
	b = append(b, `,"code":`...)
	b = jsonenc.String(b, e.Code)
	b = append(b, `,"message":`...)
	b = jsonenc.String(b, e.Message)
	b = append(b, `,"param":`...)
	b = jsonenc.OptString(b, e.Param)
	b = append(b, `,"sequence_number":`...)
	b = strconv.AppendInt(b, int64(e.SequenceNumber), 10)
	return append(b, '}')
}

// AppendJSON appends the response object's JSON to b, as json.Marshal writes it.
func (r *Response) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = jsonenc.String(b, r.ID)
	b = append(b, `,"object":`...)
	b = jsonenc.String(b, r.Object)
	b = append(b, `,"created_at":`...)
	b = strconv.AppendInt(b, r.CreatedAt, 10)
	b = append(b, `,"status":`...)
	b = jsonenc.String(b, r.Status)
	b = append(b, `,"background":`...)
	b = strconv.AppendBool(b, r.Background)
	b = append(b, `,"error":`...)
	if r.Error == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"code":`...)
		b = jsonenc.String(b, r.Error.Code)
		b = append(b, `,"message":`...)
		b = jsonenc.String(b, r.Error.Message)
		b = append(b, '}')
	}
	b = append(b, `,"incomplete_details":`...)
	if r.IncompleteDetails == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"reason":`...)
		b = jsonenc.String(b, r.IncompleteDetails.Reason)
		b = append(b, '}')
	}
	b = append(b, `,"instructions":`...)
	b = jsonenc.OptString(b, r.Instructions)
	b = append(b, `,"max_output_tokens":`...)
	if r.MaxOutputTokens == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(*r.MaxOutputTokens), 10)
	}
	b = append(b, `,"model":`...)
	b = jsonenc.String(b, r.Model)
	b = append(b, `,"output":`...)
	if r.Output == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.Output {
			if i > 0 {
				b = append(b, ',')
			}
			b = r.Output[i].AppendJSON(b)
		}
		b = append(b, ']')
	}
	b = append(b, `,"parallel_tool_calls":`...)
	b = strconv.AppendBool(b, r.ParallelToolCalls)
	b = append(b, `,"previous_response_id":`...)
	b = jsonenc.OptString(b, r.PreviousResponseID)
	b = append(b, `,"reasoning":{"effort":`...)
	b = jsonenc.OptString(b, r.Reasoning.Effort)
	b = append(b, `,"summary":`...)
	b = jsonenc.OptString(b, r.Reasoning.Summary)
	b = append(b, `},"service_tier":`...)
	b = jsonenc.String(b, r.ServiceTier)
	b = append(b, `,"store":`...)
	b = strconv.AppendBool(b, r.Store)
	b = append(b, `,"temperature":`...)
	b = jsonenc.Float(b, r.Temperature)
	b = append(b, `,"text":{"format":`...)
	b = jsonenc.Raw(b, r.Text.Format)
	b = append(b, `,"verbosity":`...)
	b = jsonenc.String(b, r.Text.Verbosity)
	b = append(b, `},"tool_choice":`...)
	b = jsonenc.Raw(b, r.ToolChoice)
	b = append(b, `,"tools":`...)
	b = jsonenc.RawList(b, r.Tools)
	b = append(b, `,"top_logprobs":`...)
	b = strconv.AppendInt(b, int64(r.TopLogprobs), 10)
	b = append(b, `,"top_p":`...)
	b = jsonenc.Float(b, r.TopP)
	b = append(b, `,"truncation":`...)
	b = jsonenc.String(b, r.Truncation)
	b = append(b, `,"usage":`...)
	if r.Usage == nil {
		b = append(b, "null"...)
	} else {
		u := r.Usage
		b = append(b, `{"input_tokens":`...)
		b = strconv.AppendInt(b, int64(u.InputTokens), 10)
		b = append(b, `,"input_tokens_details":{"cached_tokens":`...)
		b = strconv.AppendInt(b, int64(u.InputTokensDetails.CachedTokens), 10)
		b = append(b, `},"output_tokens":`...)
		b = strconv.AppendInt(b, int64(u.OutputTokens), 10)
		b = append(b, `,"output_tokens_details":{"reasoning_tokens":`...)
		b = strconv.AppendInt(b, int64(u.OutputTokensDetails.ReasoningTokens), 10)
		b = append(b, `},"total_tokens":`...)
		b = strconv.AppendInt(b, int64(u.TotalTokens), 10)
		b = append(b, '}')
	}
	b = append(b, `,"user":`...)
	b = jsonenc.OptString(b, r.User)
	b = append(b, `,"metadata":`...)
	b = jsonenc.StringMap(b, r.Metadata)
	return append(b, '}')
}

// AppendJSON appends the item's JSON to b, as its MarshalJSON writes it.
func (o *OutputItem) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = jsonenc.String(b, o.ID)
	if o.Type == ItemFunctionCall {
		b = append(b, `,"type":"function_call","status":`...)
		b = jsonenc.String(b, o.Status)
		b = append(b, `,"arguments":`...)
		b = jsonenc.String(b, o.Arguments)
		b = append(b, `,"call_id":`...)
		b = jsonenc.String(b, o.CallID)
		b = append(b, `,"name":`...)
		b = jsonenc.String(b, o.Name)
		return append(b, '}')
	}
	b = append(b, `,"type":"message","status":`...)
	b = jsonenc.String(b, o.Status)
	b = append(b, `,"content":[`...)
	for i := range o.Content {
		if i > 0 {
			b = append(b, ',')
		}
		b = o.Content[i].AppendJSON(b)
	}
	return append(b, `],"role":"assistant"}`...)
}

// AppendJSON appends the part's JSON to b.
func (p *OutputText) AppendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = jsonenc.String(b, p.Type)
	b = append(b, `,"annotations":`...)
	b = jsonenc.RawList(b, p.Annotations)
	b = append(b, `,"logprobs":`...)
	b = jsonenc.RawList(b, p.Logprobs)
	b = append(b, `,"text":`...)
	b = jsonenc.String(b, p.Text)
	return append(b, '}')
}
