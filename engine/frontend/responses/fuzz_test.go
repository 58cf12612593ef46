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
