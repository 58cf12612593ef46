package openai

import (
	"context"

	"github.com/gavel-gw/gavel/adapters"
)

// maxEmbeddingsBody bounds an embeddings response. It is larger than a chat answer's bound
// (httpx.DefaultMaxResponse) because legitimate answers are: 2048 inputs of 3072 dimensions as float arrays,
// pretty-printed one number per line as OpenAI sends them, come close to 200 MiB. A
// buffer that size is not pooled, so only such a request pays for it.
const maxEmbeddingsBody = 256 << 20

var _ adapters.Embedder = (*Provider)(nil)

// Embed creates embeddings: POST {base}/embeddings, or on Azure
// {base}/openai/deployments/{model}/embeddings?api-version=…. The request is sent as
// is, input in the form it was received in; each vector comes back raw (a float array,
// or a base64 string when encoding_format is "base64") and is relayed undecoded.
func (p *Provider) Embed(ctx context.Context, req *adapters.EmbeddingRequest) (*adapters.EmbeddingResponse, error) {
	if req.Input.Len() == 0 {
		// It would marshal as null or []; every upstream rejects that, so save the trip.
		return nil, &adapters.Error{Provider: p.Name(), Kind: adapters.KindBadRequest, Message: "input must not be empty"}
	}
	target, err := p.target(p.embed, req.Model)
	if err != nil {
		return nil, err
	}
	out := new(adapters.EmbeddingResponse)
	if _, err := p.Exchange(ctx, target, req, out, maxEmbeddingsBody, "embeddings"); err != nil {
		return nil, err
	}
	return out, nil
}
