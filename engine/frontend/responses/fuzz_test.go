package responses

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
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

// FuzzAppendJSON holds the hand-written encoders to json.Marshal's output.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{"", "plain", "quote \" back \\ slash", "<a>&b", "\n\r\t\b\f\x00\x1f", "\u2028\u2029", "\xff\xfe bad", "héllo 世界 🎉"} {
		f.Add(s, s+"x", 3)
	}
	f.Fuzz(func(t *testing.T, delta, id string, n int) {
		for _, v := range []interface{ AppendJSON([]byte) []byte }{
			&textDeltaEvent{Type: EventTextDelta, ItemID: id, OutputIndex: n, ContentIndex: n / 2, Delta: delta, Logprobs: noLogprobs, SequenceNumber: n * 3},
			&argsDeltaEvent{Type: EventArgsDelta, ItemID: id, OutputIndex: n, Delta: delta, SequenceNumber: -n},
		} {
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.AppendJSON([]byte("prefix")); string(got) != "prefix"+string(want) {
				t.Fatalf("AppendJSON\n got %s\nwant prefix%s", got, want)
			}
		}
	})
}
