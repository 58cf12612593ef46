package openai

import (
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

// responsesUpstream answers POST /responses with a testdata file, recording the request.
func responsesUpstream(t *testing.T, file, contentType string) (*httptest.Server, *http.Request, *[]byte) {
	t.Helper()
	body, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var got http.Request
	var raw []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = *r.Clone(context.Background())
		raw, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", contentType)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &got, &raw
}

func yes() *bool { b := true; return &b }

func TestRawCallPassesResponsesThrough(t *testing.T) {
	srv, got, raw := responsesUpstream(t, "responses_response.json", "application/json")
	p := mustProvider(t, Config{BaseURL: srv.URL, APIKey: "sk-test", Responses: yes()})
	body := `{"model":"alias","input":"hi", "tools":[{"type":"web_search"}],"x_new_field":{"keep":[1, 2]},"max_output_tokens":5000}`
	res, err := p.RawCall(context.Background(), &adapters.RawRequest{Protocol: adapters.ProtocolResponses, Body: []byte(body),
		Model: "gpt-5", MaxOutputTokens: 1000, Header: http.Header{"Openai-Beta": {"responses=v1"}, "X-Other": {"no"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"model":"gpt-5","input":"hi", "tools":[{"type":"web_search"}],"x_new_field":{"keep":[1, 2]},"max_output_tokens":1000}`
	if string(*raw) != want || got.URL.Path != "/responses" {
		t.Errorf("sent %s to %s", *raw, got.URL.Path)
	}
	if got.Header.Get("Authorization") != "Bearer sk-test" || got.Header.Get("OpenAI-Beta") != "responses=v1" || got.Header.Get("X-Other") != "" {
		t.Errorf("headers %v", got.Header)
	}
	file, _ := os.ReadFile("testdata/responses_response.json")
	if string(res.Body) != string(file) || res.Model != "gpt-5" || res.Usage == nil || res.Usage.PromptTokens != 12 || res.Usage.CompletionTokens != 13 {
		t.Errorf("result %+v usage %+v", res, res.Usage)
	}
}

func TestRawCallResponsesOnlyWhenNative(t *testing.T) {
	for _, cfg := range []Config{{BaseURL: "http://localhost:1/v1"}, {BaseURL: "https://x.openai.azure.com", APIVersion: "2024-10-21", Responses: yes()}} {
		p := mustProvider(t, cfg)
		if p.Speaks(adapters.ProtocolResponses) {
			t.Errorf("%+v speaks Responses", cfg)
		}
		if _, err := p.RawCall(context.Background(), &adapters.RawRequest{Protocol: adapters.ProtocolResponses, Body: []byte(`{}`)}); err != adapters.ErrNotNative {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	if p := mustProvider(t, Config{}); !p.Speaks(adapters.ProtocolResponses) || p.Speaks(adapters.ProtocolAnthropic) {
		t.Error("OpenAI's own API speaks Responses, and only that")
	}
}

func TestRawStreamRelaysResponsesEvents(t *testing.T) {
	srv, _, _ := responsesUpstream(t, "responses_stream.sse", "text/event-stream")
	p := mustProvider(t, Config{BaseURL: srv.URL, Responses: yes()})
	res, err := p.RawCall(context.Background(), &adapters.RawRequest{Protocol: adapters.ProtocolResponses, Body: []byte(`{"model":"a","stream":true}`), Model: "gpt-5", Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Stream.Close()
	var out strings.Builder
	for {
		ev, err := res.Stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString("event: " + string(ev.Name) + "\ndata: " + string(ev.Data) + "\n\n")
	}
	file, _ := os.ReadFile("testdata/responses_stream.sse")
	if out.String() != string(file) {
		t.Errorf("relayed\n%s\nwant\n%s", out.String(), file)
	}
	if u := res.Stream.Usage(); u == nil || u.PromptTokens != 12 || u.TotalTokens != 25 {
		t.Errorf("usage %+v", u)
	}
}

func TestRawStreamResponsesErrors(t *testing.T) {
	for name, body := range map[string]string{
		"error event": "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{},\"sequence_number\":0}\n\n" +
			"event: error\ndata: {\"type\":\"error\",\"code\":\"rate_limit_exceeded\",\"message\":\"slow\",\"param\":null,\"sequence_number\":1}\n\n",
		"failed":    "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"boom\"}},\"sequence_number\":0}\n\n",
		"truncated": "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{},\"sequence_number\":0}\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, body)
			}))
			defer srv.Close()
			p := mustProvider(t, Config{BaseURL: srv.URL, Responses: yes()})
			res, err := p.RawCall(context.Background(), &adapters.RawRequest{Protocol: adapters.ProtocolResponses, Body: []byte(`{}`), Stream: true})
			if err != nil {
				t.Fatal(err)
			}
			defer res.Stream.Close()
			for i := 0; i < 5; i++ {
				_, err = res.Stream.Recv()
				if err != nil {
					break
				}
			}
			ae := adapters.AsError(err)
			if ae == nil {
				t.Fatalf("err %v", err)
			}
			if name == "error event" && ae.Kind != adapters.KindRateLimited {
				t.Errorf("kind %v", ae.Kind)
			}
		})
	}
}
