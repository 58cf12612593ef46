package tokens

import (
	"math"
	"math/bits"
)

// Price is a model's price in micro-USD (millionths of a dollar) per million tokens, so
// that "$2.50 per 1M input tokens" is InputMicroUSDPerMTok: 2_500_000 and the cost of n
// tokens is n × price / 10⁶ micro-USD, in integers.
//
// The JSON names are those of a catalog entry's price in data.gavel.catalog, which decodes
// straight into this type: the catalog and the cost arithmetic share one price.
type Price struct {
	InputMicroUSDPerMTok  int64 `json:"input_musd_per_mtok"`
	OutputMicroUSDPerMTok int64 `json:"output_musd_per_mtok"`
	// CachedInputMicroUSDPerMTok is the price of input tokens served from the provider's
	// prompt cache. Zero means the price list has none: cached tokens are then billed at
	// the input price, never for free.
	CachedInputMicroUSDPerMTok int64 `json:"cached_input_musd_per_mtok,omitempty"`
	// CacheWriteMicroUSDPerMTok is the price of input tokens written to the provider's
	// prompt cache (Anthropic bills them above the input price). Zero means the price list
	// has none: they are billed at the input price.
	CacheWriteMicroUSDPerMTok int64 `json:"cache_write_musd_per_mtok,omitempty"`
}

// DefaultMaxOutputTokens is what EstimateCost reserves for the output of a request that
// sets no max_tokens. Callers that know the model's maximum output should pass that
// instead: a reservation is only as safe as its output bound.
const DefaultMaxOutputTokens = 1024

// Cost returns what the usage costs at p, in micro-USD, rounded up: the sum of the
// three parts is computed exactly and divided once, so the result is never below the
// exact cost and never more than 1 micro-USD above it.
//
// inputTokens counts every prompt token, cached ones included, as OpenAI reports them
// (usage.prompt_tokens with usage.prompt_tokens_details.cached_tokens). For a provider
// that reports cache reads apart from the other input (Anthropic's
// cache_read_input_tokens), pass their sum as inputTokens. A cachedInputTokens above
// inputTokens is taken as all-cached input of that size; negative counts and negative
// prices count as zero. A cost that does not fit in an int64 is math.MaxInt64.
func Cost(p Price, inputTokens, cachedInputTokens, outputTokens int) int64 {
	return CostCached(p, inputTokens, cachedInputTokens, 0, outputTokens)
}

// CostCached is Cost for usage that also wrote cacheWriteTokens of its input to the
// provider's prompt cache: inputTokens counts them too (like cache reads), and they are
// billed at the cache-write price. Cache reads and writes above inputTokens are taken as
// all-cached input of their sum.
func CostCached(p Price, inputTokens, cachedInputTokens, cacheWriteTokens, outputTokens int) int64 {
	in, cached, write, out := nonNeg(int64(inputTokens)), nonNeg(int64(cachedInputTokens)), nonNeg(int64(cacheWriteTokens)), nonNeg(int64(outputTokens))
	if cached+write > in {
		in = cached + write
	}
	inPrice, outPrice, cachedPrice, writePrice := nonNeg(p.InputMicroUSDPerMTok), nonNeg(p.OutputMicroUSDPerMTok), nonNeg(p.CachedInputMicroUSDPerMTok), nonNeg(p.CacheWriteMicroUSDPerMTok)
	if cachedPrice == 0 {
		cachedPrice = inPrice
	}
	if writePrice == 0 {
		writePrice = inPrice
	}
	var hi, lo uint64
	for _, t := range [4][2]int64{{in - cached - write, inPrice}, {cached, cachedPrice}, {write, writePrice}, {out, outPrice}} {
		h, l := bits.Mul64(uint64(t[0]), uint64(t[1]))
		var carry uint64
		lo, carry = bits.Add64(lo, l, 0)
		hi += h + carry // at most 4 × (2⁶³-1)² < 2¹²⁸: no overflow
	}
	const perM = 1_000_000
	if hi >= perM {
		return math.MaxInt64 // the quotient would not fit in 64 bits
	}
	q, r := bits.Div64(hi, lo, perM)
	if r != 0 {
		q++
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

// EstimateCost returns the cost to reserve for a request before it runs: its estimated
// input (Estimate, EstimateMessages) at the full input price, since whether the cache
// will serve any of it is unknown, plus maxOutputTokens of output, the most the request
// can produce. A maxOutputTokens of zero or less means the request set no bound:
// DefaultMaxOutputTokens is reserved.
func EstimateCost(p Price, estInputTokens, maxOutputTokens int) int64 {
	if maxOutputTokens <= 0 {
		maxOutputTokens = DefaultMaxOutputTokens
	}
	return Cost(p, estInputTokens, 0, maxOutputTokens)
}

func nonNeg(v int64) int64 {
	return max(v, 0)
}
