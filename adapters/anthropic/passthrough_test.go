package anthropic

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
)

// upstream records one request and answers with status, content type and body.
type upstream struct {
	got    []byte
	header http.Header
	path   string
}

func (u *upstream) serve(t *testing.T, status int, ctype string, body []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.got, _ = io.ReadAll(r.Body)
		u.header, u.path = r.Header.Clone(), r.URL.Path
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A passed-through body reaches the upstream byte for byte but for its model; the
// client's version and betas replace the provider's, the key stays the provider's, and
// the answer comes back as it was with its usage (cache reads and writes) read.
func TestRawCallPassesBodyThrough(t *testing.T) {
	body := []byte(`{"model": "claude-opus-5-5", "max_tokens": 1024, "system": [{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],` +
		`"messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"EqQB+sig/=="}]}], "future_field": {"x": 1}}`)
	answer := []byte(`{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"hi"}],` +
		`"stop_reason":"end_turn","usage":{"input_tokens":10,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000,"output_tokens":5}}`)
	var u upstream
	srv := u.serve(t, 200, "application/json", answer)
	p := mustProvider(t, Config{BaseURL: srv.URL, APIKey: "sk-provider"})
	h := http.Header{}
	h.Set("Anthropic-Version", "2023-06-01")
	h.Add("Anthropic-Beta", "interleaved-thinking-2025-05-14")
	h.Set("X-Api-Key", "gvl-client-key") // never forwarded
	res, err := p.RawCall(context.Background(), &adapters.RawRequest{Protocol: adapters.ProtocolAnthropic, Body: body, Model: "claude-sonnet-4-5", Header: h})
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Replace(body, []byte(`"claude-opus-5-5"`), []byte(`"claude-sonnet-4-5"`), 1)
	if !bytes.Equal(u.got, want) {
		t.Errorf("upstream got\n%s\nwant\n%s", u.got, want)
	}
	if u.path != "/v1/messages" || u.header.Get("X-Api-Key") != "sk-provider" || u.header.Get("Anthropic-Beta") != "interleaved-thinking-2025-05-14" {
		t.Errorf("path %s, headers %v", u.path, u.header)
	}
	if !bytes.Equal(res.Body, answer) || res.Model != "claude-sonnet-4-5" {
		t.Errorf("answer %s model %q", res.Body, res.Model)
	}
	wantUsage := adapters.Usage{PromptTokens: 1110, CompletionTokens: 5, TotalTokens: 1115}
	if u := res.Usage; u == nil || u.PromptTokens != wantUsage.PromptTokens || u.CompletionTokens != 5 || u.TotalTokens != 1115 ||
		u.PromptTokensDetails.CachedTokens != 1000 || u.PromptTokensDetails.CacheWriteTokens != 100 {
		t.Errorf("usage = %+v %+v", res.Usage, res.Usage.PromptTokensDetails)
	}
}

func TestRawCallCapsMaxTokens(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"model":"a","max_tokens":9000}`, `{"model":"b","max_tokens":100}`},
		{`{"model":"a","max_tokens":50}`, `{"model":"b","max_tokens":50}`},
		{`{"model":"a"}`, `{"max_tokens":100,"model":"b"}`},
	} {
		var u upstream
		srv := u.serve(t, 200, "application/json", []byte(`{"type":"message","content":[]}`))
		p := mustProvider(t, Config{BaseURL: srv.URL})
		if _, err := p.RawCall(context.Background(), &adapters.RawRequest{Protocol: adapters.ProtocolAnthropic, Body: []byte(tc.in), Model: "b", MaxOutputTokens: 100}); err != nil {
			t.Fatal(err)
		}
		if string(u.got) != tc.want {
			t.Errorf("%s → %s, want %s", tc.in, u.got, tc.want)
		}
	}
}

func TestRawCallCountTokens(t *testing.T) {
	var u upstream
	srv := u.serve(t, 200, "application/json", []byte(`{"input_tokens":42}`))
	p := mustProvider(t, Config{BaseURL: srv.URL})
	res, err := p.RawCall(context.Background(), &adapters.RawRequest{Protocol: adapters.ProtocolAnthropic, Op: adapters.OpCountTokens,
		Body: []byte(`{"model":"a","messages":[]}`), Model: "b", MaxOutputTokens: 10})
	if err != nil {
		t.Fatal(err)
	}
	if u.path != "/v1/messages/count_tokens" || string(u.got) != `{"model":"b","messages":[]}` || string(res.Body) != `{"input_tokens":42}` {
		t.Errorf("path %s body %s answer %s", u.path, u.got, res.Body)
	}
}

func TestRawCallRefusesOtherProtocols(t *testing.T) {
	p := mustProvider(t, Config{BaseURL: "http://127.0.0.1:1"})
	for _, r := range []adapters.RawRequest{{Protocol: adapters.ProtocolResponses}, {Protocol: adapters.ProtocolAnthropic, Op: "embed"}} {
		if _, err := p.RawCall(context.Background(), &r); err != adapters.ErrNotNative {
			t.Errorf("%+v: err = %v, want ErrNotNative", r, err)
		}
	}
}

// Failures are classified as for Chat: the status, an error body with a 2xx.
func TestRawCallErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		kind   adapters.Kind
	}{
		{529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, adapters.KindOverloaded},
		{429, `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`, adapters.KindRateLimited},
		{400, `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 300000 tokens > 200000 maximum"}}`, adapters.KindContextLength},
		{200, `{"type":"error","error":{"type":"api_error","message":"boom"}}`, adapters.KindServer},
		{200, `not json`, adapters.KindProtocol},
	} {
		var u upstream
		srv := u.serve(t, tc.status, "application/json", []byte(tc.body))
		p := mustProvider(t, Config{BaseURL: srv.URL})
		_, err := p.RawCall(context.Background(), &adapters.RawRequest{Protocol: adapters.ProtocolAnthropic, Body: []byte(`{"model":"a"}`), Model: "b"})
		if e := adapters.AsError(err); e == nil || e.Kind != tc.kind {
			t.Errorf("%d %s: err = %v, want %s", tc.status, tc.body, err, tc.kind)
		}
	}
}

