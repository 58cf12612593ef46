package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"os"
	"runtime/debug"

	"github.com/gavel-gw/gavel/engine/config"
	"github.com/gavel-gw/gavel/engine/decisionlog"
	"github.com/gavel-gw/gavel/engine/telemetry"
)

var _ decisionlog.Observer = (*telemetry.Metrics)(nil)

// openDecisionLog builds the decision logger and its sinks; nil when disabled.
func openDecisionLog(c config.DecisionLog, m *telemetry.Metrics, observe func(decisionlog.Entry)) (*decisionlog.Logger, error) {
	if !c.IsEnabled() {
		return nil, nil
	}
	var sinks []decisionlog.Sink
	closeAll := func() {
		for _, s := range sinks {
			if cl, ok := s.(decisionlog.Closer); ok {
				cl.Close(context.Background())
			}
		}
	}
	if c.Console {
		sinks = append(sinks, decisionlog.NewConsole(os.Stdout, m))
	}
	if c.File != "" {
		f, err := decisionlog.NewFile(decisionlog.FileConfig{Path: c.File, MaxBytes: c.FileMaxBytes, MaxBackups: c.FileMaxBackups}, m)
		if err != nil {
			closeAll()
			return nil, err
		}
		sinks = append(sinks, f)
	}
	if s := c.Service; s != nil {
		sinks = append(sinks, decisionlog.NewService(decisionlog.ServiceConfig{URL: s.URL, Token: string(s.Token),
			BatchMaxEvents: s.BatchMaxEvents, BatchMaxBytes: s.BatchMaxBytes, MaxDelay: s.MaxDelay, Buffer: s.Buffer}, m))
	}
	names := make([]string, len(sinks))
	for i, s := range sinks {
		names[i] = s.Name()
	}
	m.InitDecisionLog(names)
	labels := map[string]string{"id": instanceID(), "version": buildVersion()}
	maps.Copy(labels, c.Labels)
	return decisionlog.New(decisionlog.Config{Buffer: c.Buffer, Keep: c.Keep, Observe: observe, MaskMessages: c.MasksMessages(), Mask: c.Mask, Labels: labels,
		Sinks: sinks, Observer: m}), nil
}

// instanceID names this process in decision-log labels, as OPA's labels.id does: random
// per start, so events from replicas (and restarts) can be told apart.
func instanceID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
