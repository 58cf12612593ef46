package responses

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
)

// FuzzRequest feeds arbitrary bodies to the request parser and the translation: a body
// either fails to decode, is refused with an *Error naming a parameter, or becomes a chat
// request that encodes; it never panics. A stored response built from it continues.
func FuzzRequest(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "request_*.json"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"model":"m","input":[{"type":"function_call","call_id":"c","name":"n"},{"type":"function_call_output","call_id":"c","output":[]}]}`))
	f.Add([]byte(`{"model":"m","input":[{"role":"user","content":null}],"tool_choice":{"type":"web_search"}}`))
	f.Add([]byte(`{"model":"m","input":"x","text":{"format":null},"reasoning":null,"tools":[null]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := &Request{}
		if json.Unmarshal(body, r) != nil {
			return
		}
		if e := Validate(r); e != nil {
			if e.Status != 400 || e.Code == "" || e.Message == "" {
				t.Fatalf("bad refusal %+v", e)
			}
			return
		}
		_ = Hosted(r)
		c, e := ToChat(r, nil)
		if e != nil {
			if e.Status != 400 || e.Param == "" {
				t.Fatalf("bad refusal %+v", e)
			}
			return
		}
		if _, err := json.Marshal(c); err != nil {
			t.Fatalf("chat request does not encode: %v", err)
		}
		res := NewResponse("resp_1", 1, r)
		stored, err := NewStored(res, nil, InputRaw(r))
		if err != nil {
			t.Fatalf("stored response does not encode: %v", err)
		}
		b, _ := json.Marshal(stored)
		var st Stored
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("stored response does not decode: %v", err)
		}
		history, e := Items(st.History())
		if e != nil {
			t.Fatalf("stored conversation does not decode: %v", e)
		}
		if _, e := ToChat(&Request{Model: "m", Input: Input{Text: "next"}}, history); e != nil {
			t.Fatalf("stored conversation does not continue: %v", e)
		}
	})
}

// FuzzAppendJSON holds the hand-written event encoders to json.Marshal's output.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{"", "plain", "quote \" back \\ slash", "<a>&b", "\n\r\t\b\f\x00\x1f", "\u2028\u2029", "\xff\xfe bad", "héllo 世界 🎉"} {
		f.Add(s, s+"x", 3)
	}
	f.Fuzz(func(t *testing.T, delta, id string, n int) {
		param := delta + id
		res := NewResponse(id, int64(n), &Request{Model: delta})
		res.Output = []OutputItem{{ID: id, Type: ItemMessage, Status: delta, Content: []OutputText{newOutputText(delta)}},
			{ID: id, Type: ItemFunctionCall, Status: StatusCompleted, CallID: delta, Name: id, Arguments: delta}}
		text := newOutputText(delta)
		text.Annotations = nil
		for _, v := range []interface{ AppendJSON([]byte) []byte }{
			&textDeltaEvent{Type: EventTextDelta, ItemID: id, OutputIndex: n, ContentIndex: n / 2, Delta: delta, Logprobs: noLogprobs, SequenceNumber: n * 3},
			&textDoneEvent{Type: EventTextDone, ItemID: id, OutputIndex: n, ContentIndex: -n, Text: delta, Logprobs: noLogprobs, SequenceNumber: n},
			&argsDeltaEvent{Type: EventArgsDelta, ItemID: id, OutputIndex: n, Delta: delta, SequenceNumber: -n},
			&argsDoneEvent{Type: EventArgsDone, ItemID: id, Name: delta, OutputIndex: n, Arguments: delta + id, SequenceNumber: n},
			&partEvent{Type: EventPartAdded, ItemID: id, OutputIndex: n, ContentIndex: 1, Part: newOutputText(delta), SequenceNumber: n},
			&partEvent{Type: EventPartDone, ItemID: id, Part: text},
			&itemEvent{Type: EventItemAdded, OutputIndex: n, Item: res.Output[0], SequenceNumber: n},
			&itemEvent{Type: EventItemDone, OutputIndex: n, Item: res.Output[1], SequenceNumber: n},
			&itemEvent{Type: EventItemDone, Item: OutputItem{ID: id}},
			&errorEvent{Type: EventError, Code: id, Message: delta, SequenceNumber: n},
			&errorEvent{Type: EventError, Code: id, Message: delta, Param: &param},
			&lifecycleEvent{Type: EventCompleted, Response: res, SequenceNumber: n},
			&lifecycleEvent{Type: EventFailed},
		} {
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.AppendJSON([]byte("prefix")); string(got) != "prefix"+string(want) {
				t.Fatalf("%T.AppendJSON\n got %s\nwant prefix%s", v, got, want)
			}
		}
	})
}

