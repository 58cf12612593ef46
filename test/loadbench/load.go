package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// chatBody is a realistic small chat request: a system prompt and one user question,
// about 300 bytes, like the bulk of production chat traffic.
func chatBody(model string, stream bool) []byte {
	b := `{"model":"` + model + `","messages":[` +
		`{"role":"system","content":"You are a concise assistant for an online bookshop. Answer in two sentences at most."},` +
		`{"role":"user","content":"Can you recommend a practical introduction to distributed systems, and is there an ebook edition?"}],` +
		`"temperature":0.2,"max_tokens":128`
	if stream {
		b += `,"stream":true,"stream_options":{"include_usage":true}`
	}
	return []byte(b + "}")
}

// loadSpec says what one run sends where.
type loadSpec struct {
	url      string // full chat completions URL, loopback only
	body     []byte
	stream   bool
	conns    int
	warmup   time.Duration
	duration time.Duration
	// onWindow, if set, is called right when the measured window opens and right when it
	// closes, so the caller can sample a process's CPU time over exactly that window.
	onWindow func(open bool)
}

// runStats is what a run measured. Only requests started inside the measured window count.
type runStats struct {
	window   time.Duration
	ok, errs int
	firstErr string
	lat      []time.Duration // sorted, successful requests, to last byte
	ttfb     []time.Duration // sorted, streams only: to the first body byte
}

// workerStats is one worker's share; each worker owns its slices, so recording needs no lock.
type workerStats struct {
	ok, errs int
	firstErr string
	lat      []time.Duration
	ttfb     []time.Duration
}

// runLoad drives spec.conns concurrent keep-alive connections, each sending one request
// after another, for warmup plus duration. It returns early, with what it has, if ctx ends.
func runLoad(ctx context.Context, spec loadSpec) (*runStats, error) {
	if err := checkLoopback(spec.url); err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               nil, // never route benchmark traffic through an env proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        spec.conns,
		MaxIdleConnsPerHost: spec.conns,
		MaxConnsPerHost:     spec.conns,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	open := time.Now().Add(spec.warmup)
	end := open.Add(spec.duration)
	// Requests still in flight at the end get a grace period, then are cut, so a stuck
	// target cannot keep the benchmark running.
	ctx, cancel := context.WithDeadline(ctx, end.Add(10*time.Second))
	defer cancel()

	workers := make([]workerStats, spec.conns)
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		w.lat = make([]time.Duration, 0, 1<<14)
		wg.Go(func() { worker(ctx, client, spec, open, end, w) })
	}
	sampleWindow(ctx, spec.onWindow, open, end)
	wg.Wait()
	return merge(workers, spec.duration), nil
}

// sampleWindow calls onWindow(true) when the window opens and onWindow(false) when it
// closes (or when ctx ends first).
func sampleWindow(ctx context.Context, onWindow func(bool), open, end time.Time) {
	if onWindow == nil {
		return
	}
	sleepUntil(ctx, open)
	onWindow(true)
	sleepUntil(ctx, end)
	onWindow(false)
}

func sleepUntil(ctx context.Context, t time.Time) {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// worker sends requests back to back until end, recording those started after open.
func worker(ctx context.Context, client *http.Client, spec loadSpec, open, end time.Time, w *workerStats) {
	buf := make([]byte, 32<<10)
	for {
		start := time.Now()
		if !start.Before(end) || ctx.Err() != nil {
			return
		}
		ttfb, err := doRequest(ctx, client, spec, buf, start)
		if start.Before(open) {
			continue // warmup: connections are being opened, caches filled
		}
		if err != nil {
			if ctx.Err() != nil {
				return // interrupted, not the target's fault
			}
			w.errs++
			if w.firstErr == "" {
				w.firstErr = err.Error()
			}
			continue
		}
		w.ok++
		w.lat = append(w.lat, time.Since(start))
		if spec.stream {
			w.ttfb = append(w.ttfb, ttfb)
		}
	}
}

// doRequest sends one chat request and reads the response to the end. For a stream it
// returns the time to the first body byte and fails unless the stream ended with [DONE].
func doRequest(ctx context.Context, client *http.Client, spec loadSpec, buf []byte, start time.Time) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, spec.url, bytes.NewReader(spec.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer loadbench")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		n, _ := io.ReadFull(resp.Body, buf[:min(len(buf), 300)])
		return 0, fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(buf[:n]))
	}
	if !spec.stream {
		_, err = io.CopyBuffer(io.Discard, resp.Body, buf)
		return 0, err
	}
	return readStream(resp.Body, buf, start)
}

var doneTail = []byte("data: [DONE]\n\n")

// readStream reads an SSE body to EOF, timing the first byte and checking the [DONE] end.
func readStream(body io.Reader, buf []byte, start time.Time) (time.Duration, error) {
	var ttfb time.Duration
	var tail []byte // the last len(doneTail) bytes seen
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if ttfb == 0 {
				ttfb = time.Since(start)
			}
			tail = append(tail, buf[:n]...)
			if len(tail) > len(doneTail) {
				tail = append(tail[:0], tail[len(tail)-len(doneTail):]...)
			}
		}
		if err == io.EOF {
			if !bytes.Equal(tail, doneTail) {
				return ttfb, fmt.Errorf("stream ended without [DONE]")
			}
			return ttfb, nil
		}
		if err != nil {
			return ttfb, err
		}
	}
}

// merge combines the workers' figures and sorts the latencies for percentiles.
func merge(workers []workerStats, window time.Duration) *runStats {
	s := &runStats{window: window}
	for _, w := range workers {
		s.ok += w.ok
		s.errs += w.errs
		if s.firstErr == "" {
			s.firstErr = w.firstErr
		}
		s.lat = append(s.lat, w.lat...)
		s.ttfb = append(s.ttfb, w.ttfb...)
	}
	slices.Sort(s.lat)
	slices.Sort(s.ttfb)
	return s
}

// rps is successful requests per second over the window.
func (s *runStats) rps() float64 { return float64(s.ok) / s.window.Seconds() }

// errRate is the failed fraction of the requests of the window.
func (s *runStats) errRate() float64 {
	if s.ok+s.errs == 0 {
		return 1 // nothing completed at all counts as total failure
	}
	return float64(s.errs) / float64(s.ok+s.errs)
}

// percentile returns the nearest-rank q-quantile (0 < q <= 1) of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// checkLoopback refuses any target that is not 127.0.0.1: this tool generates heavy load
// and must never point it at a real provider by mistake.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Hostname() != "127.0.0.1" {
		return fmt.Errorf("refusing to load %s: only 127.0.0.1 targets are allowed", raw)
	}
	return nil
}
