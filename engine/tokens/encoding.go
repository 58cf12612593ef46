package tokens

import "strings"

// Encoding names a BPE encoding of OpenAI's tokenizers.
type Encoding string

const (
	// O200kBase is the encoding of gpt-4o, gpt-4.1, gpt-4.5, gpt-5 and the o-series, and
	// the default for models this package does not recognise.
	O200kBase Encoding = "o200k_base"
	// Cl100kBase is the encoding of gpt-4 (gpt-4-turbo, gpt-4-32k, …), gpt-3.5-turbo and
	// the text-embedding models.
	Cl100kBase Encoding = "cl100k_base"
)

// EncodingForModel returns the encoding of an OpenAI model family. A provider prefix
// ("openai/gpt-4") and a fine-tune prefix ("ft:gpt-3.5-turbo:acme::id") are ignored, and
// so is case. Anything that is not a cl100k_base family gets O200kBase: every current
// OpenAI model uses it, and for other vendors' models it is as good a guess as any.
func EncodingForModel(model string) Encoding {
	m := strings.ToLower(model)
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
	m = strings.TrimPrefix(m, "ft:")
	switch {
	case strings.HasPrefix(m, "gpt-4o"), strings.HasPrefix(m, "gpt-4.1"), strings.HasPrefix(m, "gpt-4.5"):
		return O200kBase
	case strings.HasPrefix(m, "gpt-4"), strings.HasPrefix(m, "gpt-3.5"), strings.HasPrefix(m, "gpt-35"),
		strings.HasPrefix(m, "text-embedding-"), strings.HasPrefix(m, "davinci-002"),
		strings.HasPrefix(m, "babbage-002"):
		return Cl100kBase
	}
	return O200kBase
}