// FuzzResponseAppendJSON holds Response.AppendJSON to json.Marshal's output for the
// response of any request that decodes (its raw tools, tool_choice and text.format
// compacted and HTML-escaped as json.Marshal writes them, its floats, its metadata's
// key order), in every state a stream leaves it in.
func FuzzResponseAppendJSON(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "request_*.json"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b, "text", 0)
		}
	}
	f.Add([]byte(`{"model":"m<>","tools":[ {"type" : "function", "name":"a&b", "description":"x\u2028 y\u003c"} , null ],"tool_choice":{ "type":"function","name":"a" },`+
		`"text":{"format":{"type":"json_schema","schema":{"properties":{"a b":{"type":"string"}}}},"verbosity":"low"},"metadata":{"z":"1","a":"<2>","m":""},`+
		`"temperature":1e-7,"top_p":0.25,"instructions":"be\nbrief","previous_response_id":"resp_x","reasoning":{"effort":"high","summary":"auto"},"user":"u","max_output_tokens":64,"top_logprobs":2}`), "a\u2028b", 7)
	f.Add([]byte(`{"model":"m","temperature":2,"top_p":0,"metadata":{"k":"v"},"store":false,"parallel_tool_calls":false,"text":{"format":null},"tool_choice":null,"tools":[]}`), "", -1)
	f.Add([]byte(`{"model":"m","text":{"format":"\t{\"type\":\n\"text\"}"},"temperature":0.000001,"top_p":1e-9}`), "\xff", 3)
	f.Add([]byte("{\"model\":\"m\",\"tool_choice\":{\"type\":\"function\",\"name\":\"a\u2028b\u2029 <&>\\\"\\\\\"}}"), "\u2029", 1)
	f.Fuzz(func(t *testing.T, body []byte, text string, n int) {
		r := &Request{}
		if json.Unmarshal(body, r) != nil {
			return
		}
		res := NewResponse("resp_"+text, int64(n), r)
		check := func(state string) {
			want, err := json.Marshal(res)
			if err != nil {
				t.Fatalf("%s: json.Marshal: %v", state, err)
			}
			if got := res.AppendJSON(nil); string(got) != string(want) {
				t.Fatalf("%s: AppendJSON\n got %s\nwant %s", state, got, want)
			}
		}
		check("created")
		res.Output = append(res.Output, OutputItem{ID: "msg_1", Type: ItemMessage, Status: StatusCompleted, Content: []OutputText{newOutputText(text)}},
			OutputItem{ID: "fc_2", Type: ItemFunctionCall, Status: StatusCompleted, CallID: "call_" + text, Name: text, Arguments: text})
		res.Usage = &Usage{InputTokens: n, OutputTokens: n * 2, TotalTokens: n * 3, InputTokensDetails: InputTokensDetails{CachedTokens: n / 2},
			OutputTokensDetails: OutputTokensDetails{ReasoningTokens: -n}}
		switch {
		case n%3 == 0:
			finish(res, adapters.FinishStop)
		case n%3 == 1:
			finish(res, adapters.FinishLength)
		default:
			res.Status, res.Error = StatusFailed, &ResponseError{Code: "server_error", Message: text}
		}
		check("done")
		res.Output, res.Tools, res.Metadata = nil, nil, nil
		check("nil lists")
	})
}
