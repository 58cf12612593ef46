package adapters_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// TestChunkLayoutOverFakeUpstreamStreams reads the fake upstream's streams (what the load
// benchmark and the end-to-end tests stream through gavel) chunk by chunk with one
// stream's decoder, as the OpenAI adapter does, and holds every chunk's AppendJSON to
// json.Marshal of what encoding/json decodes from the same data: the bytes a client gets
// are the full encoder's, whether a chunk went through the stream's layout or not.
func TestChunkLayoutOverFakeUpstreamStreams(t *testing.T) {
	up := fakeupstream.New()
	defer up.Close()
	words := strings.Repeat("Distributed systems are best learned by building one small service, ", 8)
	steps := []fakeupstream.Step{
		{Reply: words, Chunks: 64},
		{Reply: "line one\nline \"two\"\t<b>&</b> café 日本 😀 \u2028 end", Chunks: 12},
		{Reply: "a b", Chunks: 2, ToolCalls: []fakeupstream.ToolCall{{Name: "f", Arguments: `{"q":"x"}`}}},
		{ToolCalls: []fakeupstream.ToolCall{{Name: "f", Arguments: `{"q":"x","n":1}`, Pieces: 5}, {Name: "g", Arguments: `{}`}}},
		{Reply: strings.Repeat("error ", 10), Chunks: 10},
	}
	for i, st := range steps {
		for _, usage := range []bool{true, false} {
			up.Script("m", st)
			body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
			if usage {
				body = strings.Replace(body, `"stream":true`, `"stream":true,"stream_options":{"include_usage":true}`, 1)
			}
			resp, err := http.Post(up.URL()+"/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			var cd adapters.ChunkDecoder
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(nil, 1<<20)
			n := 0
			for sc.Scan() {
				data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
				if !ok || string(data) == "[DONE]" {
					continue
				}
				n++
				got := cd.Decode(data)
				if got == nil {
					t.Fatalf("step %d: left the fast path: %s", i, data)
				}
				var want adapters.ChatChunk
				if err := json.Unmarshal(data, &want); err != nil {
					t.Fatal(err)
				}
				enc, err := got.AppendJSON(nil)
				if err != nil {
					t.Fatal(err)
				}
				ref, _ := json.Marshal(&want)
				if !bytes.Equal(enc, ref) {
					t.Errorf("step %d: %s\nwrites %s\nwant   %s", i, data, enc, ref)
				}
			}
			resp.Body.Close()
			if n < 3 {
				t.Fatalf("step %d: %d chunks", i, n)
			}
		}
	}
}
