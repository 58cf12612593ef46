package anthropic

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

// benchStreamBody is an Anthropic stream of exactly events events, as the API sends them
// (named events, spaces after colons): message_start, a ping, one text block of
// events-6 deltas, message_delta and message_stop. It yields events-4 chunks: the role
// chunk, one per delta, and the finish chunk.
func benchStreamBody(events int) []byte {
	var b bytes.Buffer
	b.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5-20250929\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n")
	b.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	b.WriteString("event: ping\ndata: {\"type\": \"ping\"}\n\n")
	for i := 0; i < events-6; i++ {
		tok, _ := json.Marshal(fmt.Sprintf(" tok%d", i))
		fmt.Fprintf(&b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%s}}\n\n", tok)
	}
	b.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	b.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":195}}\n\n")
	b.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	return b.Bytes()
}

// BenchmarkStream200Events measures the per-event cost of reading and translating an
// Anthropic stream from memory: the part of a streamed request that runs once per token.
func BenchmarkStream200Events(b *testing.B) {
	const events = 200
	p := newTestProvider(b, "", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := streamOptions{model: "claude-sonnet-4-5", includeUsage: true, created: 1}
	// events-4 chunks (see benchStreamBody) and the usage chunk
	adaptertest.BenchStreamRecv(b, benchStreamBody(events), "event", events, events-4+1, func(r io.Reader) adapters.ChunkStream {
		return newStream(ctx, p.(*Provider), io.NopCloser(r), opts)
	})
}

// BenchmarkTranslateRequest measures translating a multi-turn tool conversation.
func BenchmarkTranslateRequest(b *testing.B) {
	req := readRequest(b, "requests/tool_round_trip.openai.json")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		out, err := translateRequest(req, DefaultMaxTokens, false)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChatStream is a 200-event streamed round trip over loopback HTTP.
func BenchmarkChatStream(b *testing.B) {
	adaptertest.BenchChatStream(b, newTestProvider, "sk-ant-bench", simpleRequest(), benchStreamBody(200))
}
