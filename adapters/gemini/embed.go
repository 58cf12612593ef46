package gemini

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/gavel-gw/gavel/adapters"
)

// maxEmbedBatch is the most requests batchEmbedContents accepts in one call; longer
// inputs are sent as consecutive batches.
const maxEmbedBatch = 100

// Embed computes embeddings with batchEmbedContents, one request per input text.
//
// Gemini reports no token usage for embeddings, so Usage is an estimate: a quarter of
// the inputs' total length in bytes, rounded up, the usual rule of thumb for English
// text. Quota and billing decisions that need exact counts must not rely on it.
func (p *Provider) Embed(ctx context.Context, req *adapters.EmbeddingRequest) (*adapters.EmbeddingResponse, error) {
	if req.Input.Tokens != nil {
		return nil, p.badRequest("Gemini needs text input; token-id input cannot be embedded")
	}
	texts := req.Input.Texts
	if len(texts) == 0 {
		return nil, p.badRequest("input must not be empty")
	}
	asBase64 := false
	switch req.EncodingFormat {
	case "", "float":
	case "base64":
		asBase64 = true
	default:
		return nil, p.badRequest(fmt.Sprintf("encoding_format %q is not supported; use float or base64", truncate(req.EncodingFormat, 32)))
	}
	if req.Dimensions != nil && *req.Dimensions <= 0 {
		return nil, p.badRequest("dimensions must be positive")
	}
	model, ok := modelPath(req.Model)
	if !ok {
		return nil, p.badRequest(fmt.Sprintf("model %q is not a Gemini model name", truncate(req.Model, 128)))
	}

	out := &adapters.EmbeddingResponse{Object: "list", Model: req.Model, Data: make([]adapters.Embedding, 0, len(texts))}
	target := p.prefix + model + ":batchEmbedContents"
	for start := 0; start < len(texts); start += maxEmbedBatch {
		batch := texts[start:min(start+maxEmbedBatch, len(texts))]
		vectors, err := p.embedBatch(ctx, target, model, batch, req.Dimensions)
		if err != nil {
			return nil, err
		}
		for i, v := range vectors {
			if len(v) == 0 {
				return nil, p.ProtocolError(fmt.Sprintf("Gemini returned an empty embedding for input %d", start+i), nil)
			}
			out.Data = append(out.Data, adapters.Embedding{Object: "embedding", Index: start + i, Embedding: encodeVector(v, asBase64)})
		}
	}

	n := 0
	for _, t := range texts {
		n += len(t)
	}
	tokens := (n + 3) / 4
	out.Usage = &adapters.EmbeddingUsage{PromptTokens: tokens, TotalTokens: tokens}
	return out, nil
}

// embedBatch sends one batchEmbedContents call and returns its vectors in input order.
func (p *Provider) embedBatch(ctx context.Context, target, model string, texts []string, dims *int) ([][]float32, error) {
	w := batchEmbedRequest{Requests: make([]embedRequest, len(texts))}
	for i, t := range texts {
		w.Requests[i] = embedRequest{Model: model, Content: embedContent{Parts: []textPart{{Text: t}}}, OutputDimensionality: dims}
	}
	var r batchEmbedResponse
	if _, err := p.Exchange(ctx, target, &w, &r, maxEmbeddingsBody, "BatchEmbedContentsResponse"); err != nil {
		return nil, err
	}
	if len(r.Embeddings) != len(texts) {
		return nil, p.ProtocolError(fmt.Sprintf("Gemini returned %d embeddings for %d inputs", len(r.Embeddings), len(texts)), nil)
	}
	vectors := make([][]float32, len(r.Embeddings))
	for i := range r.Embeddings {
		vectors[i] = r.Embeddings[i].Values
	}
	return vectors, nil
}

// encodeVector renders a vector as OpenAI does: a JSON array of floats, or with
// encoding_format "base64" a string of the float32 values' little-endian bytes.
func encodeVector(v []float32, asBase64 bool) json.RawMessage {
	if !asBase64 {
		b, _ := json.Marshal(v) // float32 values decoded from JSON are finite
		return b
	}
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	enc := base64.StdEncoding
	out := make([]byte, enc.EncodedLen(len(raw))+2)
	out[0] = '"'
	enc.Encode(out[1:], raw)
	out[len(out)-1] = '"'
	return out
}

func (p *Provider) badRequest(msg string) *adapters.Error {
	return &adapters.Error{Provider: p.Name(), Kind: adapters.KindBadRequest, Message: msg}
}
