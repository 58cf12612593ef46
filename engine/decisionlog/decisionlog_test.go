package decisionlog

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestLogGetMaskAndEvict(t *testing.T) {
	var sunk [][]byte
	l := New(Config{Keep: 2, MaskMessages: true, Labels: map[string]string{"id": "gw1"}, Sink: func(line []byte) { sunk = append(sunk, line) }})
	in := ast.MustParseTerm(`{"request": {"model": "smart", "messages": [{"role": "user", "text": "my card is 4111"}]}, "plan": {"x": 1}}`).Value
	res := ast.MustParseTerm(`{"allow": true, "targets": [{"provider": "a", "model": "m"}]}`).Value
	for _, id := range []string{"a", "b", "c"} {
		if !l.Log(Record{ID: id, Time: time.Unix(1, 0), Revision: "r1", Input: in, Result: res, Route: "a/m", Status: 200}) {
			t.Fatal("dropped")
		}
	}
	l.Close(context.Background())
	if _, ok := l.Get("a"); ok {
		t.Error("oldest event not evicted")
	}
	e, ok := l.Get("c")
	if !ok {
		t.Fatal("event c missing")
	}
	line := string(e)
	for _, want := range []string{`"decision_id":"c"`, `"path":"gavel/decision"`, `"revision":"r1"`, `"[masked 15 bytes]"`, `"route":"a/m"`, `"id":"gw1"`} {
		if !strings.Contains(line, want) {
			t.Errorf("event lacks %s: %s", want, line)
		}
	}
	if strings.Contains(line, "4111") || strings.Contains(line, `"plan"`) {
		t.Errorf("event leaks the prompt or the plan: %s", line)
	}
	if len(sunk) != 3 || l.Logged() != 3 {
		t.Errorf("sink got %d, logged %d", len(sunk), l.Logged())
	}
}

// The fields a provider was sent without (drop_params: drop) are in custom, as valid JSON.
func TestDroppedParamsAreLogged(t *testing.T) {
	l := New(Config{})
	l.Log(Record{ID: "d", Route: "claude/c", Status: 200, Dropped: []string{"chat_template_kwargs", "we\"ird"}})
	l.Log(Record{ID: "n", Route: "a/m", Status: 200})
	l.Close(context.Background())
	for id, want := range map[string]any{"d": []any{"chat_template_kwargs", "we\"ird"}, "n": nil} {
		e, ok := l.Get(id)
		if !ok {
			t.Fatalf("event %s missing", id)
		}
		var ev struct {
			Custom map[string]any `json:"custom"`
		}
		if err := json.Unmarshal(e, &ev); err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		if got := ev.Custom["dropped_params"]; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: dropped_params = %v, want %v", id, got, want)
		}
	}
}

func TestFullBufferDropsWithoutBlocking(t *testing.T) {
	block := make(chan struct{})
	l := New(Config{Buffer: 1, Sink: func([]byte) { <-block }})
	deadline := time.Now().Add(time.Second)
	for l.Dropped() == 0 && time.Now().Before(deadline) {
		l.Log(Record{ID: "x"})
	}
	if l.Dropped() == 0 {
		t.Fatal("a full buffer never dropped")
	}
	close(block)
	l.Close(context.Background())
}

func BenchmarkLog(b *testing.B) {
	l := New(Config{Buffer: 1 << 16, MaskMessages: true})
	defer l.Close(context.Background())
	in := ast.MustParseTerm(`{"request": {"model": "smart", "messages": [{"role": "user", "text": "hello"}]}}`).Value
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		l.Log(Record{ID: "x", Input: in})
	}
}

