package decisionlog

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Defaults of the HTTP service sink.
const (
	DefaultServiceBatchMaxEvents = 500
	DefaultServiceBatchMaxBytes  = 1 << 20 // uncompressed JSON
	DefaultServiceMaxDelay       = 5 * time.Second
	DefaultServiceBuffer         = 10000 // events waiting for upload
	DefaultServiceMaxRetries     = 4
	DefaultServiceBackoff        = 500 * time.Millisecond
	DefaultServiceMaxBackoff     = 10 * time.Second
	DefaultServiceTimeout        = 10 * time.Second
)

// ServiceConfig configures uploads to a decision-log service speaking OPA's protocol.
type ServiceConfig struct {
	URL            string // events are POSTed to URL + "/logs"
	Token          string // optional bearer token
	BatchMaxEvents int
	BatchMaxBytes  int
	MaxDelay       time.Duration // an event waits at most this long for its batch to fill
	Buffer         int           // events queued for upload; more are dropped
	MaxRetries     int           // per batch, then it is dropped; -1 for none
	Backoff        time.Duration // first retry delay, doubled per retry up to MaxBackoff
	MaxBackoff     time.Duration
	Timeout        time.Duration // per upload
	Client         *http.Client  // default: a client with Timeout
}

func (c *ServiceConfig) withDefaults() {
	if c.BatchMaxEvents <= 0 {
		c.BatchMaxEvents = DefaultServiceBatchMaxEvents
	}
	if c.BatchMaxBytes <= 0 {
		c.BatchMaxBytes = DefaultServiceBatchMaxBytes
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = DefaultServiceMaxDelay
	}
	if c.Buffer <= 0 {
		c.Buffer = DefaultServiceBuffer
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultServiceMaxRetries
	} else if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultServiceBackoff
	}
	if c.MaxBackoff < c.Backoff {
		c.MaxBackoff = max(DefaultServiceMaxBackoff, c.Backoff)
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultServiceTimeout
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: c.Timeout}
	}
}

// Service uploads events in gzip'd JSON-array batches, the way OPA's decision-log plugin
// does, from its own goroutine. Its queue is bounded: while the service is slow or down,
// events beyond it are dropped and counted; nothing upstream ever waits for it.
type Service struct {
	cfg      ServiceConfig
	endpoint string
	obs      Observer
	in       chan []byte
	done     chan struct{}
	// abort ends uploads and retry waits once Close's deadline has passed.
	abort  context.Context
	cancel context.CancelFunc
}

var (
	_ Sink   = (*Service)(nil)
	_ Closer = (*Service)(nil)
)

// NewService starts the uploader; Close flushes and stops it.
func NewService(cfg ServiceConfig, obs Observer) *Service {
	cfg.withDefaults()
	s := &Service{cfg: cfg, endpoint: strings.TrimSuffix(cfg.URL, "/") + "/logs", obs: observerOrNop(obs),
		in: make(chan []byte, cfg.Buffer), done: make(chan struct{})}
	s.abort, s.cancel = context.WithCancel(context.Background())
	go s.run()
	return s
}

// Name implements Sink.
func (s *Service) Name() string { return "service" }

// Write implements Sink: it queues the event or, when the queue is full, drops it.
func (s *Service) Write(line []byte) {
	select {
	case s.in <- bytes.TrimSuffix(line, []byte{'\n'}):
	default:
		s.obs.DecisionLogDropped("service", 1)
	}
}

// Close uploads what is queued until ctx ends; what is left then is dropped and counted.
// Write must not be called after Close.
func (s *Service) Close(ctx context.Context) error {
	close(s.in)
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cancel()
		<-s.done
		return fmt.Errorf("decision log service: flush: %w", ctx.Err())
	}
}

func (s *Service) run() {
	defer close(s.done)
	defer s.cancel()
	var batch [][]byte
	size := 0
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	send := func() {
		timer.Stop()
		if len(batch) > 0 {
			s.upload(batch)
		}
		batch, size = nil, 0
	}
	for {
		select {
		case line, ok := <-s.in:
			if !ok {
				send()
				return
			}
			if len(batch) > 0 && size+len(line)+1 > s.cfg.BatchMaxBytes {
				send()
			}
			if len(batch) == 0 {
				timer.Reset(s.cfg.MaxDelay)
			}
			batch = append(batch, line)
			size += len(line) + 1
			if len(batch) >= s.cfg.BatchMaxEvents || size >= s.cfg.BatchMaxBytes {
				send()
			}
		case <-timer.C:
			send()
		}
	}
}

// errPermanent marks a rejection that retrying cannot fix (a 4xx other than 408 and 429).
var errPermanent = errors.New("rejected")

// upload sends one batch, retrying with exponential backoff; a batch that cannot be
// delivered is dropped and counted.
func (s *Service) upload(batch [][]byte) {
	body, err := encodeBatch(batch)
	if err == nil {
		wait := s.cfg.Backoff
		for attempt := 0; ; attempt++ {
			if err = s.post(body); err == nil {
				s.obs.DecisionLogEvents("service", "ok", len(batch))
				return
			}
			if errors.Is(err, errPermanent) || attempt >= s.cfg.MaxRetries || s.abort.Err() != nil {
				break
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-s.abort.Done():
				t.Stop()
			}
			wait = min(2*wait, s.cfg.MaxBackoff)
		}
	}
	s.obs.DecisionLogEvents("service", "error", len(batch))
	s.obs.DecisionLogDropped("service", len(batch))
}

func encodeBatch(batch [][]byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte{'['})
	for i, e := range batch {
		if i > 0 {
			zw.Write([]byte{','})
		}
		zw.Write(e)
	}
	zw.Write([]byte{']'})
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (s *Service) post(body []byte) error {
	req, err := http.NewRequestWithContext(s.abort, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	if s.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("decision log service: status %d", resp.StatusCode)
	}
	return fmt.Errorf("%w: status %d", errPermanent, resp.StatusCode)
}
