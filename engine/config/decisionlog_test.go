package config

import (
	"strings"
	"testing"
	"time"
)

func TestDecisionLogConfig(t *testing.T) {
	c, err := Parse([]byte(`
decision_log:
  console: true
  file: /var/log/gavel/decisions.jsonl
  file_max_bytes: 1048576
  mask_messages: false
  mask: [/input/caller/user, /input/request/messages]
  labels: {region: eu}
  service:
    url: https://logs.example.com/v1
    token: ${LOG_TOKEN}
    max_delay: 2s
`), env(map[string]string{"LOG_TOKEN": "t0k"}))
	if err != nil {
		t.Fatal(err)
	}
	d := c.DecisionLog
	if !d.IsEnabled() || !d.Console || d.MasksMessages() || len(d.Mask) != 2 || d.Labels["region"] != "eu" || d.FileMaxBytes != 1<<20 {
		t.Errorf("decision_log = %+v", d)
	}
	// Unset sizes stay zero: the decision log applies its own defaults.
	if s := d.Service; s == nil || s.Token != "t0k" || s.MaxDelay != 2*time.Second || s.BatchMaxEvents != 0 || s.BatchMaxBytes != 0 || s.Buffer != 0 {
		t.Errorf("service = %+v", d.Service)
	}
	def := Default().DecisionLog
	if !def.IsEnabled() || !def.MasksMessages() || def.Buffer != 0 || def.FlushTimeout != 0 || def.Service != nil {
		t.Errorf("defaults = %+v", def)
	}
}

func TestDecisionLogConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown field", "decision_log: {consol: true}", []string{"field consol not found"}},
		{"every bad field named", `
decision_log:
  buffer: -1
  file_max_bytes: -5
  mask: [/input/ok, /bundles/gavel, caller]
  labels: {id: x}
  service: {url: "ftp://x", batch_max_events: -1, max_delay: -1s}
`, []string{"decision_log.buffer", "decision_log.file_max_bytes", `"/bundles/gavel"`, `"caller"`, `decision_log.labels: "id"`,
			"decision_log.service.url", "decision_log.service.batch_max_events", "decision_log.service.max_delay"}},
		{"service needs a url", "decision_log: {service: {token: x}}", []string{"decision_log.service.url"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), env(nil))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			if strings.Contains(err.Error(), "/input/ok") {
				t.Errorf("a valid mask rule was reported: %v", err)
			}
		})
	}
}
