package mock

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"math"
	"strconv"

	"github.com/gavel-gw/gavel/adapters"
)

// Embedding limits. The mock answers any model, so it has no model's dimension to
// default to; 8 keeps test output readable.
const (
	DefaultDimensions = 8
	// MaxDimensions bounds dimensions: text-embedding-3-large has 3072, and a larger
	// vector would only measure the encoder.
	MaxDimensions = 4096
	// MaxEmbeddingInputs is OpenAI's limit on inputs per request.
	MaxEmbeddingInputs = 2048
)

var _ adapters.Embedder = (*Provider)(nil)

// Embed answers after Latency, or fails as ErrorRate decides, with one deterministic
// vector per input: dimensions (8 by default) values derived from an FNV-1a hash of the
// text (or of the token ids), L2-normalised. The same input gets the same vector from
// every mock, whatever its seed or the model, and a shorter vector is the longer one's
// prefix renormalised, as text-embedding-3 shortens. Values are float32, so the float
// array and the base64 form ("encoding_format": "base64", little-endian float32) decode
// to the same numbers. Usage counts about one token per 4 bytes of text (one per id for
// token input), at least one per input.
func (p *Provider) Embed(ctx context.Context, req *adapters.EmbeddingRequest) (*adapters.EmbeddingResponse, error) {
	n := p.seq.Add(1)
	if err := p.wait(ctx, p.cfg.Latency); err != nil {
		return nil, err
	}
	dims, b64, err := p.embeddingShape(req)
	if err != nil {
		return nil, err
	}
	if p.fails(n) {
		return nil, p.injectedFailure()
	}

	count := req.Input.Len()
	r := new(struct {
		resp  adapters.EmbeddingResponse
		usage adapters.EmbeddingUsage
	})
	data := make([]adapters.Embedding, count)
	// All vectors share one buffer, sized so that it never grows: a value of a unit
	// vector in shortest float32 form is at most 17 bytes ("-0.00000123456789") plus
	// its comma.
	per := 2 + 18*dims
	if b64 {
		per = 2 + base64.StdEncoding.EncodedLen(4*dims)
	}
	buf := make([]byte, 0, per*count)
	var raw []byte // scratch for base64: the vector's bytes
	if b64 {
		raw = make([]byte, 4*dims)
	}
	tokens := 0
	for i := 0; i < count; i++ {
		var h uint64
		if i < len(req.Input.Texts) {
			text := req.Input.Texts[i]
			h = fnv(fnvOffset, text)
			tokens += max(1, len(text)/4)
		} else {
			ids := req.Input.Tokens[i-len(req.Input.Texts)]
			h = fnvTokens(fnvOffset, ids)
			tokens += max(1, len(ids))
		}
		start := len(buf)
		if b64 {
			buf = appendBase64Vector(buf, raw, h, dims)
		} else {
			buf = appendFloatVector(buf, h, dims)
		}
		// Capped so that a consumer appending to one vector cannot overwrite the next.
		data[i] = adapters.Embedding{Object: "embedding", Index: i, Embedding: buf[start:len(buf):len(buf)]}
	}
	r.usage = adapters.EmbeddingUsage{PromptTokens: tokens, TotalTokens: tokens}
	r.resp = adapters.EmbeddingResponse{Object: "list", Data: data, Model: req.Model, Usage: &r.usage}
	return &r.resp, nil
}

// embeddingShape validates what OpenAI validates, answering as it does with a 400.
func (p *Provider) embeddingShape(req *adapters.EmbeddingRequest) (dims int, b64 bool, err error) {
	switch n := req.Input.Len(); {
	case n == 0:
		return 0, false, p.badRequest("input must not be empty")
	case n > MaxEmbeddingInputs:
		return 0, false, p.badRequest("input must have at most " + strconv.Itoa(MaxEmbeddingInputs) + " items")
	}
	dims = DefaultDimensions
	if req.Dimensions != nil {
		dims = *req.Dimensions
		if dims < 1 || dims > MaxDimensions {
			return 0, false, p.badRequest("dimensions must be between 1 and " + strconv.Itoa(MaxDimensions))
		}
	}
	switch req.EncodingFormat {
	case "", "float":
	case "base64":
		b64 = true
	default:
		return 0, false, p.badRequest(`encoding_format must be "float" or "base64"`)
	}
	return dims, b64, nil
}

func (p *Provider) badRequest(msg string) *adapters.Error {
	return &adapters.Error{Provider: p.cfg.Name, Kind: adapters.KindBadRequest, Status: 400,
		Code: "invalid_request_error", Message: msg}
}

// fnvTokens is FNV-1a over token ids, each as 4 little-endian bytes.
func fnvTokens(h uint64, ids []int) uint64 {
	for _, id := range ids {
		for k := 0; k < 4; k++ {
			h ^= uint64(byte(id >> (8 * k)))
			h *= fnvPrime
		}
	}
	return h
}

// component is the vector's j-th value before normalisation, uniform in [-1, 1). It
// depends on the hash and j alone, which is what makes shorter vectors prefixes.
func component(h uint64, j int) float64 {
	z := splitmix64(h + uint64(j+1)*0x9E3779B97F4A7C15)
	return float64(z>>11)/(1<<52) - 1
}

// norm is the scale that makes the vector's length one. Computing the components twice
// (here and when writing) costs less than a scratch vector per input.
func norm(h uint64, dims int) float64 {
	var sum float64
	for j := 0; j < dims; j++ {
		c := component(h, j)
		sum += c * c
	}
	if sum == 0 {
		return 0
	}
	return 1 / math.Sqrt(sum)
}

// value is the j-th value as sent. The all-zero vector has no direction; it is sent
// as the first unit vector instead (in practice unreachable, but never NaN).
func value(h uint64, j int, scale float64) float32 {
	if scale == 0 {
		if j == 0 {
			return 1
		}
		return 0
	}
	return float32(component(h, j) * scale)
}

func appendFloatVector(b []byte, h uint64, dims int) []byte {
	scale := norm(h, dims)
	b = append(b, '[')
	for j := 0; j < dims; j++ {
		if j > 0 {
			b = append(b, ',')
		}
		b = appendFloat32(b, value(h, j, scale))
	}
	return append(b, ']')
}

// appendFloat32 writes v in the shortest form that reads back as the same float32,
// switching to an exponent where encoding/json does.
func appendFloat32(b []byte, v float32) []byte {
	f := float64(v)
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, f, format, -1, 32)
}

func appendBase64Vector(b, raw []byte, h uint64, dims int) []byte {
	scale := norm(h, dims)
	for j := 0; j < dims; j++ {
		binary.LittleEndian.PutUint32(raw[4*j:], math.Float32bits(value(h, j, scale)))
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, raw)
	return append(b, '"')
}
