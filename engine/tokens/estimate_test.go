package tokens

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEstimateSmall(t *testing.T) {
	for _, tc := range []struct {
		text     string
		min, max int
	}{
		{"", 0, 0},
		{"a", 1, 1},
		{"hi", 1, 1},
		{"Hello, world!", 3, 5},              // o200k: 4
		{"The quick brown fox jumps.", 5, 8}, // o200k: 6
		{"12345678", 2, 4},                   // 123|456|78
		{"東京", 1, 3},
		{"🙂", 1, 3},
		{"\xff\xfe", 1, 3}, // invalid UTF-8 still counts
		{"    ", 1, 2},
	} {
		if got := Estimate(tc.text); got < tc.min || got > tc.max {
			t.Errorf("Estimate(%q) = %d, want %d..%d", tc.text, got, tc.min, tc.max)
		}
	}
}

// TestEstimateMatchesFeatures checks the fast table-driven loop against the readable
// definition: the features' counts weighed by the coefficients, scaled by upwardBias.
func TestEstimateMatchesFeatures(t *testing.T) {
	texts := []string{"x", "Hello, World", "camelCaseIdentifier := 42;\n\tif err != nil {", "naïve café — “quoted”", "Привет, мир", "東京都 ソウル 서울", "🙂🙃 ok", "\x80\xff\xc0 bad", strings.Repeat("abc 123 ", 97)}
	for _, s := range loadCorpus(t) {
		texts = append(texts, s.text)
	}
	for _, text := range texts {
		for _, tc := range []struct {
			model string
			coef  []float64
		}{{"gpt-4o", o200kCoefficients[:]}, {"gpt-4", cl100kCoefficients[:]}} {
			want := dot(featureCounts(text), tc.coef) * upwardBias
			got := EstimateModel(tc.model, text)
			// Weights are rounded to 1/weightScale token each, and the sum rounded up.
			slack := float64(len(text))/(2*weightScale) + 1
			if math.Abs(float64(got)-want) > slack {
				t.Errorf("%s: EstimateModel(%.40q) = %d, features say %.2f", tc.model, text, got, want)
			}
		}
	}
}

// TestWeightFloors: no byte is free (pairFloor), so the estimate grows with the text and
// no input, however strange, drives it to next to nothing.
func TestWeightFloors(t *testing.T) {
	if n := len(o200kCoefficients); n != len(features) {
		t.Fatalf("%d features, %d coefficients: run TestCalibrate", len(features), n)
	}
	if n := len(cl100kCoefficients); n != len(features) {
		t.Fatalf("%d features, %d coefficients: run TestCalibrate", len(features), n)
	}
	for name, w := range map[string]*weights{"o200k": o200kWeights, "cl100k": cl100kWeights} {
		for p := range numClasses {
			for c := range numClasses {
				if v, floor := w[p<<5|c], pairFloor(p, c)*weightScale; float64(v) < floor-1 {
					t.Errorf("%s: weight of (%s, %s) = %d, floor %.0f", name, features[p].name, features[c].name, v, floor)
				}
			}
		}
	}
	for _, r := range []rune{'a', 'A', '7', ' ', '\n', '\t', '.', 'é', 'ł', 'λ', 'ж', 'א', 'ع', 'क', 'ạ', '—', 'の', '東', '한', '，', '🙂', utf8.RuneError} {
		const n = 4096
		text := strings.Repeat(string(r), n)
		least := n / 64
		if r >= utf8.RuneSelf {
			least = n / 10
		}
		for _, model := range []string{"gpt-4o", "gpt-4"} {
			if got := EstimateModel(model, text); got < least {
				t.Errorf("%s: %d × %q estimated at %d tokens, want at least %d", model, n, r, got, least)
			}
		}
	}
}

func TestEstimateAllocatesNothing(t *testing.T) {
	text := strings.Repeat("Some prose, some code: x := f(y) // 東京\n", 200)
	if n := testing.AllocsPerRun(100, func() { Estimate(text) }); n != 0 {
		t.Errorf("Estimate allocates %.0f times", n)
	}
}

func TestEstimateMessages(t *testing.T) {
	for _, tc := range []struct {
		msgs []string
		want int
	}{
		{nil, 3},
		{[]string{""}, 3 + 4},
		{[]string{"hi"}, 3 + 4 + Estimate("hi")},
		{[]string{"You are helpful.", "Hello!"}, 3 + 8 + Estimate("You are helpful.") + Estimate("Hello!")},
	} {
		if got := EstimateMessages(tc.msgs); got != tc.want {
			t.Errorf("EstimateMessages(%q) = %d, want %d", tc.msgs, got, tc.want)
		}
	}
}

func TestEstimateModel(t *testing.T) {
	ru := "Городской совет во вторник вечером утвердил план расширения сети велодорожек."
	o, cl := EstimateModel("gpt-4o-mini", ru), EstimateModel("gpt-3.5-turbo", ru)
	if o != Estimate(ru) {
		t.Errorf("EstimateModel(gpt-4o-mini) = %d, Estimate = %d", o, Estimate(ru))
	}
	if cl < o*3/2 {
		t.Errorf("Russian: cl100k estimate %d, o200k %d; cl100k needs far more tokens", cl, o)
	}
}

func TestEncodingForModel(t *testing.T) {
	for _, tc := range []struct {
		model string
		want  Encoding
	}{
		{"gpt-4o", O200kBase},
		{"gpt-4o-mini-2024-07-18", O200kBase},
		{"openai/gpt-4o", O200kBase},
		{"chatgpt-4o-latest", O200kBase},
		{"gpt-4.1-nano", O200kBase},
		{"gpt-4.5-preview", O200kBase},
		{"gpt-5", O200kBase},
		{"o1-mini", O200kBase},
		{"o3", O200kBase},
		{"o4-mini", O200kBase},
		{"ft:gpt-4o-2024-08-06:acme::abc", O200kBase},
		{"gpt-4", Cl100kBase},
		{"GPT-4-0613", Cl100kBase},
		{"gpt-4-turbo", Cl100kBase},
		{"gpt-4-32k", Cl100kBase},
		{"gpt-3.5-turbo", Cl100kBase},
		{"azure/gpt-35-turbo", Cl100kBase},
		{"ft:gpt-3.5-turbo-0125:acme::xyz", Cl100kBase},
		{"text-embedding-3-small", Cl100kBase},
		{"text-embedding-ada-002", Cl100kBase},
		{"claude-sonnet-4-5", O200kBase},
		{"mock/mock-large", O200kBase},
		{"", O200kBase},
	} {
		if got := EncodingForModel(tc.model); got != tc.want {
			t.Errorf("EncodingForModel(%q) = %s, want %s", tc.model, got, tc.want)
		}
	}
}

// FuzzEstimate: any input, valid UTF-8 or not, gets an estimate that is positive for a
// non-empty text, at most a few tokens per byte, and no smaller than that of its prefix.
func FuzzEstimate(f *testing.F) {
	for _, s := range []string{"", "hello world", "東京 🙂", "\xff\x80", "func f() {\n\treturn 1\n}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		n := Estimate(text)
		switch {
		case text == "" && n != 0, text != "" && n < 1:
			t.Fatalf("Estimate(%q) = %d", text, n)
		case n > 4*len(text)+1:
			t.Fatalf("Estimate(%q) = %d for %d bytes", text, n, len(text))
		case len(text) > 0 && Estimate(text[:len(text)/2]) > n:
			t.Fatalf("Estimate(%q) = %d, below its first half's %d", text, n, Estimate(text[:len(text)/2]))
		}
	})
}
