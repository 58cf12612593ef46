package slogjson

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// same logs one record through slog's JSONHandler and through Handler and fails unless
// the two wrote the same bytes.
func same(t testing.TB, opts *slog.HandlerOptions, r slog.Record) {
	t.Helper()
	var want, got bytes.Buffer
	if err := slog.NewJSONHandler(&want, opts).Handle(context.Background(), r.Clone()); err != nil {
		t.Fatal(err)
	}
	if err := New(&got, opts).Handle(context.Background(), r.Clone()); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Fatalf("\n got %s\nwant %s", got.String(), want.String())
	}
}

func TestHandlerWritesWhatSlogWrites(t *testing.T) {
	now := time.Date(2026, 12, 7, 21, 35, 0, 123456789, time.UTC)
	type logVal struct{ slog.LogValuer }
	tests := []struct {
		name  string
		time  time.Time
		level slog.Level
		msg   string
		attrs []slog.Attr
		opts  *slog.HandlerOptions
	}{
		{name: "request line", time: now, msg: "request", attrs: []slog.Attr{
			slog.String("decision_id", "0123456789abcdef"), slog.Int("status", 200), slog.String("route", "openai/gpt-4o-mini"),
			slog.Int64("duration_ms", 3), slog.Int64("upstream_ms", 1), slog.String("endpoint", "chat"),
			slog.String("model", "fast"), slog.Bool("stream", false), slog.String("key_id", ""), slog.String("team", "ml"),
			slog.Int("input_tokens", 41), slog.Int("output_tokens", 12), slog.Int64("cost_micro_usd", -7),
			slog.Uint64("big", math.MaxUint64), slog.Duration("d", 1500*time.Millisecond)}},
		{name: "no attrs", time: now, level: slog.LevelWarn, msg: "plain"},
		{name: "zero time", msg: "no time", attrs: []slog.Attr{slog.Bool("ok", true)}},
		{name: "local time with monotonic reading", time: time.Now(), msg: "now"},
		{name: "whole second", time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)), msg: "zone"},
		{name: "odd level", time: now, level: slog.LevelInfo + 2, msg: "x"},
		{name: "escapes", time: now, msg: "a\"b\\c\n\r\t\x00\x1f\x7f<>&é\u2028\u2029\xff\xfe💡", attrs: []slog.Attr{
			slog.String("k\"ey\n", "v\x01\xc3"), slog.String("html", "<script>&amp;</script>")}},
		{name: "empty string values", time: now, msg: "", attrs: []slog.Attr{slog.String("a", "")}},
		// Written by slog's handler behind Handler:
		{name: "float", time: now, msg: "m", attrs: []slog.Attr{slog.String("a", "b"), slog.Float64("f", 1e21)}},
		{name: "time attr", time: now, msg: "m", attrs: []slog.Attr{slog.Time("t", now)}},
		{name: "any", time: now, msg: "m", attrs: []slog.Attr{slog.Any("err", errors.New("boom")), slog.Any("m", map[string]int{"a": 1})}},
		{name: "group", time: now, msg: "m", attrs: []slog.Attr{slog.Group("g", slog.Int("a", 1))}},
		{name: "empty attr elided", time: now, msg: "m", attrs: []slog.Attr{{}, slog.Int("a", 1)}},
		{name: "empty key", time: now, msg: "m", attrs: []slog.Attr{slog.Int("", 1)}},
		{name: "log valuer", time: now, msg: "m", attrs: []slog.Attr{slog.Any("v", logVal{})}},
		{name: "year out of range", time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), msg: "m"},
		{name: "replace attr", time: now, msg: "m", attrs: []slog.Attr{slog.Int("a", 1)}, opts: &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { a.Key = strings.ToUpper(a.Key); return a }}},
		{name: "add source", time: now, msg: "m", opts: &slog.HandlerOptions{AddSource: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := slog.NewRecord(tc.time, tc.level, tc.msg, 0)
			r.AddAttrs(tc.attrs...)
			same(t, tc.opts, r)
		})
	}
}

func TestHandlerLevelsAndDerivedHandlers(t *testing.T) {
	var buf bytes.Buffer
	h := New(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelError) {
		t.Fatal("Enabled does not follow the configured level")
	}
	log := slog.New(h)
	log.Info("dropped")
	log.With("component", "canary").WithGroup("g").Warn("kept", "a", 1)
	log.Warn("own", "b", 2)
	got := buf.String()
	if strings.Contains(got, "dropped") {
		t.Fatalf("a record below the level was written: %s", got)
	}
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"msg":"kept","component":"canary","g":{"a":1}}`) ||
		!strings.HasSuffix(lines[1], `"msg":"own","b":2}`) {
		t.Fatalf("unexpected output:\n%s", got)
	}
}

// TestHandlerLinesAreWholeUnderConcurrency: records from many goroutines, through Handler
// and through a handler derived from it, are written one whole line per Write.
func TestHandlerLinesAreWholeUnderConcurrency(t *testing.T) {
	w := &lineCheck{}
	h := New(w, nil)
	log := slog.New(h)
	derived := log.With("d", true)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				log.Info("request", "g", g, "i", i, "pad", strings.Repeat("x", 300))
				derived.Info("derived", "g", g)
			}
		}()
	}
	wg.Wait()
	if w.bad != "" || w.n != 8*400 {
		t.Fatalf("%d lines, bad write %q", w.n, w.bad)
	}
}

type lineCheck struct {
	active sync.Mutex // held during a Write: a second concurrent Write fails TryLock
	n      int
	bad    string
}

func (l *lineCheck) Write(p []byte) (int, error) {
	if !l.active.TryLock() {
		l.bad = "concurrent write"
		return len(p), nil
	}
	defer l.active.Unlock()
	if bytes.Count(p, []byte{'\n'}) != 1 || p[len(p)-1] != '\n' {
		l.bad = string(p)
	}
	l.n++
	return len(p), nil
}

func FuzzHandlerWritesWhatSlogWrites(f *testing.F) {
	f.Add("request", "decision_id", "0123", int64(200), true, int64(1765143300123456789))
	f.Add("a\"b\n\xff\u2028", "k\x00", "<&>", int64(-1), false, int64(0))
	f.Fuzz(func(t *testing.T, msg, key, val string, n int64, flag bool, ns int64) {
		r := slog.NewRecord(time.Unix(0, ns).UTC(), slog.LevelInfo, msg, 0)
		r.AddAttrs(slog.String(key, val), slog.Int64("n", n), slog.Bool("flag", flag), slog.String("v", val+key))
		same(t, nil, r)
	})
}

func BenchmarkRequestLine(b *testing.B) {
	attrs := []slog.Attr{
		slog.String("decision_id", "0123456789abcdef0123456789abcdef"), slog.Int("status", 200), slog.String("route", "openai/gpt-4o-mini"),
		slog.Int64("duration_ms", 3), slog.Int64("upstream_ms", 1), slog.String("endpoint", "chat"),
		slog.String("model", "fast"), slog.Bool("stream", false), slog.String("key_id", "k_1"), slog.String("team", "ml"),
		slog.String("bundle_revision", "sha256:0123456789abcdef"), slog.Int("input_tokens", 41), slog.Int("output_tokens", 12),
		slog.Int64("cost_micro_usd", 7)}
	for _, h := range []struct {
		name string
		h    slog.Handler
	}{{"slog", slog.NewJSONHandler(discard{}, nil)}, {"slogjson", New(discard{}, nil)}} {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
				r.AddAttrs(attrs...)
				if err := h.h.Handle(context.Background(), r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
