package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultLogInterval is how often a LogLimiter lets a line for one cause through.
const DefaultLogInterval = 10 * time.Second

// maxLogCauses bounds the causes a LogLimiter tells apart; later ones share otherCause.
const maxLogCauses = 256

const otherCause = "other"

// LogLimiter keeps a failure that repeats on every request from flooding the log: per
// cause, the first occurrence is logged at once and the rest of the interval is counted;
// when the interval ends one line carries the last occurrence's attributes and the count
// ("suppressed": occurrences not logged one by one, that one included). A sustained
// failure so logs one line per cause per interval, and a burst that stops is still
// reported in full. Safe for concurrent use; nil-safe (a nil limiter discards).
type LogLimiter struct {
	log      *slog.Logger
	level    slog.Level
	interval time.Duration
	mu       sync.Mutex
	causes   map[string]*logCause
	closed   bool
}

type logCause struct {
	quietUntil time.Time   // a new occurrence before this is counted, not logged
	suppressed int         // occurrences counted since the last line
	msg        string      // the last counted occurrence
	args       []any       //
	timer      *time.Timer // reports the count at quietUntil; nil when nothing is counted
}

// NewLogLimiter limits lines written to log at level; interval 0 is DefaultLogInterval.
func NewLogLimiter(log *slog.Logger, level slog.Level, interval time.Duration) *LogLimiter {
	if interval <= 0 {
		interval = DefaultLogInterval
	}
	return &LogLimiter{log: log, level: level, interval: interval, causes: map[string]*logCause{}}
}

// Log logs msg and args with the attribute "cause", or counts them if a line for cause
// went out less than an interval ago.
func (l *LogLimiter) Log(cause, msg string, args ...any) {
	if l == nil {
		return
	}
	now := time.Now()
	l.mu.Lock()
	c := l.causes[cause]
	if c == nil {
		if len(l.causes) >= maxLogCauses {
			cause = otherCause
			c = l.causes[cause]
		}
		if c == nil {
			c = &logCause{}
			l.causes[cause] = c
		}
	}
	if l.closed || (c.timer == nil && !now.Before(c.quietUntil)) {
		c.quietUntil = now.Add(l.interval)
		l.mu.Unlock()
		l.log.Log(context.Background(), l.level, msg, append(args, "cause", cause)...)
		return
	}
	c.suppressed++
	c.msg, c.args = msg, args
	if c.timer == nil {
		c.timer = time.AfterFunc(c.quietUntil.Sub(now), func() { l.report(cause, true) })
	}
	l.mu.Unlock()
}

// report writes the count of cause's interval; quiet starts another interval in which
// new occurrences are counted (the failure is likely still going on).
func (l *LogLimiter) report(cause string, quiet bool) {
	l.mu.Lock()
	c := l.causes[cause]
	n, msg, args := c.suppressed, c.msg, c.args
	c.suppressed, c.msg, c.args, c.timer = 0, "", nil, nil
	if quiet {
		c.quietUntil = time.Now().Add(l.interval)
	}
	l.mu.Unlock()
	if n > 0 {
		l.log.Log(context.Background(), l.level, msg, append(args, "cause", cause, "suppressed", n, "interval", l.interval.String())...)
	}
}

// Close reports every pending count now (at shutdown, so none is lost); later
// occurrences are logged one by one.
func (l *LogLimiter) Close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.closed = true
	var pending []string
	for cause, c := range l.causes {
		if c.timer != nil && c.timer.Stop() {
			pending = append(pending, cause)
		}
	}
	l.mu.Unlock()
	for _, cause := range pending {
		l.report(cause, false)
	}
}
