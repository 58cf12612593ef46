package telemetry

import (
	"sort"

	dto "github.com/prometheus/client_model/go"
)

// ShadowStats is what gavel counted of one shadow target (provider, model, experiment)
// since it started: the admin API's view of gavel_shadow_*, read from the registry in
// process rather than scraped.
type ShadowStats struct {
	Provider   string `json:"provider"`
	Model      string `json:"model"`
	Experiment string `json:"experiment"`
	// Outcomes counts shadow requests by outcome (ok, error, budget, dropped…).
	Outcomes    map[string]int64 `json:"outcomes"`
	MeanLatency float64          `json:"mean_latency_s"`
	// Similarity is the mean similarity of the shadow's answers to the primary's (0–1)
	// over SimilarityN comparisons.
	Similarity   float64 `json:"mean_similarity"`
	SimilarityN  uint64  `json:"similarity_n"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	CostMUSD     int64   `json:"cost_musd"`
}

// Shadows reports every shadow target counted so far, sorted by experiment, provider and
// model.
func (m *Metrics) Shadows() ([]ShadowStats, error) {
	fams, err := m.reg.Gather()
	if err != nil {
		return nil, err
	}
	by := map[[3]string]*ShadowStats{}
	get := func(mt *dto.Metric) *ShadowStats {
		l := map[string]string{}
		for _, p := range mt.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		k := [3]string{l["experiment"], l["provider"], l["model"]}
		s := by[k]
		if s == nil {
			s = &ShadowStats{Experiment: k[0], Provider: k[1], Model: k[2], Outcomes: map[string]int64{}}
			by[k] = s
		}
		return s
	}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			switch f.GetName() {
			case "gavel_shadow_requests_total":
				for _, p := range mt.GetLabel() {
					if p.GetName() == "outcome" {
						get(mt).Outcomes[p.GetValue()] += int64(mt.GetCounter().GetValue())
					}
				}
			case "gavel_shadow_duration_seconds":
				if h := mt.GetHistogram(); h.GetSampleCount() > 0 {
					get(mt).MeanLatency = h.GetSampleSum() / float64(h.GetSampleCount())
				}
			case "gavel_shadow_similarity":
				if h := mt.GetHistogram(); h.GetSampleCount() > 0 {
					s := get(mt)
					s.Similarity, s.SimilarityN = h.GetSampleSum()/float64(h.GetSampleCount()), h.GetSampleCount()
				}
			case "gavel_shadow_cost_micro_usd_total":
				get(mt).CostMUSD += int64(mt.GetCounter().GetValue())
			case "gavel_shadow_tokens_total":
				for _, p := range mt.GetLabel() {
					if p.GetName() == "direction" {
						if p.GetValue() == "input" {
							get(mt).InputTokens += int64(mt.GetCounter().GetValue())
						} else {
							get(mt).OutputTokens += int64(mt.GetCounter().GetValue())
						}
					}
				}
			}
		}
	}
	out := make([]ShadowStats, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Experiment != b.Experiment {
			return a.Experiment < b.Experiment
		}
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		return a.Model < b.Model
	})
	return out, nil
}
