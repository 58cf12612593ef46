package fakeupstream

import (
	"context"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// createdAt is the server's start time in every answer, zeroed for the golden files.
var createdAt = regexp.MustCompile(`"created_at":\d+`)

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	got = createdAt.ReplaceAll(got, []byte(`"created_at":0`))
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (-update rewrites it):\n got: %s\nwant: %s", name, got, want)
	}
}

func postResponses(t *testing.T, s *Server, body string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(s.URL()+"/responses", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// The fake's Responses answers, wire-exact: golden transcripts of a reply with a
// reasoning item and a tool call, streamed and not, and of a stream that fails.
func TestResponsesGolden(t *testing.T) {
	s := newServer(t)
	st := Step{Reply: "Let me check.", Reasoning: "gAAAAenc", Chunks: 2,
		ToolCalls: []ToolCall{{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`, Pieces: 2}}}
	s.Script("gpt-5", st, st, Step{Reply: "one two three", Fault: MidStreamError, FaultAfter: 5, Message: "boom"})
	_, body := postResponses(t, s, `{"model":"gpt-5","input":"hi","instructions":"be brief"}`)
	golden(t, "responses_response.json", body)
	resp, body := postResponses(t, s, `{"model":"gpt-5","input":"hi","stream":true}`)
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %s", resp.Header.Get("Content-Type"))
	}
	golden(t, "responses_stream.sse", body)
	_, body = postResponses(t, s, `{"model":"gpt-5","input":"hi","stream":true}`)
	golden(t, "responses_stream_failed.sse", body)
	if s.Count("gpt-5") != 3 || string(s.Requests()[0].Raw) != `{"model":"gpt-5","input":"hi","instructions":"be brief"}` {
		t.Errorf("recorded %d, %s", s.Count("gpt-5"), s.Requests()[0].Raw)
	}
}

// openai-go reads the fake's Responses answers: the object, and the stream event by event.
func TestSDKResponses(t *testing.T) {
	s := newServer(t)
	s.SetDefault(AnyModel, Step{Reply: "Let me check.", ToolCalls: []ToolCall{{ID: "call_1", Name: "f", Arguments: `{"a":1}`}}})
	c := sdk(s)
	res, err := c.Responses.New(context.Background(), responses.ResponseNewParams{Model: "gpt-5",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
	if err != nil {
		t.Fatal(err)
	}
	if res.OutputText() != "Let me check." || len(res.Output) != 2 || res.Output[1].Name != "f" || res.Usage.InputTokens != DefaultPromptTokens {
		t.Fatalf("%s", res.RawJSON())
	}
	stream := c.Responses.NewStreaming(context.Background(), responses.ResponseNewParams{Model: "gpt-5",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
	text, args, seq := "", "", int64(0)
	var last responses.ResponseStreamEventUnion
	for stream.Next() {
		ev := stream.Current()
		if ev.SequenceNumber != seq {
			t.Fatalf("%s: sequence %d, want %d", ev.Type, ev.SequenceNumber, seq)
		}
		seq++
		switch ev.Type {
		case "response.output_text.delta":
			text += ev.Delta
		case "response.function_call_arguments.delta":
			args += ev.Delta
		}
		last = ev
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if text != "Let me check." || args != `{"a":1}` || last.Type != "response.completed" || last.Response.Usage.TotalTokens == 0 {
		t.Fatalf("text %q args %q last %s", text, args, last.RawJSON())
	}
}
