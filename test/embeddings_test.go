package test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/test/fakeupstream"
)

func TestEmbeddingsThroughThePolicy(t *testing.T) {
	up := fakeupstream.New()
	defer up.Close()
	g := start(t, "", map[string]string{"OPENAI_API_KEY": "sk-e", "OPENAI_BASE_URL": up.URL()})
	c := g.client("k")
	var resp *http.Response
	out, err := c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
		Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"hello", "world"}},
	}, option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Data) != 2 || len(out.Data[0].Embedding) != 8 || out.Usage.PromptTokens == 0 {
		t.Fatalf("embeddings = %+v", out)
	}
	want := fakeupstream.Vector("world", 8)
	if float32(out.Data[1].Embedding[0]) != want[0] {
		t.Errorf("vector relayed wrongly: %v vs %v", out.Data[1].Embedding[:2], want[:2])
	}
	if resp.Header.Get("X-Gavel-Route") != "openai/text-embedding-3-small" || resp.Header.Get("X-Gavel-Decision-Id") == "" {
		t.Errorf("headers = %v", resp.Header)
	}
	if up.Requests()[0].Header.Get("Authorization") != "Bearer sk-e" {
		t.Error("provider key not used")
	}

	// A chat model cannot embed; an embedding model cannot chat. That is the client's
	// error (400, which SDKs do not retry), not an outage.
	_, err = c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "smart",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "unsupported_endpoint" {
		t.Errorf("chat alias for embeddings: %v", err)
	}
	_, err = c.Chat.Completions.New(context.Background(), userParams("embed", "hi"))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "unsupported_endpoint" {
		t.Errorf("embedding alias for chat: %v", err)
	}

	for _, body := range []string{`{"model":"embed"}`, `{"model":"embed","input":""}`, `{"input":"x"}`, `{"model":"embed","input":"x","dimensions":0}`, `{"model":"embed","input":{}}`} {
		r, b := g.post(t, "/v1/embeddings", body, nil)
		if r.StatusCode != 400 || b["error"] == nil {
			t.Errorf("%s: %d %v", body, r.StatusCode, b)
		}
	}
}

func TestEmbeddingsFromMockOffline(t *testing.T) {
	g := start(t, "", nil)
	out, err := g.client("k").Embeddings.New(context.Background(), openai.EmbeddingNewParams{Model: "embed",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("offline")}, Dimensions: openai.Int(16)})
	if err != nil || len(out.Data) != 1 || len(out.Data[0].Embedding) != 16 {
		t.Fatalf("mock embeddings: %v %+v", err, out)
	}
}
