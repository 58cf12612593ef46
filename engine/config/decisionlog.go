package config

import (
	"fmt"
	"net/url"
	"time"

	"github.com/gavel-gw/gavel/adapters/registry"
	"github.com/gavel-gw/gavel/engine/decisionlog"
	"github.com/gavel-gw/gavel/internal/scrub"
)

// DecisionLog configures decision-log events: where they go besides the in-memory ring
// behind GET /v1/gavel/decisions/{id}, and what is erased from them.
type DecisionLog struct {
	// Enabled records decisions at all; default true.
	Enabled *bool `yaml:"enabled"`
	// Console writes every event to stdout, one JSON line each.
	Console bool `yaml:"console"`
	// File appends events as JSON lines (directories are created).
	File string `yaml:"file"`
	// FileMaxBytes rotates the file before it grows past this size; 0 never rotates.
	FileMaxBytes int64 `yaml:"file_max_bytes"`
	// FileMaxBackups is how many rotated files are kept; default decisionlog.DefaultFileMaxBackups.
	FileMaxBackups int `yaml:"file_max_backups"`
	// Service uploads batches to a decision-log service (OPA's protocol: POST <url>/logs).
	Service *DecisionLogService `yaml:"service"`
	// MaskMessages replaces message texts by their size; default true.
	MaskMessages *bool `yaml:"mask_messages"`
	// Mask lists JSON pointers erased from every event, as OPA's mask rules do
	// (/input/caller/user, /input/request/messages).
	Mask []string `yaml:"mask"`
	// Buffer is how many events may wait to be encoded; more are dropped, never waited for.
	// Default decisionlog.DefaultBuffer.
	Buffer int `yaml:"buffer"`
	// Keep is how many recent events stay in memory for GET /v1/gavel/decisions (lookup,
	// search, the console, policy diffs); default decisionlog.DefaultKeep.
	Keep int `yaml:"keep"`
	// Labels are added to every event's labels, beside id and version.
	Labels map[string]string `yaml:"labels"`
	// FlushTimeout bounds how long shutdown waits for sinks to deliver what they hold;
	// default decisionlog.DefaultFlushTimeout.
	FlushTimeout time.Duration `yaml:"flush_timeout"`
}

// MaxDecisionLogKeep bounds decision_log.keep: a kept event is a few KB, so a million is
// already gigabytes of memory.
const MaxDecisionLogKeep = 1_000_000

// DecisionLogService is an HTTP decision-log service.
type DecisionLogService struct {
	URL            string          `yaml:"url"`
	Token          registry.Secret `yaml:"token"`            // optional bearer token; prints as "[redacted]"
	BatchMaxEvents int             `yaml:"batch_max_events"` // default decisionlog.DefaultServiceBatchMaxEvents
	BatchMaxBytes  int             `yaml:"batch_max_bytes"`  // uncompressed; default decisionlog.DefaultServiceBatchMaxBytes
	MaxDelay       time.Duration   `yaml:"max_delay"`        // default decisionlog.DefaultServiceMaxDelay
	Buffer         int             `yaml:"buffer"`           // events queued for upload; default decisionlog.DefaultServiceBuffer
}

// IsEnabled reports whether decisions are recorded.
func (d DecisionLog) IsEnabled() bool { return d.Enabled == nil || *d.Enabled }

// MasksMessages reports whether message texts are masked.
func (d DecisionLog) MasksMessages() bool { return d.MaskMessages == nil || *d.MaskMessages }

func (d *DecisionLog) validate() []error {
	var errs []error
	if d.Keep < 0 || d.Keep > MaxDecisionLogKeep {
		errs = append(errs, fmt.Errorf("decision_log.keep must be between 0 (the default) and %d, got %d", MaxDecisionLogKeep, d.Keep))
	}
	if d.Buffer < 0 {
		errs = append(errs, fmt.Errorf("decision_log.buffer must not be negative, got %d", d.Buffer))
	}
	if d.FlushTimeout < 0 {
		errs = append(errs, fmt.Errorf("decision_log.flush_timeout must not be negative, got %s", d.FlushTimeout))
	}
	if d.FileMaxBytes < 0 {
		errs = append(errs, fmt.Errorf("decision_log.file_max_bytes must not be negative, got %d", d.FileMaxBytes))
	}
	if d.FileMaxBackups < 0 {
		errs = append(errs, fmt.Errorf("decision_log.file_max_backups must not be negative, got %d", d.FileMaxBackups))
	}
	if err := decisionlog.ValidateMask(d.Mask); err != nil {
		errs = append(errs, fmt.Errorf("decision_log.mask: %w", err))
	}
	for k := range d.Labels {
		if k == "" || k == "id" || k == "version" {
			errs = append(errs, fmt.Errorf("decision_log.labels: %q is not allowed (id and version are set by gavel)", k))
		}
	}
	if s := d.Service; s != nil {
		if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("decision_log.service.url must be an http(s) URL, got %q", scrub.URL(s.URL)))
		}
		for name, v := range map[string]int64{"batch_max_events": int64(s.BatchMaxEvents), "batch_max_bytes": int64(s.BatchMaxBytes),
			"max_delay": int64(s.MaxDelay), "buffer": int64(s.Buffer)} {
			if v < 0 {
				errs = append(errs, fmt.Errorf("decision_log.service.%s must not be negative", name))
			}
		}
	}
	return errs
}
