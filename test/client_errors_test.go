package test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// A request that no target can take because of the request itself is the client's error:
// a 400 naming what to change, which the SDKs do not retry, not a 503 "no provider is
// available" that they retry as an outage.
func TestClientErrorsAreNotOutages(t *testing.T) {
	g := start(t, "", nil) // the embedded bundle over the offline mock
	c := g.client("k", option.WithMaxRetries(0))
	tests := []struct {
		name    string
		call    func() error
		code    string
		message string
	}{
		{"embeddings for a chat alias", func() error {
			_, err := c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "smart",
				Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello")}})
			return err
		}, "unsupported_endpoint", "does not serve embeddings requests"},
		{"chat for an embedding alias", func() error {
			_, err := c.Chat.Completions.New(context.Background(), userParams("embed", "hello"))
			return err
		}, "unsupported_endpoint", "does not serve chat requests"},
		{"max_tokens beyond every context window", func() error {
			p := userParams("fast", "hello")
			p.MaxTokens = openai.Int(100_000_000)
			_, err := c.Chat.Completions.New(context.Background(), p)
			return err
		}, "context_length_exceeded", "largest context window of `fast`"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var apiErr *openai.Error
			if err := tc.call(); !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want an API error", err)
			}
			if apiErr.StatusCode != 400 || apiErr.Code != tc.code || !strings.Contains(apiErr.Message, tc.message) || apiErr.Type != "invalid_request_error" {
				t.Errorf("got %d %s %s %q, want 400 invalid_request_error %s mentioning %q",
					apiErr.StatusCode, apiErr.Type, apiErr.Code, apiErr.Message, tc.code, tc.message)
			}
		})
	}
}

// An upstream 400 reaches the client with the parameter the upstream blamed, so the SDK
// can say which field to fix.
func TestUpstreamBadRequestKeepsItsParam(t *testing.T) {
	g, a, _ := twoFakes(t, "")
	a.Script("m1", fakeupstream.Step{Status: 400, Code: "invalid_value", Param: "temperature",
		Message: "Invalid 'temperature': decimal above maximum value."})
	_, err := g.client("k").Chat.Completions.New(context.Background(), userParams("chat", "hi"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v", err)
	}
	if apiErr.StatusCode != 400 || apiErr.Code != "invalid_value" || apiErr.Param != "temperature" {
		t.Errorf("got %d %s param %q, want 400 invalid_value param temperature", apiErr.StatusCode, apiErr.Code, apiErr.Param)
	}
}
