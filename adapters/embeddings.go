package adapters

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
)

// Embedder is the optional capability of providers that serve embeddings; the server finds
// it by type assertion on a Provider.
type Embedder interface {
	Embed(ctx context.Context, req *EmbeddingRequest) (*EmbeddingResponse, error)
}

// EmbeddingRequest is an OpenAI-style embeddings request.
type EmbeddingRequest struct {
	Model          string         `json:"model"`
	Input          EmbeddingInput `json:"input"`
	EncodingFormat string         `json:"encoding_format,omitempty"` // "float" (default) or "base64"
	Dimensions     *int           `json:"dimensions,omitempty"`
	User           string         `json:"user,omitempty"`
}

// EmbeddingInput is `input`: a string, an array of strings, an array of token ids, or an
// array of token-id arrays. Exactly one of Texts or Tokens is set.
type EmbeddingInput struct {
	Texts  []string
	Tokens [][]int
	single bool // the wire form was a bare string
}

// TextInput returns string input.
func TextInput(s ...string) EmbeddingInput { return EmbeddingInput{Texts: s, single: len(s) == 1} }

// Len is the number of inputs.
func (in EmbeddingInput) Len() int { return len(in.Texts) + len(in.Tokens) }

// MarshalJSON writes the form the input was received in.
func (in EmbeddingInput) MarshalJSON() ([]byte, error) {
	switch {
	case in.Tokens != nil:
		if len(in.Tokens) == 1 && in.single {
			return json.Marshal(in.Tokens[0])
		}
		return json.Marshal(in.Tokens)
	case in.single && len(in.Texts) == 1:
		return json.Marshal(in.Texts[0])
	}
	return json.Marshal(in.Texts)
}

// UnmarshalJSON accepts every form OpenAI accepts.
func (in *EmbeddingInput) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*in = EmbeddingInput{}
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return errors.New("input must be a string or an array")
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		in.Texts, in.single = []string{s}, true
		return nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return errors.New("input must be a string or an array")
	}
	if len(raw) == 0 {
		return errors.New("input must not be empty")
	}
	first := bytes.TrimSpace(raw[0])
	switch {
	case len(first) > 0 && first[0] == '"':
		return json.Unmarshal(b, &in.Texts)
	case len(first) > 0 && first[0] == '[':
		return json.Unmarshal(b, &in.Tokens)
	default:
		var one []int
		if err := json.Unmarshal(b, &one); err != nil {
			return errors.New("input must be a string, an array of strings, or token ids")
		}
		in.Tokens, in.single = [][]int{one}, true
		return nil
	}
}

// EmbeddingResponse is an OpenAI-style embeddings list.
type EmbeddingResponse struct {
	Object string          `json:"object"` // "list"
	Data   []Embedding     `json:"data"`
	Model  string          `json:"model"`
	Usage  *EmbeddingUsage `json:"usage,omitempty"`
}

// Embedding is one vector. Vector is kept as raw JSON: an array of floats, or a base64
// string when encoding_format was "base64"; gavel relays it without decoding.
type Embedding struct {
	Object    string          `json:"object"` // "embedding"
	Index     int             `json:"index"`
	Embedding json.RawMessage `json:"embedding"`
}

// EmbeddingUsage counts input tokens.
type EmbeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}
