package adapters

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// layoutTexts are chunk texts that stress the string's encoding: escapes the encoder
// writes as the upstream did and ones it writes its own way (HTML characters, U+2028,
// \/, \u escapes of plain letters), multi-byte text, the empty string, quotes.
var layoutTexts = []string{
	`Hello`, ` world`, ``, `a\"b`, `line\nbreak`, `tab\tand\\slash`, `<b>&amp;</b>`, `\u003cscript\u003e`,
	`caf\u00e9`, `café`, `日本語`, `emoji 😀`, `\u2028`, "\u2028", `\/path`, `\u0041`, `"`, `\ud83d\ude00`,
	`}],"usage":null}`, `\"}],\"x\":1`, ` `, `null`,
}

// layoutStreams are the chunk data of streams in gavel's own order (as the fake upstream
// writes them) and in OpenAI's, each text of layoutTexts a chunk, with the role,
// finish and usage chunks around them.
func layoutStreams() map[string][][]byte {
	head := `"id":"chatcmpl-1","object":"chat.completion.chunk","created":1733580000,"model":"gpt-4o-mini"`
	gavel := func(choices, usage string) []byte {
		if usage != "" {
			usage = `,"usage":` + usage
		}
		return []byte(`{` + head + `,"choices":` + choices + usage + `,"system_fingerprint":"fp_1","service_tier":"default"}`)
	}
	pads := []string{"x", "", "Zq3", `a\"b`, "0123456789abcdef", `\u00e9`, "é"}
	n := 0
	pad := func() string { // OpenAI's padding: random, of varying length
		n++
		return pads[n%len(pads)]
	}
	openai := func(choices, usage string) []byte {
		if usage == "" {
			usage = "null"
		}
		return []byte(`{` + head + `,"service_tier":"default","system_fingerprint":"fp_1","choices":` + choices + `,"usage":` + usage + `,"obfuscation":"` + pad() + `"}`)
	}
	padFirst := func(choices, usage string) []byte { // a dropped string before the text
		return []byte(`{"x_pad":"` + pad() + `",` + head + `,"choices":` + choices + `}`)
	}
	spaced := func(choices, usage string) []byte { // with spaces after separators
		b := gavel(choices, usage)
		return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte(`":`), []byte(`": `)), []byte(`,"`), []byte(`, "`))
	}
	out := map[string][][]byte{}
	for name, enc := range map[string]func(string, string) []byte{"gavel": gavel, "openai": openai, "spaced": spaced, "pad first": padFirst} {
		var s [][]byte
		s = append(s, enc(`[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"logprobs":null}]`, ""))
		for _, t := range layoutTexts {
			s = append(s, enc(`[{"index":0,"delta":{"content":"`+t+`"},"finish_reason":null,"logprobs":null}]`, ""))
		}
		s = append(s, enc(`[{"index":0,"delta":{"content":"x"},"finish_reason":null}]`, "")) // logprobs gone
		s = append(s, enc(`[{"index":1,"delta":{"content":"x"},"finish_reason":null,"logprobs":null}]`, ""))
		s = append(s, enc(`[{"index":0,"delta":{"content":"x"},"finish_reason":"stop","logprobs":null}]`, ""))
		s = append(s, enc(`[{"index":0,"delta":{"content":"x","refusal":null},"finish_reason":null,"logprobs":null}]`, ""))
		s = append(s, bytes.Replace(enc(`[{"index":0,"delta":{"content":"x"},"finish_reason":null,"logprobs":null}]`, ""), []byte("fp_1"), []byte("fp_2"), 1))
		s = append(s, bytes.Replace(enc(`[{"index":0,"delta":{"content":"x"},"finish_reason":null,"logprobs":null}]`, ""), []byte("chatcmpl-1"), []byte("chatcmpl-2"), 1))
		for _, t := range layoutTexts[:3] {
			s = append(s, enc(`[{"index":0,"delta":{"content":"`+t+`"},"finish_reason":null,"logprobs":null}]`, ""))
		}
		s = append(s, enc(`[]`, `{"prompt_tokens":3,"completion_tokens":20,"total_tokens":23}`))
		out[name] = s
	}
	return out
}

// sseData is the data of each event of an SSE transcript.
func sseData(t *testing.T, name string) [][]byte {
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, ev := range strings.Split(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n\n") {
		for _, line := range strings.Split(ev, "\n") {
			if d, ok := strings.CutPrefix(line, "data:"); ok && strings.TrimSpace(d) != "[DONE]" {
				out = append(out, []byte(strings.TrimSpace(d)))
			}
		}
	}
	return out
}