// A passed-through stream yields every event as it came, names included, reads the usage
// on the way, and ends at message_stop.
func TestRawStreamRelaysEvents(t *testing.T) {
	for _, name := range []string{"thinking", "tool_use", "pings", "text", "server_tool"} {
		t.Run(name, func(t *testing.T) {
			sse, err := os.ReadFile("testdata/streams/" + name + ".sse")
			if err != nil {
				t.Fatal(err)
			}
			var u upstream
			srv := u.serve(t, 200, "text/event-stream", sse)
			p := mustProvider(t, Config{BaseURL: srv.URL})
			res, err := p.RawCall(context.Background(), &adapters.RawRequest{Protocol: adapters.ProtocolAnthropic, Body: []byte(`{"model":"a","stream":true}`), Model: "b", Stream: true})
			if err != nil {
				t.Fatal(err)
			}
			defer res.Stream.Close()
			var got bytes.Buffer
			for {
				ev, err := res.Stream.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got.WriteString("event: " + string(ev.Name) + "\ndata: " + string(ev.Data) + "\n\n")
			}
			// Comments (keep-alives) are the only thing not relayed.
			var want strings.Builder
			for _, line := range strings.SplitAfter(string(sse), "\n") {
				if !strings.HasPrefix(line, ":") {
					want.WriteString(line)
				}
			}
			if strings.TrimSpace(got.String()) != strings.TrimSpace(want.String()) {
				t.Errorf("relayed\n%s\nwant\n%s", got.String(), sse)
			}
			if _, err := res.Stream.Recv(); err != io.EOF {
				t.Errorf("Recv after the end = %v", err)
			}
		})
	}
}

func TestRawStreamUsageAndErrors(t *testing.T) {
	stream := func(t *testing.T, sse string) adapters.RawStream {
		var u upstream
		srv := u.serve(t, 200, "text/event-stream", []byte(sse))
		p := mustProvider(t, Config{BaseURL: srv.URL})
		res, err := p.RawCall(context.Background(), &adapters.RawRequest{Protocol: adapters.ProtocolAnthropic, Body: []byte(`{"model":"a"}`), Model: "b", Stream: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Stream.Close() })
		return res.Stream
	}
	drain := func(s adapters.RawStream) error {
		for {
			if _, err := s.Recv(); err != nil {
				return err
			}
		}
	}
	s := stream(t, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":7,\"cache_read_input_tokens\":3,\"cache_creation_input_tokens\":2,\"output_tokens\":1}}}\n\n"+
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\n"+
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	if err := drain(s); err != io.EOF {
		t.Fatal(err)
	}
	if u := s.Usage(); u == nil || u.PromptTokens != 12 || u.CompletionTokens != 9 || u.PromptTokensDetails.CachedTokens != 3 || u.PromptTokensDetails.CacheWriteTokens != 2 {
		t.Errorf("usage %+v", u)
	}

	sse, _ := os.ReadFile("testdata/streams/error.sse")
	err := drain(stream(t, string(sse)))
	if e := adapters.AsError(err); e == nil || e.Kind != adapters.KindOverloaded {
		t.Errorf("error event: %v", err)
	}
	err = drain(stream(t, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n"))
	if e := adapters.AsError(err); e == nil || e.Kind != adapters.KindConnection || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated: %v", err)
	}
}
