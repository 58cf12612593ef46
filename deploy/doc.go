// Package deploy holds what operators load next to gavel — the Grafana dashboard
// (grafana/gavel.json) and the Prometheus alert and recording rules (prometheus/) — and the
// tests that keep them valid and in step with the metrics gavel actually exports.
package deploy
