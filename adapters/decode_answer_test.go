package adapters

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// answerSeeds are the answers and chunks of this package's wire seeds and of the OpenAI
// adapter's golden streams.
func answerSeeds(tb testing.TB) [][]byte {
	var out [][]byte
	files, _ := filepath.Glob("testdata/wire/*.json")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzDecodeAnswer holds the fast answer and chunk decoders to encoding/json: whatever
// they accept, json.Unmarshal accepts too and decodes to the same value; a chunk decoder
// reusing the strings of the chunk before gives the same chunk as a fresh one.
func FuzzDecodeAnswer(f *testing.F) {
	for _, b := range answerSeeds(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"id":"a","choices":[{"index":1,"delta":{"content":null,"refusal":"no","tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{\"a\":"}}]},"finish_reason":"stop","logprobs":null},{"delta":{"content":"b"}}],"usage":null,"x":{"y":[1,2]}}`))
	f.Add([]byte(`{"id":"a","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"hi","annotations":[],"audio":null},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens_details":{"accepted_prediction_tokens":0,"reasoning_tokens":2}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast ChatResponse
		ok := fast.UnmarshalFast(body)
		var slow ChatResponse
		err := json.Unmarshal(body, &slow)
		if ok {
			if err != nil {
				t.Fatalf("UnmarshalFast accepted %s, encoding/json says %v", body, err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("decoding %s:\nfast %+v\nslow %+v", body, fast, slow)
			}
		}
		var cd ChunkDecoder
		for i := 0; i < 2; i++ { // the second time with the strings of the first
			c := cd.Decode(body)
			if c == nil {
				return
			}
			var want ChatChunk
			if err := json.Unmarshal(body, &want); err != nil {
				t.Fatalf("ChunkDecoder accepted %s, encoding/json says %v", body, err)
			}
			if !reflect.DeepEqual(withoutLayout(*c), want) {
				t.Fatalf("decoding chunk %s:\nfast %+v\nslow %+v", body, *c, want)
			}
		}
	})
}

// The seeds take the fast path (or the fuzz test would compare nothing), and a chunk of
// text costs two allocations once the stream's strings are known.
func TestChunkDecoderAllocations(t *testing.T) {
	var res ChatResponse
	seed, err := os.ReadFile("testdata/wire/response_tool_call.json")
	if err != nil {
		t.Fatal(err)
	}
	if !res.UnmarshalFast(seed) {
		t.Error("response_tool_call.json left the fast path")
	}
	chunk, err := os.ReadFile("testdata/wire/chunk_text.json")
	if err != nil {
		t.Fatal(err)
	}
	var cd ChunkDecoder
	if cd.Decode(chunk) == nil {
		t.Fatal("chunk_text.json left the fast path")
	}
	plain := []byte(`{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":" world"},"logprobs":null,"finish_reason":null}]}`)
	n := testing.AllocsPerRun(100, func() {
		if cd.Decode(plain) == nil {
			t.Fatal("left the fast path")
		}
	})
	// the chunk with its choice, the text, and logprobs' raw "null" (encoding/json
	// keeps it too)
	if n > 3 {
		t.Errorf("a text chunk cost %v allocations", n)
	}
}
