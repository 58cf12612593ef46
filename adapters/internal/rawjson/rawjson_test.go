package rawjson

import (
	"encoding/json"
	"testing"
)

func TestSetString(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"replaces and keeps every other byte", `{"model":"a", "x": {"model":"inner"},"cache_control" : {"type":"ephemeral"} }`,
			`{"model":"claude-x", "x": {"model":"inner"},"cache_control" : {"type":"ephemeral"} }`},
		{"keeps formatting around the value", "{\n  \"model\" :  \"a\"\n}", "{\n  \"model\" :  \"claude-x\"\n}"},
		{"every duplicate is replaced", `{"model":"a","model":"b"}`, `{"model":"claude-x","model":"claude-x"}`},
		{"escaped key is the same key", `{"mod\u0065l":"a"}`, `{"mod\u0065l":"claude-x"}`},
		{"absent key is added first", `{"messages":[]}`, `{"model":"claude-x","messages":[]}`},
		{"empty object", ` {} `, ` {"model":"claude-x"} `},
		{"non-string old value", `{"model":null,"a":[1,"}",{"b":"\""}]}`, `{"model":"claude-x","a":[1,"}",{"b":"\""}]}`},
		{"numbers and literals", `{"a":-1.5e3,"model":true,"b":false}`, `{"a":-1.5e3,"model":"claude-x","b":false}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SetString([]byte(tc.in), "model", "claude-x")
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Errorf("result is not valid JSON")
			}
		})
	}
}

func TestSetRefusesNonObjects(t *testing.T) {
	for _, in := range []string{``, `[]`, `"model"`, `{"model":}`, `{"a":1} {"b":2}`, `null`} {
		if _, err := SetString([]byte(in), "model", "x"); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestSetQuotesValues(t *testing.T) {
	got, err := SetString([]byte(`{}`), "model", "a\"b\\c\n")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]string
	if err := json.Unmarshal(got, &v); err != nil || v["model"] != "a\"b\\c\n" {
		t.Fatalf("%s: %v %q", got, err, v["model"])
	}
}

func TestGet(t *testing.T) {
	obj := []byte(`{"max_tokens": 100, "x":{"max_tokens":5}, "max_tokens":200}`)
	v, ok, err := Get(obj, "max_tokens")
	if err != nil || !ok || string(v) != "200" {
		t.Fatalf("Get = %q %v %v, want the last top-level value", v, ok, err)
	}
	if _, ok, _ := Get(obj, "model"); ok {
		t.Fatal("found an absent key")
	}
}

// FuzzSet checks that a rewrite of any valid object is valid JSON whose "model" decodes to
// the new value and whose other members decode as before.
func FuzzSet(f *testing.F) {
	for _, s := range []string{`{"model":"a","b":[1,2,{"c":"}"}]}`, `{}`, `{"a":"\\\"","model":1}`, `{"mod\u0065l":"x"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var before map[string]json.RawMessage
		if json.Unmarshal(in, &before) != nil || before == nil {
			if _, err := SetString(in, "model", "m"); err == nil && !json.Valid(in) {
				t.Fatalf("accepted invalid JSON %q", in)
			}
			return
		}
		out, err := SetString(in, "model", "m")
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		var after map[string]json.RawMessage
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("%q → %q: %v", in, out, err)
		}
		if string(after["model"]) != `"m"` {
			t.Fatalf("%q → %q: model %s", in, out, after["model"])
		}
		for k, v := range before {
			if k != "model" && string(after[k]) != string(v) {
				t.Fatalf("%q → %q: %s changed", in, out, k)
			}
		}
	})
}
