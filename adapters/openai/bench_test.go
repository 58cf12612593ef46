package openai

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

// benchStreamBody is a 200-chunk completion as OpenAI sends it, usage chunk included.
func benchStreamBody(chunks int) []byte {
	var b bytes.Buffer
	const head = `{"id":"chatcmpl-AyPNinnUqUDYo9SAdA52NobMflmj2","object":"chat.completion.chunk","created":1739000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_72ed7ab54c","choices":[`
	fmt.Fprintf(&b, "data: %s{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n", head)
	for i := 1; i < chunks-2; i++ {
		tok, _ := json.Marshal(fmt.Sprintf(" tok%d", i))
		fmt.Fprintf(&b, "data: %s{\"index\":0,\"delta\":{\"content\":%s},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n", head, tok)
	}
	fmt.Fprintf(&b, "data: %s{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n", head)
	fmt.Fprintf(&b, "data: %s],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":197,\"total_tokens\":209,\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}\n\n", head)
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// BenchmarkStreamRecv measures the per-chunk cost of the SSE reader and chunk decoding,
// without the network: the part of a streamed request that runs once per token.
func BenchmarkStreamRecv(b *testing.B) {
	const chunks = 200
	p := newTestProvider(b, "", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	adaptertest.BenchStreamRecv(b, benchStreamBody(chunks), "chunk", chunks, chunks, func(r io.Reader) adapters.ChunkStream {
		return newStream(ctx, p.(*Provider), io.NopCloser(r))
	})
}

// BenchmarkChat is a non-streamed round trip over loopback HTTP.
func BenchmarkChat(b *testing.B) {
	adaptertest.BenchChat(b, newTestProvider, "sk-bench", canonicalRequest(), adaptertest.ReadTestdata(b, "chat_response.json"))
}

// BenchmarkChatStream is a 200-chunk streamed round trip over loopback HTTP.
func BenchmarkChatStream(b *testing.B) {
	adaptertest.BenchChatStream(b, newTestProvider, "", canonicalRequest(), benchStreamBody(200))
}
