package mock

import (
	"context"
	"io"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
)

func BenchmarkChat(b *testing.B) {
	p := mustNew(b, Config{})
	req := request("gpt-bench", "how fast is the mock?")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Chat(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChatStream(b *testing.B) {
	p := mustNew(b, Config{})
	req := request("gpt-bench", "how fast is the mock?")
	req.StreamOptions = &adapters.StreamOptions{IncludeUsage: true}
	b.ReportAllocs()
	for b.Loop() {
		s, err := p.ChatStream(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := s.Recv(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
		s.Close()
	}
}
