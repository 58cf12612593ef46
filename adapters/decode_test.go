package adapters

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// requestSeeds are the request bodies of the repo's tests: the clients' bodies the
// server's tests use, and this package's wire seeds.
func requestSeeds(tb testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for _, pattern := range []string{"../engine/internal/reqtest/testdata/requests/*.json", "testdata/wire/request_*.json"} {
		files, _ := filepath.Glob(pattern)
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				tb.Fatal(err)
			}
			out[filepath.Base(name)] = b
		}
	}
	if len(out) == 0 {
		tb.Fatal("no request seeds")
	}
	return out
}

// FuzzDecodeFast holds the one-pass decoder to the reflective one: whatever body it
// accepts, encoding/json and the second pass accept too and give the same request, field
// for field (unexported ones included); a body it gives up on is the reflective path's.
func FuzzDecodeFast(f *testing.F) {
	for _, b := range requestSeeds(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"a\u00e9\n\"\\\/","x":[1,{"y":null}]}],"stop":"s","tools":[],"metadata":{"a":"b","a":"c"}}`))
	f.Add([]byte(`{"Model":"m"}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":null,"tool_calls":[{"index":0,"function":{"arguments":"{}","Name":"x"}}]}],"stream_options":{"include_usage":false,"other":1}}`))
	f.Add([]byte(` {"messages":[{"content":[{"type":"text","text":"t","cache_control":{"type":"ephemeral"}},{"type":"image_url","image_url":{"url":"u","x":1}}]}],"temperature":-0,"top_p":1e-7,"seed":-9223372036854775808,"n":1.0} `))
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := decodeFast(body)
		var slow ChatRequest
		err := decodeReflect(body, &slow)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("the fast decoder accepted %s, encoding/json says %v", body, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("decoding %s:\nfast %+v\nslow %+v", body, fast, slow)
		}
	})
}

// The fast path is the one the bodies clients send take (or FuzzDecodeFast would compare
// nothing); the bodies it hands on are those meant to fail and the forms it leaves to
// encoding/json.
func TestDecodeFastTakesClientBodies(t *testing.T) {
	slowOnes := map[string]bool{
		"bad_extra_body_not_object.json": true, // extra_body
		"bad_wrong_types.json":           true, // a type error
		"extra_fields.json":              true, // extra_body
	}
	for name, body := range requestSeeds(t) {
		_, ok := decodeFast(body)
		if ok == slowOnes[name] {
			t.Errorf("%s: fast path taken = %v", name, ok)
		}
		var r ChatRequest
		if err := DecodeChatRequest(body, &r); err != nil && !strings.HasPrefix(name, "bad_") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A typical body decodes in a handful of allocations: the messages, their contents, the
// strings that are not shared role names.
func TestDecodeFastAllocations(t *testing.T) {
	body := []byte(`{"model":"fast","messages":[{"role":"system","content":"You are brief."},{"role":"user","content":"Summarise policy-as-code."}],"temperature":0.2,"max_tokens":128}`)
	n := testing.AllocsPerRun(200, func() {
		var r ChatRequest
		if err := DecodeChatRequest(body, &r); err != nil {
			t.Fatal(err)
		}
	})
	// the request, its messages, their contents, the model and two texts, temperature
	// and max_tokens; the reflective path took 20.
	if n > 8 {
		t.Errorf("DecodeChatRequest allocated %v times", n)
	}
}

// Every byte value at every position around the decoder's word-at-a-time string scan, in a
// member name and in a content string: the fast decoder gives what encoding/json gives, or
// leaves the body to it.
func TestDecodeFastEveryByteEveryPosition(t *testing.T) {
	fastOnes := 0
	for c := 0; c < 256; c++ {
		for n := 1; n <= 20; n++ {
			for at := 0; at < n; at++ {
				s := []byte(strings.Repeat("a", n))
				s[at] = byte(c)
				for _, body := range [][]byte{
					[]byte(`{"model":"m","messages":[{"role":"user","content":"` + string(s) + `"}]}`),
					[]byte(`{"model":"m","messages":[{"role":"user","content":"x","` + string(s) + `":1}]}`),
				} {
					fast, ok := decodeFast(body)
					var slow ChatRequest
					err := decodeReflect(body, &slow)
					if !ok {
						continue
					}
					fastOnes++
					if err != nil {
						t.Fatalf("the fast decoder accepted %q, encoding/json says %v", body, err)
					}
					if !reflect.DeepEqual(fast, slow) {
						t.Fatalf("decoding %q:\nfast %+v\nslow %+v", body, fast, slow)
					}
				}
			}
		}
	}
	if fastOnes < 90*210*2 { // the printable ASCII bytes, in both places
		t.Errorf("the fast path took %d of the bodies, want most of them", fastOnes)
	}
}
