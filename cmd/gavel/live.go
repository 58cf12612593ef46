package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Live decisions: `gavel policy diff --live URL` reads a running gateway's recent
// decisions through GET /v1/gavel/decisions (viewer or admin key) instead of a log file.
const (
	// defaultLiveLimit is how many recent decisions --live reads unless --limit says.
	defaultLiveLimit = 1000
	// livePage is the largest page the decisions API serves.
	livePage = 1000
	// liveTimeout bounds each page's request.
	liveTimeout = 30 * time.Second
	// maxLivePageBytes bounds one page's body: a page of 1000 events with their inputs.
	maxLivePageBytes = 256 << 20
)

// liveSource is where --live reads decisions from.
type liveSource struct {
	base  string // the gateway's base URL (http://gavel:8080)
	key   string // sent as a bearer token, never shown
	since time.Time
	limit int
	http  *http.Client
}

// parseSince reads --since: an RFC 3339 time, or a duration back from now (24h).
func parseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time (2026-12-07T00:00:00Z) or a positive duration back from now (24h)", v)
	}
	return now.Add(-d), nil
}

// liveList is a page of GET /v1/gavel/decisions.
type liveList struct {
	Data       []json.RawMessage `json:"data"`
	NextBefore string            `json:"next_before"`
}

// fetch reads up to limit recent decisions, page by page along the next_before cursor,
// and returns them as decision-log lines, oldest first (as a log file holds them).
func (s liveSource) fetch(ctx context.Context) ([]byte, int, error) {
	u, err := url.Parse(strings.TrimRight(s.base, "/") + "/v1/gavel/decisions")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, 0, fmt.Errorf("--live %q: want the gateway's http(s) base URL, such as http://gavel:8080", s.base)
	}
	var events []json.RawMessage
	before := ""
	for len(events) < s.limit {
		q := url.Values{}
		q.Set("limit", strconv.Itoa(min(livePage, s.limit-len(events))))
		if !s.since.IsZero() {
			q.Set("since", s.since.UTC().Format(time.RFC3339Nano))
		}
		if before != "" {
			q.Set("before", before)
		}
		u.RawQuery = q.Encode()
		page, err := s.page(ctx, u.String())
		if err != nil {
			return nil, 0, err
		}
		events = append(events, page.Data...)
		if page.NextBefore == "" || len(page.Data) == 0 {
			break
		}
		before = page.NextBefore
	}
	if len(events) > s.limit {
		events = events[:s.limit]
	}
	var buf bytes.Buffer
	for i := len(events) - 1; i >= 0; i-- { // the API lists newest first
		buf.Write(events[i])
		buf.WriteByte('\n')
	}
	return buf.Bytes(), len(events), nil
}

func (s liveSource) page(ctx context.Context, target string) (*liveList, error) {
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	if s.key != "" {
		req.Header.Set("Authorization", "Bearer "+s.key)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("--live: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxLivePageBytes+1))
	if err != nil {
		return nil, fmt.Errorf("--live: reading %s: %w", s.shown(), err)
	}
	if len(body) > maxLivePageBytes {
		return nil, fmt.Errorf("--live: a page from %s is over %d bytes; ask for fewer with --limit", s.shown(), maxLivePageBytes)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Message, Code string } `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
			return nil, fmt.Errorf("--live: %s answered %d %s: %s", s.shown(), resp.StatusCode, e.Error.Code, e.Error.Message)
		}
		return nil, fmt.Errorf("--live: %s answered %d (is it a gavel with the decisions API?)", s.shown(), resp.StatusCode)
	}
	var page liveList
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("--live: %s: not a decisions list: %w", s.shown(), err)
	}
	return &page, nil
}

// shown is the gateway as errors name it: scheme and host, no credentials.
func (s liveSource) shown() string {
	u, err := url.Parse(s.base)
	if err != nil {
		return "the gateway"
	}
	return u.Scheme + "://" + u.Host
}