// TestChunkLayoutIsTheFullEncoding holds what a stream's decoder gives the client through
// its layouts to what the full decoder and encoder give, byte for byte, over the golden
// OpenAI-compatible transcripts and over streams whose texts stress the string's
// encoding: each chunk decodes to what encoding/json decodes (a chunk decoder on its own,
// without the chunks before), and AppendJSON writes what json.Marshal writes.
func TestChunkLayoutIsTheFullEncoding(t *testing.T) {
	streams := layoutStreams()
	files, _ := filepath.Glob("openai/testdata/stream_*.sse")
	more, _ := filepath.Glob("../engine/frontend/responses/testdata/chat_*.sse")
	for _, f := range append(files, more...) {
		streams[f] = sseData(t, f)
	}
	if len(streams) < 6 {
		t.Fatalf("%d streams", len(streams))
	}
	for name, events := range streams {
		var cd ChunkDecoder
		hits := 0
		for i, data := range events {
			if bytes.Contains(data, []byte(`"error"`)) {
				continue // the adapter's error event, not a chunk
			}
			var before int
			if cd.layout != nil {
				before = cd.layout.hits
			}
			got := cd.Decode(data)
			if cd.layout != nil && cd.layout.hits > before {
				hits++
			}
			var want ChatChunk
			err := json.Unmarshal(data, &want)
			if got == nil {
				if err == nil && !strings.Contains(name, "openai/testdata") && bytes.Contains(data, []byte(`"delta":{"content"`)) && !bytes.Contains(data, []byte(`\ud83d`)) {
					t.Errorf("%s #%d: left the fast path: %s", name, i, data)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s #%d: decoded what encoding/json refuses (%v): %s", name, i, err, data)
			}
			if g := withoutLayout(*got); !reflect.DeepEqual(g, want) {
				t.Errorf("%s #%d: %s\ndecoded %+v\nwant    %+v", name, i, data, g, want)
			}
			enc, err := got.AppendJSON(nil)
			if err != nil {
				t.Fatal(err)
			}
			ref, _ := json.Marshal(&want)
			if !bytes.Equal(enc, ref) {
				t.Errorf("%s #%d: %s\nwrites %s\nwant   %s", name, i, data, enc, ref)
			}
		}
		if !strings.Contains(name, "testdata/") && hits < len(layoutTexts)/2 {
			t.Errorf("%s: %d chunks decoded through a layout", name, hits)
		}
		if strings.HasSuffix(name, "stream_text.sse") && hits == 0 {
			t.Errorf("%s: no chunk decoded through a layout", name)
		}
	}
}

func withoutLayout(c ChatChunk) ChatChunk {
	c.layout = nil
	return c
}

// TestChunkLayoutSeesEveryField changes each field of a chunk decoded through a layout in
// turn (by reflection, so that a field added to the chunk types later is changed too) and
// holds AppendJSON to the full encoding: a chunk that no longer fits its layout, such as
// the pipeline's copy without usage or a continuation's renamed chunk, is encoded in full.
func TestChunkLayoutSeesEveryField(t *testing.T) {
	var cd ChunkDecoder
	ev := layoutStreams()["gavel"]
	cd.Decode(ev[1])
	c := cd.Decode(ev[2])
	if c == nil || c.layout == nil || c.layout.hits == 0 {
		t.Fatal("the second chunk of text was not decoded through the layout")
	}
	changed := 0
	var walk func(path string, v reflect.Value, reset func())
	walk = func(path string, v reflect.Value, reset func()) {
		for i := 0; i < v.NumField(); i++ {
			f, fv := v.Type().Field(i), v.Field(i)
			if !f.IsExported() {
				continue
			}
			p := path + "." + f.Name
			switch {
			case f.Type == reflect.TypeOf(Delta{}):
				walk(p, fv, reset)
				continue
			case f.Type == reflect.TypeOf([]ChunkChoice{}):
				choices := fv.Interface().([]ChunkChoice)
				fv.Set(reflect.ValueOf(append(append([]ChunkChoice(nil), choices...), choices[0])))
				checkFull(t, p+" (a second choice)", c)
				reset()
				walk(p+"[0]", v.Field(i).Index(0), reset)
				continue
			}
			if p == ".Choices[0].Delta.Content" {
				s := "another text"
				fv.Set(reflect.ValueOf(&s))
				if enc, _ := c.AppendJSON(nil); !bytes.Contains(enc, []byte(`"another text"`)) {
					t.Errorf("the text is not the chunk's: %s", enc)
				}
				reset()
				fv.Set(reflect.Zero(f.Type))
			} else {
				fv.Set(otherValue(t, p, f.Type, fv))
			}
			checkFull(t, p, c)
			changed++
			reset()
		}
	}
	orig := *c
	choice := c.Choices[0]
	backing := []ChunkChoice{choice} // where the walk changes the choice's fields
	reset := func() {
		*c = orig
		backing[0] = choice
		c.Choices = backing
	}
	reset()
	walk("", reflect.ValueOf(c).Elem(), reset)
	if changed < 14 {
		t.Errorf("changed %d fields", changed)
	}
}

// checkFull holds c's AppendJSON to its full encoding.
func checkFull(t *testing.T, what string, c *ChatChunk) {
	t.Helper()
	got, err1 := c.AppendJSON(nil)
	want, err2 := c.appendJSON(nil, nil)
	if (err1 != nil) != (err2 != nil) || !bytes.Equal(got, want) {
		t.Errorf("%s changed: AppendJSON wrote %s, the full encoding is %s", what, got, want)
	}
}

// otherValue is a value of type ty other than cur.
func otherValue(t *testing.T, path string, ty reflect.Type, cur reflect.Value) reflect.Value {
	switch ty {
	case reflect.TypeOf(json.RawMessage(nil)):
		return reflect.ValueOf(json.RawMessage(`{"content":[]}`))
	case reflect.TypeOf([]ToolCall(nil)):
		return reflect.ValueOf([]ToolCall{{ID: "call_1", Type: "function", Function: FunctionCall{Name: "f", Arguments: "{}"}}})
	}
	switch ty.Kind() {
	case reflect.String:
		return reflect.ValueOf(cur.String() + "x").Convert(ty)
	case reflect.Int, reflect.Int64:
		return reflect.ValueOf(cur.Int() + 1).Convert(ty)
	case reflect.Pointer:
		if !cur.IsNil() {
			return reflect.Zero(ty)
		}
		v := reflect.New(ty.Elem())
		if ty.Elem().Kind() == reflect.String {
			v.Elem().SetString("p")
		}
		return v
	}
	t.Fatalf("%s: no other value for %v", path, ty)
	return reflect.Value{}
}

// FuzzChunkLayout puts the fuzzer's bytes between the quotes of a chunk's text and of
// a string the decoder drops (OpenAI's padding, after the text or before it), after a
// chunk that gave the decoder its layout, and holds the chunk decoded and written through
// it to encoding/json's.
func FuzzChunkLayout(f *testing.F) {
	for i, s := range layoutTexts {
		f.Add(s, layoutTexts[(i+3)%len(layoutTexts)])
	}
	head := `"id":"chatcmpl-1","object":"chat.completion.chunk","created":1733580000,"model":"gpt-4o-mini"`
	choices := func(text string) string {
		return `"choices":[{"index":0,"delta":{"content":"` + text + `"},"finish_reason":null,"logprobs":null}]`
	}
	chunks := map[string]func(text, pad string) []byte{
		"gavel": func(text, _ string) []byte {
			return []byte(`{` + head + `,` + choices(text) + `,"system_fingerprint":"fp_1","service_tier":"default"}`)
		},
		"openai": func(text, pad string) []byte {
			return []byte(`{` + head + `,"service_tier":"default",` + choices(text) + `,"usage":null,"obfuscation":"` + pad + `"}`)
		},
		"pad first": func(text, pad string) []byte {
			return []byte(`{"x_pad":"` + pad + `",` + head + `,` + choices(text) + `}`)
		},
	}
	f.Fuzz(func(t *testing.T, text, pad string) {
		for name, chunk := range chunks {
			var cd ChunkDecoder
			if c := cd.Decode(chunk("Hello", "Zq3")); c == nil || cd.layout == nil {
				t.Fatalf("%s: no layout learned", name)
			}
			data := chunk(text, pad)
			got := cd.Decode(data)
			var want ChatChunk
			err := json.Unmarshal(data, &want)
			if got == nil {
				continue
			}
			if err != nil {
				t.Fatalf("%s: decoded what encoding/json refuses (%v): %s", name, err, data)
			}
			if g := withoutLayout(*got); !reflect.DeepEqual(g, want) {
				t.Fatalf("%s: %s\ndecoded %+v\nwant    %+v", name, data, g, want)
			}
			enc, _ := got.AppendJSON(nil)
			ref, _ := json.Marshal(&want)
			if !bytes.Equal(enc, ref) {
				t.Fatalf("%s: %s\nwrites %s\nwant   %s", name, data, enc, ref)
			}
		}
	})
}

// A stream whose chunks differ in more than their text stops learning layouts.
func TestChunkLayoutGivesUp(t *testing.T) {
	var cd ChunkDecoder
	for i := range 20 {
		data := fmt.Appendf(nil, `{"id":"c","object":"chat.completion.chunk","created":%d,"model":"m","choices":[{"index":0,"delta":{"content":"w"},"finish_reason":null}]}`, i)
		if cd.Decode(data) == nil {
			t.Fatal("left the fast path")
		}
	}
	if cd.stale != maxStaleLayouts {
		t.Errorf("stale %d", cd.stale)
	}
}
