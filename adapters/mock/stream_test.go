package mock

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

func TestStreamShape(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		usage  *adapters.StreamOptions
		chunks int
	}{
		{name: "default chunks without usage", cfg: Config{}, chunks: 8},
		{name: "usage requested", cfg: Config{Chunks: 3}, usage: &adapters.StreamOptions{IncludeUsage: true}, chunks: 3},
		{name: "options without usage", cfg: Config{Chunks: 3}, usage: &adapters.StreamOptions{}, chunks: 3},
		{name: "more chunks than bytes", cfg: Config{Reply: "hi", Chunks: 5}, chunks: 5},
		{name: "multibyte reply", cfg: Config{Reply: "héllo wörld ☃", Chunks: 4}, chunks: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustNew(t, tt.cfg)
			req := request("gpt-s", "tell me")
			req.StreamOptions = tt.usage
			want, err := p.Chat(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			s, err := p.ChatStream(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got := collect(t, s)
			wantUsage := tt.usage != nil && tt.usage.IncludeUsage
			n := 1 + tt.chunks + 1
			if wantUsage {
				n++
			}
			if len(got) != n {
				t.Fatalf("%d chunks, want %d", len(got), n)
			}
			first := got[0].Choices[0].Delta
			if first.Role != "assistant" || first.Content == nil || *first.Content != "" {
				t.Errorf("first delta = %+v", first)
			}
			var text strings.Builder
			for i, c := range got {
				if c.ID != got[0].ID || c.Object != adapters.ObjectChatCompletionChunk || c.Model != "gpt-s" || c.Created == 0 {
					t.Errorf("chunk %d envelope = %+v", i, c)
				}
				if i > 0 && i <= tt.chunks {
					d := got[i].Choices[0].Delta
					if d.Content == nil || d.Role != "" || got[i].Choices[0].FinishReason != nil {
						t.Errorf("content chunk %d = %+v", i, got[i].Choices[0])
					}
					if d.Content != nil {
						text.WriteString(*d.Content)
					}
				}
			}
			if text.String() != want.Choices[0].Message.Content.String() {
				t.Errorf("streamed %q, non-streamed %q", text.String(), want.Choices[0].Message.Content.String())
			}
			fin := got[tt.chunks+1]
			if fr := fin.Choices[0].FinishReason; fr == nil || *fr != adapters.FinishStop || fin.Usage != nil {
				t.Errorf("finish chunk = %+v", fin)
			}
			if wantUsage {
				last := got[len(got)-1]
				if last.Choices == nil || len(last.Choices) != 0 || last.Usage == nil || *last.Usage != *want.Usage {
					t.Errorf("usage chunk = %+v usage %+v, want %+v", last, last.Usage, want.Usage)
				}
				b, _ := json.Marshal(last)
				if !strings.Contains(string(b), `"choices":[]`) {
					t.Errorf("usage chunk marshals as %s", b)
				}
			}
			for i := 0; i < 2; i++ {
				if _, err := s.Recv(); err != io.EOF {
					t.Errorf("Recv after end = %v", err)
				}
			}
		})
	}
}

func TestStreamToolCall(t *testing.T) {
	p := mustNew(t, Config{})
	req := withTools(request("m", "weather?"), `{"type":"function","function":{"name":"get_weather"}}`)
	req.StreamOptions = &adapters.StreamOptions{IncludeUsage: true}
	s, err := p.ChatStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := collect(t, s)
	var id, name, args string
	deltas, withID := 0, 0
	finish := ""
	for _, c := range got {
		for _, ch := range c.Choices {
			for _, tc := range ch.Delta.ToolCalls {
				if tc.Index == nil || *tc.Index != 0 {
					t.Fatalf("tool call delta without index 0: %+v", tc)
				}
				if tc.ID != "" {
					withID++
				}
				id += tc.ID
				name += tc.Function.Name
				if tc.Function.Arguments != "" {
					deltas++
				}
				args += tc.Function.Arguments
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	if name != "get_weather" || args != "{}" || id == "" || withID != 1 || deltas < 2 {
		t.Errorf("tool call: id %q (in %d deltas) name %q args %q in %d deltas", id, withID, name, args, deltas)
	}
	if got[0].Choices[0].Delta.Role != "assistant" || got[0].Choices[0].Delta.ToolCalls[0].Function.Name != "get_weather" {
		t.Errorf("first chunk = %+v", got[0].Choices[0].Delta)
	}
	if finish != adapters.FinishToolCalls {
		t.Errorf("finish = %q", finish)
	}
	if last := got[len(got)-1]; len(last.Choices) != 0 || last.Usage == nil {
		t.Errorf("last chunk = %+v", last)
	}
}

func TestStreamPacingAndCancel(t *testing.T) {
	t.Run("interval applied", func(t *testing.T) {
		p := mustNew(t, Config{Chunks: 4, ChunkInterval: 10 * time.Millisecond})
		start := time.Now()
		s, err := p.ChatStream(context.Background(), request("m", "x"))
		if err != nil {
			t.Fatal(err)
		}
		collect(t, s)
		s.Close()
		if d := time.Since(start); d < 40*time.Millisecond {
			t.Errorf("stream took %v, want >= 40ms", d)
		}
	})
	for _, tt := range []struct {
		name string
		kind adapters.Kind
		ctx  func() (context.Context, context.CancelFunc)
		stop func(adapters.ChunkStream, context.CancelFunc)
	}{
		{name: "cancel", kind: adapters.KindCanceled,
			ctx:  func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			stop: func(_ adapters.ChunkStream, cancel context.CancelFunc) { time.AfterFunc(30*time.Millisecond, cancel) }},
		{name: "deadline", kind: adapters.KindTimeout,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 30*time.Millisecond)
			},
			stop: func(adapters.ChunkStream, context.CancelFunc) {}},
		{name: "close from another goroutine", kind: adapters.KindCanceled,
			ctx: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			stop: func(s adapters.ChunkStream, _ context.CancelFunc) {
				time.AfterFunc(30*time.Millisecond, func() { s.Close() })
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := mustNew(t, Config{Chunks: 100, ChunkInterval: time.Hour})
			ctx, cancel := tt.ctx()
			defer cancel()
			s, err := p.ChatStream(ctx, request("m", "x"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Recv(); err != nil { // the role chunk is not paced
				t.Fatal(err)
			}
			tt.stop(s, cancel)
			start := time.Now()
			_, err = s.Recv()
			asError(t, err, tt.kind)
			if d := time.Since(start); d > time.Second {
				t.Errorf("Recv returned after %v", d)
			}
			if _, again := s.Recv(); again != err {
				t.Errorf("end not sticky: %v", again)
			}
			s.Close()
			s.Close()
		})
	}
	t.Run("unpaced stream sees cancel", func(t *testing.T) {
		p := mustNew(t, Config{})
		ctx, cancel := context.WithCancel(context.Background())
		s, err := p.ChatStream(ctx, request("m", "x"))
		if err != nil {
			t.Fatal(err)
		}
		s.Recv()
		cancel()
		_, err = s.Recv()
		asError(t, err, adapters.KindCanceled)
	})
	t.Run("recv after close", func(t *testing.T) {
		p := mustNew(t, Config{})
		s, err := p.ChatStream(context.Background(), request("m", "x"))
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := s.Recv(); err == nil {
			t.Error("Recv after Close returned a chunk")
		}
	})
}
