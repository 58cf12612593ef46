package pipeline

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gavel-gw/gavel/adapters"
)

func TestOverlapStripping(t *testing.T) {
	long := strings.Repeat("lorem ipsum dolor sit amet ", 40) // longer than overlapWindow
	for _, tc := range []struct {
		name, relayed string
		pieces        []string // the continuation as it arrives
		want          string   // what is relayed of it
	}{
		{"exact continuation", "The weather in Par", []string{"is is ", "sunny."}, "is is sunny."},
		{"repeats the last words", "The weather in Paris is", []string{"Paris is", " sunny", " today."}, " sunny today."},
		{"repeats in one piece", "The weather in Paris is", []string{"in Paris is sunny."}, " sunny."},
		{"starts over", "The weather", []string{"The weather in Paris is sunny."}, " in Paris is sunny."},
		{"whitespace trimmed from the prefill", "Hello ", []string{" world"}, "world"},
		{"newlines trimmed from the prefill", "Intro:\n\n", []string{"\n\n- one"}, "- one"},
		{"a short coincidence is kept", "I said ha", []string{"ha!"}, "ha!"},
		{"seven bytes are a coincidence", "abc defg", []string{"c defgX"}, "c defgX"},
		{"eight bytes are a repetition", "xabc defg", []string{"abc defgX"}, "X"},
		{"no overlap", "The answer is", []string{" 42", "."}, " 42."},
		{"continuation shorter than the overlap window, ends early", "one two three four", []string{"three four"}, ""},
		{"multi-byte runes", "Grüße aus Köl", []string{"aus Köln, ", "東京"}, "n, 東京"},
		{"repetition beyond the window is not looked for", long + "end.", []string{long[:100]}, long[:100]},
		{"repetition at the end of a long text", long + "the end", []string{"sit amet the end", " really."}, " really."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOverlap(tc.relayed)
			var got strings.Builder
			decided := false
			for _, p := range tc.pieces {
				if decided {
					got.WriteString(p)
					continue
				}
				var out string
				out, decided = o.feed(p)
				got.WriteString(out)
			}
			if !decided {
				got.WriteString(o.flush())
			}
			if got.String() != tc.want {
				t.Errorf("relayed %q, want %q", got.String(), tc.want)
			}
			if !utf8.ValidString(got.String()) {
				t.Errorf("invalid UTF-8 %q", got.String())
			}
		})
	}
	if newOverlap("") != nil {
		t.Error("nothing relayed: nothing to strip")
	}
}

// The tail kept for a long text starts on a rune boundary.
func TestOverlapTailOnRuneBoundary(t *testing.T) {
	for i := range 4 {
		s := strings.Repeat("x", i) + strings.Repeat("東", overlapWindow)
		if o := newOverlap(s); !utf8.ValidString(o.tail) || len(o.tail) > overlapWindow {
			t.Errorf("tail of %d bytes, valid %v", len(o.tail), utf8.ValidString(o.tail))
		}
	}
}

// Tool-call deltas are assembled into whole calls, numbered from 0 in the order they came.
func TestHeldToolCalls(t *testing.T) {
	i0, i3 := 0, 3
	c := &continuing{}
	c.hold([]adapters.ToolCall{{Index: &i0, ID: "call_a", Type: "function", Function: adapters.FunctionCall{Name: "f", Arguments: `{"a":`}}})
	c.hold([]adapters.ToolCall{{Index: &i0, Function: adapters.FunctionCall{Arguments: `1}`}}, {Index: &i3, ID: "call_b", Function: adapters.FunctionCall{Name: "g"}}})
	c.hold([]adapters.ToolCall{{Index: &i3, Function: adapters.FunctionCall{Arguments: `{}`}}})
	if len(c.calls) != 2 || c.calls[0].args.String() != `{"a":1}` || c.calls[1].call.ID != "call_b" || c.calls[1].args.String() != `{}` {
		t.Fatalf("held %+v", c.calls)
	}
	if got := c.heldText(); got != `f{"a":1}g{}` {
		t.Errorf("held text %q", got)
	}
}

func TestEmptyChunk(t *testing.T) {
	empty, text, stop := "", "x", "stop"
	for _, tc := range []struct {
		c    adapters.ChatChunk
		want bool
	}{
		{adapters.ChatChunk{Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{Content: &empty}}}}, true},
		{adapters.ChatChunk{Choices: []adapters.ChunkChoice{{}}}, true},
		{adapters.ChatChunk{Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{Content: &text}}}}, false},
		{adapters.ChatChunk{Choices: []adapters.ChunkChoice{{Delta: adapters.Delta{Role: "assistant"}}}}, false},
		{adapters.ChatChunk{Choices: []adapters.ChunkChoice{{FinishReason: &stop}}}, false},
		{adapters.ChatChunk{Choices: []adapters.ChunkChoice{}, Usage: &adapters.Usage{}}, false},
	} {
		if got := emptyChunk(&tc.c); got != tc.want {
			t.Errorf("emptyChunk(%+v) = %v", tc.c, got)
		}
	}
}
