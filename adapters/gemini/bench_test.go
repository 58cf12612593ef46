package gemini

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/adaptertest"
)

// benchStreamBody is a completion of n events as Gemini streams it: every event repeats
// usageMetadata, modelVersion and responseId, and the last carries the finishReason.
func benchStreamBody(n int) []byte {
	var b bytes.Buffer
	const tail = `,"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 12,"totalTokenCount": 12,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 12}]},"modelVersion": "gemini-2.5-flash","responseId": "mN2gaLqWEoyJz7IPmf6QiAQ"}`
	for i := 0; i < n-1; i++ {
		tok, _ := json.Marshal(fmt.Sprintf(" token%d and a few more words", i))
		fmt.Fprintf(&b, "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": %s}]%s\r\n\r\n", tok, tail)
	}
	b.WriteString(`data: {"candidates": [{"content": {"parts": [{"text": ""}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 12,"candidatesTokenCount": 1400,"totalTokenCount": 1412},"modelVersion": "gemini-2.5-flash","responseId": "mN2gaLqWEoyJz7IPmf6QiAQ"}` + "\r\n\r\n")
	return b.Bytes()
}

// BenchmarkStream200Events measures the per-event cost of SSE parsing, event decoding
// and chunk building, without the network: the part of a streamed request that runs
// once per few tokens.
func BenchmarkStream200Events(b *testing.B) {
	const events = 200
	p := newTestProvider(b, "", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// role, 199 text chunks, finish, usage
	adaptertest.BenchStreamRecv(b, benchStreamBody(events), "event", events, events+2, func(r io.Reader) adapters.ChunkStream {
		return newStream(ctx, p.(*Provider), io.NopCloser(r), "gemini-2.5-flash", true)
	})
}

// BenchmarkChatStream is a 200-event streamed round trip over loopback HTTP.
func BenchmarkChatStream(b *testing.B) {
	adaptertest.BenchChatStream(b, newTestProvider, "bench-key", chatRequest(true), benchStreamBody(200))
}

// BenchmarkChat is a non-streamed round trip over loopback HTTP, translation included.
func BenchmarkChat(b *testing.B) {
	req := chatRequest(false)
	if err := json.Unmarshal(adaptertest.ReadTestdata(b, "requests/tools_roundtrip.openai.json"), req); err != nil {
		b.Fatal(err)
	}
	adaptertest.BenchChat(b, newTestProvider, "bench-key", req, adaptertest.ReadTestdata(b, "responses/function_call.gemini.json"))
}
