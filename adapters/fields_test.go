package adapters

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func decode(t *testing.T, body string) *ChatRequest {
	t.Helper()
	r := new(ChatRequest)
	if err := DecodeChatRequest([]byte(body), r); err != nil {
		t.Fatalf("DecodeChatRequest(%s): %v", body, err)
	}
	return r
}

// Every member a client sends survives decoding: typed ones in their fields, the rest in
// Extra at the level where it was sent.
func TestDecodeChatRequestKeepsUnknownMembers(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		extra      Fields
		msgExtra   Fields
		partExtra  Fields
		fields     []string
	}{
		{name: "none", body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5}`,
			fields: []string{"messages", "model", "temperature"}},
		{name: "top level", body: `{"top_k":40,"model":"m","messages":[{"role":"user","content":"hi"}],"chat_template_kwargs":{"enable_thinking":false}}`,
			extra:  Fields{{"top_k", json.RawMessage(`40`)}, {"chat_template_kwargs", json.RawMessage(`{"enable_thinking":false}`)}},
			fields: []string{"chat_template_kwargs", "messages", "model", "top_k"}},
		{name: "extra_body merged", body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"extra_body":{"top_k":5,"temperature":0.1}}`,
			extra:  Fields{{"top_k", json.RawMessage(`5`)}},
			fields: []string{"messages", "model", "temperature", "top_k"}},
		{name: "null extra_body", body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"extra_body":null}`,
			fields: []string{"messages", "model"}},
		{name: "case-insensitive typed member", body: `{"Model":"m","messages":[{"role":"user","content":"hi"}]}`,
			fields: []string{"messages", "model"}},
		{name: "escaped name", body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"top\u005fk":3}`,
			extra: Fields{{"top_k", json.RawMessage(`3`)}}, fields: []string{"messages", "model", "top_k"}},
		{name: "duplicate: last wins", body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"top_k":3,"top_k":4}`,
			extra: Fields{{"top_k", json.RawMessage(`4`)}}, fields: []string{"messages", "model", "top_k"}},
		{name: "nested", body: `{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","cache_control":{"type":"ephemeral"},"content":[{"type":"text","text":"a","cache_control":{"type":"ephemeral","ttl":"1h"}}]}]}`,
			msgExtra:  Fields{{"cache_control", json.RawMessage(`{"type":"ephemeral"}`)}},
			partExtra: Fields{{"cache_control", json.RawMessage(`{"type":"ephemeral","ttl":"1h"}`)}},
			fields:    []string{"messages", "messages[].cache_control", "messages[].content[].cache_control", "model"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := decode(t, tc.body)
			if !reflect.DeepEqual(r.Extra, tc.extra) {
				t.Errorf("Extra = %s, want %s", show(r.Extra), show(tc.extra))
			}
			last := r.Messages[len(r.Messages)-1]
			if !reflect.DeepEqual(last.Extra, tc.msgExtra) {
				t.Errorf("message Extra = %s, want %s", show(last.Extra), show(tc.msgExtra))
			}
			var pe Fields
			if last.Content.Parts != nil {
				pe = last.Content.Parts[0].Extra
			}
			if !reflect.DeepEqual(pe, tc.partExtra) {
				t.Errorf("part Extra = %s, want %s", show(pe), show(tc.partExtra))
			}
			if got := r.FieldNames(); !reflect.DeepEqual(got, tc.fields) {
				t.Errorf("FieldNames = %q, want %q", got, tc.fields)
			}
			if r.HasExtra() != (tc.extra != nil || tc.msgExtra != nil || tc.partExtra != nil) {
				t.Errorf("HasExtra = %v", r.HasExtra())
			}
		})
	}
}

func show(f Fields) string {
	var b strings.Builder
	for _, x := range f {
		b.WriteString(x.Name + "=" + string(x.Value) + " ")
	}
	return "[" + b.String() + "]"
}

func TestDecodeChatRequestRefusesANonObjectExtraBody(t *testing.T) {
	err := DecodeChatRequest([]byte(`{"model":"m","messages":[],"extra_body":[1]}`), new(ChatRequest))
	if err == nil || !strings.Contains(err.Error(), "extra_body must be an object") {
		t.Fatalf("err = %v", err)
	}
	err = DecodeChatRequest([]byte(`{"model":"m","messages":[],"extra_body":{"model":5}}`), new(ChatRequest))
	if err == nil {
		t.Fatal("a badly typed member of extra_body was accepted")
	}
}

