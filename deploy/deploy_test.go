package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/gavel-gw/gavel/engine/telemetry"
)

const (
	dashboard = "grafana/gavel.json"
	rulesGlob = "prometheus/*.yaml"
	testsGlob = "prometheus/tests/*.yaml"
)

// promtool finds promtool, which CI gets from the Debian prometheus package.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found: CI must install the Debian prometheus package")
		}
		t.Skip("promtool not installed (apt-get install prometheus); under CI=true this fails instead")
	}
	return p
}

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s (%v)", pattern, err)
	}
	return files
}

func TestPromtoolChecksRules(t *testing.T) {
	bin := promtool(t)
	tests := []struct {
		name string
		args []string
	}{
		{"check rules", append([]string{"check", "rules"}, glob(t, rulesGlob)...)},
		{"unit tests of the alerts", append([]string{"test", "rules"}, glob(t, testsGlob)...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(bin, tc.args...).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(tc.args, " "), err, out)
			}
		})
	}
}

// ruleFile is the part of a Prometheus rule file this test reads.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// expressions are the PromQL expressions of the rule files (by rule name) and the names
// their recording rules define.
func ruleExpressions(t *testing.T) (exprs map[string]string, records map[string]bool) {
	t.Helper()
	exprs, records = map[string]string{}, map[string]bool{}
	for _, f := range glob(t, rulesGlob) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rf ruleFile
		if err := yaml.Unmarshal(raw, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				name := r.Alert
				if r.Record != "" {
					name = r.Record
					records[r.Record] = true
				}
				exprs[f+": "+name] = r.Expr
			}
		}
	}
	return exprs, records
}

// dashboardExpressions are the PromQL expressions of the dashboard's panels and template
// variables, by panel title; it also checks the JSON is an importable dashboard.
func dashboardExpressions(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Inputs []struct {
			Name     string `json:"name"`
			PluginID string `json:"pluginId"`
		} `json:"__inputs"`
		UID    string            `json:"uid"`
		Title  string            `json:"title"`
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s is not JSON: %v", dashboard, err)
	}
	if d.UID == "" || d.Title == "" || len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].PluginID != "prometheus" {
		t.Fatalf("dashboard needs a uid, a title and the DS_PROMETHEUS input: %+v", d.Inputs)
	}
	exprs := map[string]string{}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		var panel struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		}
		if err := json.Unmarshal(p, &panel); err != nil {
			t.Fatal(err)
		}
		if ids[panel.ID] {
			t.Errorf("panel id %d is used twice", panel.ID)
		}
		ids[panel.ID] = true
		if panel.Type == "row" {
			continue
		}
		if panel.Datasource.UID != "${DS_PROMETHEUS}" || len(panel.Targets) == 0 {
			t.Errorf("panel %q: datasource %q, %d queries", panel.Title, panel.Datasource.UID, len(panel.Targets))
		}
		for i, tg := range panel.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: query %d is empty", panel.Title, i)
			}
			exprs[panel.Title+" #"+string(rune('A'+i))] = tg.Expr
		}
	}
	return exprs
}

var (
	quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	// Metric names gavel exports (its own and the Go/process collectors'), and recording
	// rule names in gavel's namespace.
	metricName = regexp.MustCompile(`\b(?:gavel|go|process)_[A-Za-z0-9_]+\b`)
	recordName = regexp.MustCompile(`\bgavel:[A-Za-z0-9_:]+`)
)

// metricsIn scans an expression for metric and recording-rule names, label values aside.
func metricsIn(expr string) (metrics, records []string) {
	expr = quoted.ReplaceAllString(expr, `""`)
	return metricName.FindAllString(expr, -1), recordName.FindAllString(expr, -1)
}

func TestMetricsIn(t *testing.T) {
	m, r := metricsIn(`sum(rate(gavel_requests_total{status=~"5..",route="gavel_fake"}[5m])) / gavel:request_errors:ratio_rate5m + go_goroutines`)
	if !slices.Equal(m, []string{"gavel_requests_total", "go_goroutines"}) || !slices.Equal(r, []string{"gavel:request_errors:ratio_rate5m"}) {
		t.Errorf("metrics %v records %v", m, r)
	}
}

func TestMetricNamesExist(t *testing.T) {
	known := map[string]bool{}
	for _, n := range telemetry.NewMetrics().Names() {
		known[n] = true
	}
	exists := func(name string) bool {
		if known[name] {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} { // histogram series
			if base, ok := strings.CutSuffix(name, suffix); ok && known[base] {
				return true
			}
		}
		return false
	}

	ruleExprs, records := ruleExpressions(t)
	all := dashboardExpressions(t)
	for k, v := range ruleExprs {
		all[k] = v
	}
	used := 0
	for where, expr := range all {
		metrics, recs := metricsIn(expr)
		if len(metrics)+len(recs) == 0 {
			t.Errorf("%s: no gavel metric in %q", where, expr)
		}
		for _, m := range metrics {
			used++
			if !exists(m) {
				t.Errorf("%s: %s is not a metric gavel exports", where, m)
			}
		}
		for _, r := range recs {
			if !records[r] {
				t.Errorf("%s: %s is not defined by a recording rule", where, r)
			}
		}
	}
	if used < 50 {
		t.Errorf("only %d metric references found: is the scan broken?", used)
	}
}
