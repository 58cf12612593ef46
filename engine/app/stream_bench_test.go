package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/adapters/registry"
	"github.com/gavel-gw/gavel/engine/config"
)

// streamBenchChunks is how many chunks of text BenchmarkStreamHTTPUpstream's answers
// have: one word each, as an upstream streams one token per chunk.
const streamBenchChunks = 200

// streamUpstreamBody is a streamed answer of chunks words, usage last. canonical
// writes every chunk as gavel writes chunks to its clients (encoding/json's order of
// adapters.ChatChunk, the fake upstream's streams); otherwise as OpenAI writes them
// (service_tier before system_fingerprint before choices, "usage":null in every chunk, and
// a random "obfuscation" padding last).
func streamUpstreamBody(canonical bool, chunks int) []byte {
	var b bytes.Buffer
	pads := 0
	chunk := func(delta, finish, usage string) {
		choices := `[{"index":0,"delta":` + delta + `,"finish_reason":` + finish + `,"logprobs":null}]`
		if usage != "" {
			choices = `[]`
		}
		if canonical {
			u := ""
			if usage != "" {
				u = `,"usage":` + usage
			}
			fmt.Fprintf(&b, `data: {"id":"chatcmpl-bench0123456789","object":"chat.completion.chunk","created":1733580000,"model":"gpt-4o-mini","choices":%s%s,"system_fingerprint":"fp_bench","service_tier":"default"}`+"\n\n", choices, u)
			return
		}
		if usage == "" {
			usage = "null"
		}
		pads++ // OpenAI's padding (stream_options.include_obfuscation, on by default): random, of varying length
		fmt.Fprintf(&b, `data: {"id":"chatcmpl-bench0123456789","object":"chat.completion.chunk","created":1733580000,"model":"gpt-4o-mini","service_tier":"default","system_fingerprint":"fp_bench","choices":%s,"usage":%s,"obfuscation":"%s"}`+"\n\n",
			choices, usage, "Zq3xK9pL2mN8vB4c"[:pads%11])
	}
	words := strings.Fields("Distributed systems are best learned by building one small service, breaking it on purpose, and reading the logs until the failure makes sense to you.")
	chunk(`{"role":"assistant","content":""}`, "null", "")
	for i := range chunks {
		w := words[i%len(words)]
		if i > 0 {
			w = " " + w
		}
		q, _ := json.Marshal(w)
		chunk(`{"content":`+string(q)+`}`, "null", "")
	}
	chunk(`{}`, `"stop"`, "")
	chunk("", "null", fmt.Sprintf(`{"prompt_tokens":42,"completion_tokens":%d,"total_tokens":%d}`, chunks, chunks+42))
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// BenchmarkStreamHTTPUpstream is a streamed chat completion (stream_options.include_usage)
// through the whole gateway to an OpenAI-compatible upstream on loopback HTTP that
// answers streamBenchChunks chunks of text in one write: what a chunk costs gavel from
// the upstream's body to the client's, without the network's pacing. canonical is an
// upstream whose chunks are written as gavel writes them (the fake upstream); openai one
// that writes them as OpenAI does; short is canonical with 4 chunks, the request's own
// cost and the stream's fixed one.
func BenchmarkStreamHTTPUpstream(b *testing.B) {
	for _, v := range []struct {
		name      string
		canonical bool
		chunks    int
	}{{"canonical", true, streamBenchChunks}, {"openai", false, streamBenchChunks}, {"short", true, 4}} {
		b.Run(v.name, func(b *testing.B) {
			stream := streamUpstreamBody(v.canonical, v.chunks)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "text/event-stream")
				w.Write(stream)
			}))
			defer srv.Close()
			cfg := benchConfig()
			cfg.Providers = []config.Provider{{Spec: registry.Spec{Name: "openai", Type: "openai", BaseURL: srv.URL + "/v1", APIKey: "sk-bench"}}}
			body := strings.Replace(benchBody, `{"model":"fast",`, `{"model":"openai/gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},`, 1)
			benchHandler(b, cfg, body, nil)
		})
	}
}