// What an OpenAI-compatible upstream receives holds every member the client sent, each
// value byte for byte.
func TestMarshalWireRoundTrips(t *testing.T) {
	body := `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"}},{"type":"text","text":"b"}],"x_msg":[1,2]},{"role":"assistant","content":"ok"}],` +
		`"top_k":40,"prediction":{"type":"content","content":"x \"y\""},"modalities":["text"],"verbosity":"low","prompt_cache_key":"k",` +
		`"safety_identifier":"u1","web_search_options":{},"chat_template_kwargs":{"enable_thinking":false},"weird \u00e9":null}`
	r := decode(t, body)
	out, err := r.MarshalWire()
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("invalid JSON %s: %v", out, err)
	}
	json.Unmarshal([]byte(body), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MarshalWire =\n%s\nwant the members of\n%s", out, body)
	}

	plain := decode(t, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	a, _ := plain.MarshalWire()
	b, _ := json.Marshal(plain)
	if string(a) != string(b) {
		t.Errorf("without extra fields MarshalWire = %s, json.Marshal = %s", a, b)
	}
}

func TestWithoutFieldsDropsOnlyWhatIsNamed(t *testing.T) {
	r := decode(t, `{"model":"m","top_k":1,"verbosity":"low","messages":[{"role":"user","content":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"},"x":1}]}]}`)
	w := r.WithoutFields([]string{"verbosity", "messages[].content[].cache_control"})
	if got := w.ExtraNames(); !reflect.DeepEqual(got, []string{"messages[].content[].x", "top_k"}) {
		t.Errorf("after dropping: %q", got)
	}
	if got := r.ExtraNames(); len(got) != 4 {
		t.Errorf("the original changed: %q", got)
	}
}

// The second pass over a body with no unknown member allocates nothing.
func TestCollectAllocatesNothingWithoutExtraFields(t *testing.T) {
	body := []byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},{"role":"assistant","content":"b"}],"temperature":0.2,"stream":true,"stream_options":{"include_usage":true},"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}`)
	r := new(ChatRequest)
	if err := json.Unmarshal(body, r); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := r.collect(body, true); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("collect allocated %v times", n)
	}
	if r.HasExtra() {
		t.Error("HasExtra on a request without extra fields")
	}
}

func FuzzDecodeChatRequest(f *testing.F) {
	f.Add(`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","cache_control":{}}],"q":1}],"top_k":1,"extra_body":{"a":[1,{"b":"]}"}]}}`)
	f.Add(`{"messages":[{"content":[{}]},{"content":"x"},3]}`)
	f.Fuzz(func(t *testing.T, body string) {
		r := new(ChatRequest)
		if DecodeChatRequest([]byte(body), r) != nil {
			return
		}
		out, err := r.MarshalWire()
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("MarshalWire of %s is not JSON: %s", body, out)
		}
	})
}

// The shared field lists are safe to build and read from many requests at once.
func TestFieldNamesConcurrently(t *testing.T) {
	bodies := []string{`{"model":"m","messages":[],"seed":1}`, `{"model":"m","messages":[],"n":1,"top_p":1}`, `{"model":"m","messages":[],"top_k":1}`}
	done := make(chan bool)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 200; i++ {
				r := new(ChatRequest)
				if DecodeChatRequest([]byte(bodies[i%len(bodies)]), r) != nil || len(r.FieldNames()) < 3 {
					done <- false
					return
				}
			}
			done <- true
		}()
	}
	for g := 0; g < 8; g++ {
		if !<-done {
			t.Fatal("FieldNames failed")
		}
	}
}

func TestMemberNames(t *testing.T) {
	for body, want := range map[string][]string{
		`{"model":"m","input":"hi","store":false,"model":"n","x\u0079":{"a":[1,"}"]}}`: {"input", "model", "store", "xy"},
		`{}`:    nil,
		`[1,2]`: nil,
		`null`:  nil,
	} {
		if got := MemberNames([]byte(body)); !reflect.DeepEqual(got, want) {
			t.Errorf("MemberNames(%s) = %q, want %q", body, got, want)
		}
	}
	r := &ChatRequest{}
	r.SetFieldNames([]string{"input", "model"})
	if got := r.FieldNames(); !reflect.DeepEqual(got, []string{"input", "model"}) {
		t.Errorf("FieldNames after SetFieldNames = %q", got)
	}
}
