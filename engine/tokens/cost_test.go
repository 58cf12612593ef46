package tokens

import (
	"math"
	"math/big"
	"testing"
)

// gpt4o is gpt-4o's list price: $2.50 input, $1.25 cached input, $10 output per 1M tokens.
var gpt4o = Price{InputMicroUSDPerMTok: 2_500_000, CachedInputMicroUSDPerMTok: 1_250_000, OutputMicroUSDPerMTok: 10_000_000}

func TestCost(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		p                     Price
		input, cached, output int
		want                  int64
	}{
		{"nothing", gpt4o, 0, 0, 0, 0},
		{"exact", gpt4o, 1000, 200, 500, 2000 + 250 + 5000}, // 800 × 2.5 + 200 × 1.25 + 500 × 10
		{"one input token rounds up", gpt4o, 1, 0, 0, 3},    // 2.5 µUSD
		{"one output token", gpt4o, 0, 0, 1, 10},            // exactly 10 µUSD
		{"one cached token rounds up", gpt4o, 1, 1, 0, 2},   // 1.25 µUSD
		{"parts rounded once", gpt4o, 1, 0, 1, 13},          // 2.5 + 10 = 12.5
		{"all cached", gpt4o, 4000, 4000, 0, 5000},          // 5000
		{"cached above input", gpt4o, 100, 400, 0, 500},     // taken as 400 cached
		{"negative counts", gpt4o, -5, -1, -7, 0},
		{"cheap model", Price{InputMicroUSDPerMTok: 150_000, OutputMicroUSDPerMTok: 600_000}, 1_000_000, 0, 1_000_000, 750_000},
		{"sub-micro price", Price{InputMicroUSDPerMTok: 1}, 1, 0, 0, 1},
		{"no cached price bills input price", Price{InputMicroUSDPerMTok: 3_000_000, OutputMicroUSDPerMTok: 15_000_000}, 1000, 1000, 0, 3_000},
		{"negative price", Price{InputMicroUSDPerMTok: -3_000_000, OutputMicroUSDPerMTok: 15_000_000}, 1000, 0, 1000, 15_000},
		{"free", Price{}, 1 << 40, 5, 1 << 40, 0},
		{"saturates", Price{InputMicroUSDPerMTok: math.MaxInt64, OutputMicroUSDPerMTok: math.MaxInt64}, math.MaxInt, 0, math.MaxInt, math.MaxInt64},
		{"largest exact", Price{InputMicroUSDPerMTok: 1_000_000}, math.MaxInt, 0, 0, math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Cost(tc.p, tc.input, tc.cached, tc.output); got != tc.want {
				t.Errorf("Cost(%+v, %d, %d, %d) = %d, want %d", tc.p, tc.input, tc.cached, tc.output, got, tc.want)
			}
		})
	}
}

// TestCostNeverUndercharges compares Cost with exact rational arithmetic on a grid of
// counts and prices: never below, less than one micro-USD above.
func TestCostNeverUndercharges(t *testing.T) {
	prices := []int64{0, 1, 7, 150_000, 1_250_000, 2_500_000, 10_000_000, 60_000_000, 999_999_999}
	counts := []int{0, 1, 2, 3, 999, 1001, 123_457, 1 << 31, 1 << 50}
	for _, ip := range prices {
		for _, op := range prices {
			for _, cp := range []int64{0, 1, 3_333_333} {
				p := Price{InputMicroUSDPerMTok: ip, OutputMicroUSDPerMTok: op, CachedInputMicroUSDPerMTok: cp}
				for _, in := range counts {
					for _, out := range counts {
						cached := in / 3
						got := Cost(p, in, cached, out)
						cpEff := cp
						if cpEff == 0 {
							cpEff = ip
						}
						exact := new(big.Int).Mul(big.NewInt(int64(in-cached)), big.NewInt(ip))
						exact.Add(exact, new(big.Int).Mul(big.NewInt(int64(cached)), big.NewInt(cpEff)))
						exact.Add(exact, new(big.Int).Mul(big.NewInt(int64(out)), big.NewInt(op)))
						q, r := new(big.Int).QuoRem(exact, big.NewInt(1_000_000), new(big.Int))
						if r.Sign() > 0 {
							q.Add(q, big.NewInt(1))
						}
						want := int64(math.MaxInt64)
						if q.IsInt64() {
							want = q.Int64()
						}
						if got != want {
							t.Fatalf("Cost(%+v, %d, %d, %d) = %d, want %d", p, in, cached, out, got, want)
						}
					}
				}
			}
		}
	}
}

func TestEstimateCost(t *testing.T) {
	for _, tc := range []struct {
		name          string
		input, maxOut int
		want          int64
	}{
		{"bounded output", 1000, 256, 2500 + 2560},
		{"no max_tokens reserves the default", 1000, 0, 2500 + DefaultMaxOutputTokens*10},
		{"negative max_tokens reserves the default", 1000, -1, 2500 + DefaultMaxOutputTokens*10},
		{"model maximum passed in", 10, 16384, 25 + 163840},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := EstimateCost(gpt4o, tc.input, tc.maxOut); got != tc.want {
				t.Errorf("EstimateCost(gpt4o, %d, %d) = %d, want %d", tc.input, tc.maxOut, got, tc.want)
			}
		})
	}
	// A reservation covers what the request can actually cost, however much is cached.
	if r, c := EstimateCost(gpt4o, 1000, 500), Cost(gpt4o, 1000, 900, 500); r < c {
		t.Errorf("reservation %d below the cost %d", r, c)
	}
}

// Anthropic bills cache writes at 1.25× and reads at 0.1× the input price; input tokens
// count both, as the adapters report them.
func TestCostCached(t *testing.T) {
	p := Price{InputMicroUSDPerMTok: 3_000_000, OutputMicroUSDPerMTok: 15_000_000,
		CachedInputMicroUSDPerMTok: 300_000, CacheWriteMicroUSDPerMTok: 3_750_000}
	for _, tc := range []struct {
		in, read, write, out int
		want                 int64
	}{
		{1_000_000, 0, 0, 0, 3_000_000},
		{1_000_000, 1_000_000, 0, 0, 300_000},
		{1_000_000, 0, 1_000_000, 0, 3_750_000},
		{1_110, 1_000, 100, 5, (10*3_000_000 + 1_000*300_000 + 100*3_750_000 + 5*15_000_000 + 999_999) / 1_000_000},
		{0, 10, 10, 0, (10*300_000 + 10*3_750_000 + 999_999) / 1_000_000}, // reads and writes above the input
	} {
		if got := CostCached(p, tc.in, tc.read, tc.write, tc.out); got != tc.want {
			t.Errorf("CostCached(%d, %d, %d, %d) = %d, want %d", tc.in, tc.read, tc.write, tc.out, got, tc.want)
		}
	}
	// Without a cache-write price, writes cost the input price.
	p.CacheWriteMicroUSDPerMTok = 0
	if got := CostCached(p, 1_000_000, 0, 1_000_000, 0); got != 3_000_000 {
		t.Errorf("no write price: %d", got)
	}
}