// appendValue must write what encoding/json writes for OPA's own conversion of the value,
// and refuse (leaving the buffer alone) what it does not handle.
func TestAppendValueMatchesEncodingJSON(t *testing.T) {
	for _, src := range []string{
		`{}`, `[]`, `null`, `true`, `-12`, `1765000000123456789`, `1.5e3`,
		`"a \"q\" <b>&\u2028 é\n"`,
		`{"email": 2, "ssn": 1}`,
		`{"team": {"spent_musd": 5, "reserved_musd": 1099511627776, "limit_musd": -3}, "a": {"x": [1, "two", false, null, {}]}}`,
		`{"b": 1, "a": 2, "B": 3, "é": 4, "_": 5}`,
	} {
		v := ast.MustParseTerm(src).Value
		x, err := ast.JSON(v)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(x)
		got, ok := appendValue([]byte("prefix"), v)
		if !ok || string(got) != "prefix"+string(want) {
			t.Errorf("%s: appendValue = %q, %v; encoding/json says %s", src, got, ok, want)
		}
	}
	for _, src := range []string{`{"a", "b"}`, `{1: "x"}`, `[1, {"k": {2}}]`} {
		got, ok := appendValue([]byte("prefix"), ast.MustParseTerm(src).Value)
		if ok || string(got) != "prefix" {
			t.Errorf("%s: appendValue = %q, %v; want it refused", src, got, ok)
		}
	}
}

// Parts appendValue refuses go through encoding/json, and a part that cannot be encoded at
// all is left out with its comma.
func TestEncodeFallbacks(t *testing.T) {
	l := New(Config{})
	defer l.Close(context.Background())
	in := ast.MustParseTerm(`{"a": x, "now": 5, "pii": {"email": 1}, "request": {"messages": [{"role": "user", "text": "hi"}]}, "tags": {"t1", "t2"}}`).Value
	line := l.encode(Record{ID: "e", Time: time.Unix(0, 0), Input: in})
	var ev map[string]any
	if err := json.Unmarshal(line, &ev); err != nil {
		t.Fatalf("invalid event %s: %v", line, err)
	}
	for _, want := range []string{`"input":{"now":5,"pii":{"email":1},"request":{"messages":[{"role":"user","text":"hi"}]},"tags":["t1","t2"]}`} {
		if !strings.Contains(string(line), want) {
			t.Errorf("event lacks %s: %s", want, line)
		}
	}
}

// A scalar part costs appendValue no allocation, and an object one (its keys), not one
// per member: the decision log encodes four such parts for every request.
func TestAppendValueAllocations(t *testing.T) {
	buf := make([]byte, 0, 256)
	for _, tc := range []struct {
		src  string
		want float64
	}{
		{`1765000000123456789`, 0},
		{`"text"`, 0},
		{`{"email": 2, "ssn": 1, "nested": {"a": 1}}`, 2},
	} {
		v := ast.MustParseTerm(tc.src).Value
		if n := testing.AllocsPerRun(100, func() {
			if _, ok := appendValue(buf[:0], v); !ok {
				t.Fatal("refused")
			}
		}); n > tc.want {
			t.Errorf("%s: %v allocations, want at most %v", tc.src, n, tc.want)
		}
	}
}

// validNumber agrees with encoding/json on what a number is.
func FuzzValidNumber(f *testing.F) {
	for _, s := range []string{"0", "-0", "01", "1.", ".5", "1e", "1e+", "1E-7", "-12.50e+003", "1765000000123456789", "", "-", "+1", "0x1", "1 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validNumber(s), json.Valid([]byte(s)) && strings.Trim(s, " \t\r\n") == s && s != "" && (s[0] == '-' || ('0' <= s[0] && s[0] <= '9')); got != want {
			t.Fatalf("validNumber(%q) = %v, want %v", s, got, want)
		}
	})
}

// An input whose top-level keys are the ones engine/policy builds is written in sorted key
// order without Keys; one with others too (and their order) falls back to Keys, and both
// write what encoding/json writes for the input.
func TestEncodeInputMembersSorted(t *testing.T) {
	l := New(Config{})
	defer l.Close(context.Background())
	for _, src := range []string{
		`{"request": {"model": "m"}, "spend": {}, "rate": {}, "pii": {"email": 1}, "now": 5, "caller": {"key_id": "k"}, "providers": {}}`,
		`{"request": {"model": "m"}, "now": 5, "zeta": 1, "alpha": [2], "caller": {}}`,
		`{"now": 5}`,
		`{}`,
	} {
		in := ast.MustParseTerm(src).Value
		line := l.encode(Record{ID: "e", Time: time.Unix(0, 0), Input: in})
		var ev struct {
			Input json.RawMessage `json:"input"`
		}
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("invalid event %s: %v", line, err)
		}
		x, _ := ast.JSON(in)
		want, _ := json.Marshal(x)
		if string(ev.Input) != string(want) {
			t.Errorf("input %s written as %s, want %s", src, ev.Input, want)
		}
	}
}
