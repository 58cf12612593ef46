package responses

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
)

// chunksOf reads a chat completion SSE transcript.
func chunksOf(t *testing.T, name string) []*adapters.ChatChunk {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []*adapters.ChatChunk
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		c := &adapters.ChatChunk{}
		if err := json.Unmarshal([]byte(data), c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// transcript runs chunks through a Streamer and returns the SSE it emits.
func transcript(t *testing.T, r *Request, chunks []*adapters.ChatChunk, fail bool) (string, *Streamer) {
	t.Helper()
	var buf bytes.Buffer
	emit := func(sse []byte) error {
		buf.Write(sse)
		return nil
	}
	n := 0
	ids := func(p string) string { n++; return p + "0123456789abcdef" + strconv.Itoa(n) }
	s := NewStreamer(NewResponse("resp_0123456789abcdef", 1733500000, r), ids, emit)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	for _, c := range chunks {
		if err := s.Chunk(c); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if fail {
		err = s.Fail("upstream_stream_error", "The upstream stream failed after it started.")
	} else {
		err = s.Finish()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.String(), s
}

// TestStreamGolden: chat chunk transcripts become the Responses events OpenAI sends,
// event by event (golden files in testdata, reviewed against OpenAI's stream).
func TestStreamGolden(t *testing.T) {
	r := &Request{Model: "gpt-4o-mini", Stream: true}
	for _, tc := range []struct {
		in, out string
		fail    bool
	}{
		{"chat_text.sse", "responses_text.sse", false},
		{"chat_tool_call.sse", "responses_tool_call.sse", false},
		{"chat_text.sse", "responses_failed.sse", true},
	} {
		t.Run(tc.out, func(t *testing.T) {
			chunks := chunksOf(t, tc.in)
			if tc.fail {
				chunks = chunks[:2]
			}
			got, _ := transcript(t, r, chunks, tc.fail)
			golden(t, tc.out, []byte(got))
			checkSequence(t, got)
		})
	}
}

// checkSequence asserts what every Responses stream promises: sequence numbers from 0
// without gaps, each event's type equal to its SSE event name.
func checkSequence(t *testing.T, sse string) {
	t.Helper()
	events := strings.Split(strings.TrimSuffix(sse, "\n\n"), "\n\n")
	for i, ev := range events {
		name, data, ok := strings.Cut(ev, "\ndata: ")
		if !ok {
			t.Fatalf("event %d: %q", i, ev)
		}
		var body struct {
			Type string `json:"type"`
			Seq  *int   `json:"sequence_number"`
		}
		if err := json.Unmarshal([]byte(data), &body); err != nil {
			t.Fatal(err)
		}
		if "event: "+body.Type != name || body.Seq == nil || *body.Seq != i {
			t.Fatalf("event %d: %s type %s seq %v", i, name, body.Type, body.Seq)
		}
	}
}

// Text, then a call, then a second call: each item is closed before the next opens, and
// the final response has them in order with the usage.
func TestStreamTextThenParallelCalls(t *testing.T) {
	str := func(s string) *string { return &s }
	i0, i1 := 0, 1
	stop := "tool_calls"
	chunks := []*adapters.ChatChunk{
		{Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{Role: "assistant", Content: str("")}}}},
		{Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{Content: str("Checking")}}}},
		{Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{ToolCalls: []adapters.ToolCall{{Index: &i0, ID: "call_a", Function: adapters.FunctionCall{Name: "a", Arguments: `{"x"`}}}}}}},
		{Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{ToolCalls: []adapters.ToolCall{{Index: &i0, Function: adapters.FunctionCall{Arguments: `:1}`}}}}}}},
		{Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{ToolCalls: []adapters.ToolCall{{Index: &i1, ID: "call_b", Function: adapters.FunctionCall{Name: "b", Arguments: `{}`}}}}}}},
		{Choices: []adapters.ChunkChoice{{FinishReason: &stop}}},
		{Choices: []adapters.ChunkChoice{}, Usage: &adapters.Usage{PromptTokens: 9, CompletionTokens: 4, TotalTokens: 13,
			PromptTokensDetails: &adapters.PromptTokensDetails{CachedTokens: 2}, CompletionTokensDetails: &adapters.CompletionTokensDetails{ReasoningTokens: 1}}},
	}
	sse, s := transcript(t, &Request{Model: "m"}, chunks, false)
	checkSequence(t, sse)
	res := s.Response()
	if len(res.Output) != 3 || res.Output[1].Arguments != `{"x":1}` || res.Output[2].CallID != "call_b" || res.Output[2].Arguments != "{}" {
		t.Fatalf("output %+v", res.Output)
	}
	if u := res.Usage; u == nil || u.InputTokens != 9 || u.InputTokensDetails.CachedTokens != 2 || u.OutputTokensDetails.ReasoningTokens != 1 || u.TotalTokens != 13 {
		t.Fatalf("usage %+v", res.Usage)
	}
	var order []string
	for _, ev := range strings.Split(sse, "\n\n") {
		if name, ok := strings.CutPrefix(strings.SplitN(ev, "\n", 2)[0], "event: "); ok && strings.Contains(name, "output_item") {
			order = append(order, strings.TrimPrefix(name, "response.output_item."))
		}
	}
	if strings.Join(order, ",") != "added,done,added,done,added,done" {
		t.Fatalf("item events %v", order)
	}
}

// An empty answer still has one (empty) message, as the non-streamed response has; a
// length cut ends with response.incomplete.
func TestStreamEmptyAndIncomplete(t *testing.T) {
	length := "length"
	sse, s := transcript(t, &Request{Model: "m"}, []*adapters.ChatChunk{{Choices: []adapters.ChunkChoice{{FinishReason: &length}}}}, false)
	checkSequence(t, sse)
	if res := s.Response(); len(res.Output) != 1 || res.Output[0].Type != ItemMessage || res.Status != StatusIncomplete ||
		!strings.Contains(sse, "event: response.incomplete\n") || !strings.Contains(sse, `"incomplete_details":{"reason":"max_output_tokens"}`) {
		t.Fatalf("%s", sse)
	}
}

func TestStreamStopsAtTheFirstWriteError(t *testing.T) {
	boom := errors.New("client gone")
	n := 0
	s := NewStreamer(NewResponse("resp_1", 1, &Request{Model: "m"}), func(p string) string { return p },
		func([]byte) error { n++; return boom })
	if err := s.Start(); !errors.Is(err, boom) || n != 1 {
		t.Fatalf("start: %v after %d writes", err, n)
	}
}
