package telemetry

import (
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Names lists every metric family the registry describes, sampled or not: dashboards and
// alert rules are checked against it, and a vector nobody has touched yet still counts.
func (m *Metrics) Names() []string {
	ch := make(chan *prometheus.Desc)
	go func() {
		m.reg.Describe(ch)
		close(ch)
	}()
	seen := map[string]bool{}
	for d := range ch {
		// Desc keeps its name unexported; its String form is stable: Desc{fqName: "…", …}.
		s, ok := strings.CutPrefix(d.String(), "Desc{fqName: ")
		if !ok {
			continue
		}
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			continue
		}
		if name, err := strconv.Unquote(q); err == nil && name != "" {
			seen[name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
