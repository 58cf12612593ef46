// Package deploy holds what operators load next to gavel — the Grafana dashboard
// (grafana/gavel.json) and the Prometheus alert and recording rules (prometheus/) — and the
// tests that keep them valid and in step with the metrics gavel actually exports. The
// container image (docker/Dockerfile) and the Kubernetes manifests (kubernetes/) are
// checked by deploy/validate, a module of its own (see docs/deploy.md).
package deploy
