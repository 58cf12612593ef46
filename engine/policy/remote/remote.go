package remote

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/download"
	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/plugins"
	pluginbundle "github.com/open-policy-agent/opa/v1/plugins/bundle"
	"github.com/open-policy-agent/opa/v1/plugins/rest"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/internal/scrub"
)

// BundleName is the bundle's name in status reports (OPA's bundles.<name>).
const BundleName = "gavel"

// Config says where the bundle lives and how to check it.
type Config struct {
	// URL is the bundle's full URL. A user:password@ in it is sent as basic
	// authentication; it and the query's values (a pre-signed URL's signature) are
	// credentials and never leave the process: everything shown says ShownURL instead.
	URL string
	// Token, when set, is sent as "Authorization: <Scheme> <Token>" (Scheme default Bearer).
	Token, Scheme string
	// MinDelay and MaxDelay bound the jittered wait between checks.
	MinDelay, MaxDelay time.Duration
	// LongPollingTimeout, when positive, asks the server to hold a check open this long.
	LongPollingTimeout time.Duration
	// Verification, when set, requires a valid .signatures.json on every bundle.
	Verification *bundle.VerificationConfig
	// PersistDir keeps the last known good bundle; empty: nothing is persisted.
	PersistDir string
	// MaxStaleness, when positive, makes Health not ready once the last successful check
	// is older than this.
	MaxStaleness time.Duration
	// Limits bound each downloaded (and persisted) tarball; zero fields take policy's
	// defaults.
	Limits policy.Limits
}

// Engine is where bundles are activated; *policy.Engine is one.
type Engine interface {
	Activate(ctx context.Context, b *bundle.Bundle, source string) (*policy.Revision, error)
	Active() *policy.Revision
}

var _ Engine = (*policy.Engine)(nil)

// Metrics receives what happens to bundles; *telemetry.Metrics is one.
type Metrics interface {
	BundleActivation(ok bool, d time.Duration)
	BundleDownloadError(reason string)
	BundleChecked(at time.Time)
}

// Download error reasons, the label values of gavel_bundle_download_errors_total.
const (
	ReasonNetwork = "network" // no answer: refused, reset, timeout, DNS
	ReasonHTTP    = "http"    // an answer other than 200 or 304
	ReasonVerify  = "verify"  // missing, invalid or non-matching signature
	ReasonBundle  = "bundle"  // not a readable bundle (bad gzip, tar, JSON, Rego syntax)
	// ReasonTooLarge: the tarball crossed max_compressed_bytes, or its files
	// max_expanded_bytes or max_file_bytes; reading stopped there.
	ReasonTooLarge = "too_large"
	ReasonCompile  = "compile" // the bundle did not compile or prepare
	ReasonPersist  = "persist" // activated, but the last-known-good copy was not written
)

// Client polls one bundle server.
type Client struct {
	cfg     Config
	shown   string    // cfg.URL with its credentials masked: all that logs, status and files see
	secrets scrub.Set // the URL's credentials and the token, scrubbed from every error kept
	engine  Engine
	metrics Metrics
	log     *slog.Logger
	dl      *download.Downloader
	intake  *intake
	started time.Time
	now     func() time.Time

	pollMu   sync.Mutex  // one check at a time: the downloader is not safe for concurrent use
	longPoll atomic.Bool // the server honours long polling (set by observer)
	done     chan error  // signalled by the callback when the check in flight has settled

	mu         sync.Mutex
	status     pluginbundle.Status
	lastCheck  time.Time // last successful answer from the server
	persisted  time.Time // downloaded_at of the persisted bundle serving now, until a check
	activeSum  [sha256.Size]byte
	lastErr    error
	lastReason string
	bad        *rejected // the bundle the server serves that was rejected, if any
}

// rejected is a bundle that downloaded but was not taken (too large, unreadable, not
// verified, did not compile). While the server keeps serving it, checks ask with its
// ETag (a 304 then means "still the rejected one") and the intake recognises its bytes,
// so it is neither expanded nor counted again.
type rejected struct {
	seen
	reason string
	err    error
}

// New builds a client; it does nothing until LoadPersisted, Poll or Run. metrics and log
// may be nil.
func New(cfg Config, engine Engine, metrics Metrics, log *slog.Logger) (*Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = noMetrics{}
	}
	if cfg.MinDelay <= 0 || cfg.MaxDelay < cfg.MinDelay {
		return nil, fmt.Errorf("bundle polling: want 0 < min_delay <= max_delay, got %v and %v", cfg.MinDelay, cfg.MaxDelay)
	}
	base, resource, err := splitURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	shown := ShownURL(cfg.URL)
	c := &Client{cfg: cfg, shown: shown, secrets: scrub.New(append(scrub.URLSecrets(cfg.URL), cfg.Token)...),
		engine: engine, metrics: metrics, log: log.With("bundle_url", shown), started: time.Now(), now: time.Now,
		intake: &intake{lim: cfg.Limits, vc: cfg.Verification}}
	user, err := basicAuth(cfg)
	if err != nil {
		return nil, err
	}
	creds := map[string]any{}
	if cfg.Token != "" {
		bearer := map[string]any{"token": cfg.Token}
		if cfg.Scheme != "" {
			bearer["scheme"] = cfg.Scheme
		}
		creds["bearer"] = bearer
	}
	auth, err := newObservingAuth(creds, user, &c.longPoll, c.intake)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(map[string]any{"name": "gavel-bundle-server", "url": base,
		"credentials": map[string]any{"plugin": authPluginName}})
	if err != nil {
		return nil, err
	}
	// OPA's own logger would write its lines to stderr in its own format; this package
	// logs what matters through slog, and never the credentials.
	client, err := rest.New(raw, nil, rest.Logger(logging.NewNoOpLogger()),
		rest.AuthPluginLookup(func(name string) rest.HTTPAuthPlugin {
			if name == authPluginName {
				return auth
			}
			return nil
		}))
	if err != nil {
		return nil, fmt.Errorf("bundle server client: %w", err)
	}
	trigger := plugins.TriggerManual
	dcfg := download.Config{Trigger: &trigger}
	if cfg.LongPollingTimeout > 0 {
		secs := max(int64(cfg.LongPollingTimeout/time.Second), 1)
		dcfg.Polling.LongPollingTimeoutSeconds = &secs
	}
	if err := dcfg.ValidateAndInjectDefaults(); err != nil {
		return nil, fmt.Errorf("bundle polling: %w", err)
	}
	c.status.Name = BundleName
	c.status.Type = string(bundle.SnapshotBundleType)
	c.dl = download.New(dcfg, client, resource).
		WithCallback(c.onUpdate).
		WithBundleVerificationConfig(cfg.Verification).
		// The intake has checked the sizes already; OPA's own per-file bound stays as
		// a second line.
		WithSizeLimitBytes(cfg.Limits.WithDefaults().MaxFileBytes).
		// Persistence makes the downloader hand back the tarball as it came, which is
		// what the last-known-good copy stores and what tells a repeat download apart.
		WithBundlePersistence(true).
		WithBundleName(BundleName)
	return c, nil
}

// ShownURL is how a bundle URL is shown anywhere outside the process (logs, /readyz, the
// gavel_bundle_info source label, the persisted metadata): userinfo and query values
// masked, scheme, host and path kept so operators can tell which server it is.
func ShownURL(raw string) string { return scrub.URL(raw) }

// basicAuth returns the URL's userinfo, which the client sends as basic authentication
// (the REST client's base URL is scheme and host only, so nothing else would send it), or
// nil. A URL with both userinfo and a bearer token is ambiguous and refused.
func basicAuth(cfg Config) (*url.Userinfo, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.User == nil {
		return nil, nil // splitURL reports a bad URL
	}
	if cfg.Token != "" {
		return nil, fmt.Errorf("bundle url %s: user info and a bearer token are exclusive: use one", ShownURL(cfg.URL))
	}
	return u.User, nil
}

// splitURL cuts a bundle URL into the service base the REST client wants and the
// resource path the downloader requests. The userinfo is left out of both: basicAuth
// sends it.
func splitURL(raw string) (base, resource string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("bundle url %s: %w", ShownURL(raw), scrub.New(scrub.URLSecrets(raw)...).Error(err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", fmt.Errorf("bundle url %q: want http(s)://host/path", ShownURL(raw))
	}
	resource = strings.TrimLeft(u.EscapedPath(), "/")
	if u.RawQuery != "" {
		resource += "?" + u.RawQuery
	}
	if resource == "" {
		return "", "", fmt.Errorf("bundle url %q names no bundle path", ShownURL(raw))
	}
	return u.Scheme + "://" + u.Host, resource, nil
}

// minLongPollGap is the least time between the starts of two long polls.
const minLongPollGap = 100 * time.Millisecond

// Run checks the server until ctx ends: a jittered wait between MinDelay and MaxDelay
// after each successful check, none while the server holds long polls, exponential
// backoff up to MaxDelay after failures.
func (c *Client) Run(ctx context.Context) {
	retry := 0
	for ctx.Err() == nil {
		began := time.Now()
		var delay time.Duration
		if err := c.Poll(ctx); err != nil {
			retry++
			delay = util.DefaultBackoff(float64(min(100*time.Millisecond, c.cfg.MinDelay)), float64(c.cfg.MaxDelay), retry)
		} else if c.cfg.LongPollingTimeout > 0 && c.longPoll.Load() {
			// The server paces long polls itself; the floor only stops a server that
			// claims long polling but answers at once from spinning the loop.
			retry = 0
			delay = minLongPollGap - time.Since(began)
		} else {
			retry = 0
			delay = c.cfg.MinDelay + rand.N(c.cfg.MaxDelay-c.cfg.MinDelay+1)
		}
		if delay <= 0 {
			continue
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// Poll performs one check with the server: download if changed, verify, activate,
// persist. It returns the check's error; the active revision survives any error.
func (c *Client) Poll(ctx context.Context) error {
	c.pollMu.Lock()
	defer c.pollMu.Unlock()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// Bound the whole exchange: a long poll may legitimately take its timeout, but a
	// server that stops mid-body must not hold the loop forever.
	ctx, cancel := context.WithTimeout(ctx, c.cfg.LongPollingTimeout+2*time.Minute)
	defer cancel()
	c.done = make(chan error, 1)
	err := c.dl.Trigger(ctx)
	// Trigger returns early when ctx ends while its goroutine still finishes the
	// request; wait for the callback so two checks never share the downloader.
	select {
	case err = <-c.done:
	case <-time.After(10 * time.Second):
	}
	return c.secrets.Error(err) // Trigger's own error may quote the URL
}

// onUpdate is the downloader's callback: the outcome of one request.
func (c *Client) onUpdate(ctx context.Context, u download.Update) (err error) {
	done := c.done
	defer func() { done <- err }()
	now := c.now()
	c.mu.Lock()
	c.status.LastRequest = now.UTC()
	c.mu.Unlock()
	if errors.Is(ctx.Err(), context.Canceled) {
		// Shutting down: a cancelled request says nothing about the server. (A deadline
		// does: the server kept a check waiting too long, and that counts.)
		return ctx.Err()
	}
	if u.Error != nil {
		var ie *intakeError
		if errors.As(u.Error, &ie) {
			if ie.reason == "" {
				return c.repeat(now)
			}
			// Unwrapped from the HTTP client's error, whose text repeats the URL.
			return c.rejectBundle(ie.reason, fmt.Errorf("bundle download: %w", ie.err), c.intake.lastSeen())
		}
		reason := c.classify(u.Error)
		err := fmt.Errorf("bundle download: %w", u.Error)
		if reason == ReasonVerify || reason == ReasonBundle || reason == ReasonTooLarge {
			// OPA's reader refused what the server sent: the bundle, not the exchange.
			return c.rejectBundle(reason, err, c.intake.lastSeen())
		}
		return c.fail(reason, err)
	}
	if u.Bundle == nil {
		c.mu.Lock()
		bad := c.bad
		c.mu.Unlock()
		if bad != nil && bad.etag != "" && u.ETag == bad.etag {
			// 304 to the rejected bundle's ETag: the server still serves it.
			return c.repeat(now)
		}
	}
	c.checked(now)
	if u.Bundle == nil {
		// 304 Not Modified: the server's bundle is the one serving (the cache tag is
		// cleared whenever a bundle was not taken, so a 304 never confirms a rejected one).
		c.mu.Lock()
		c.clearError()
		c.mu.Unlock()
		return nil
	}
	var raw []byte
	if u.Raw != nil {
		raw, _ = io.ReadAll(u.Raw)
	}
	sum := sha256.Sum256(raw)
	c.mu.Lock()
	same := sum == c.activeSum && c.engine.Active() != nil
	if same {
		// The same bytes again (a server without ETags, or a re-download after an
		// error cleared the cache): nothing to compile.
		c.status.SetDownloadSuccess()
		c.clearError()
		c.forgetRejected()
	}
	c.mu.Unlock()
	if same {
		return nil
	}
	rev, err := c.activate(ctx, u.Bundle, c.shown)
	if err != nil {
		return c.rejectBundle(ReasonCompile, err, seen{etag: u.ETag, sum: sum})
	}
	c.mu.Lock()
	c.forgetRejected()
	c.activeSum = sum
	c.persisted = time.Time{}
	c.status.SetDownloadSuccess()
	c.status.SetBundleSize(u.Size)
	c.status.SetActivateSuccess(rev.ID)
	c.clearError()
	c.mu.Unlock()
	if c.cfg.PersistDir != "" {
		m := meta{Revision: rev.ID, ETag: u.ETag, URL: c.shown, DownloadedAt: now.UTC(), SHA256: fmt.Sprintf("%x", sum)}
		if err := save(c.cfg.PersistDir, raw, m); err != nil {
			// The new revision serves; only the restart safety net is missing.
			c.metrics.BundleDownloadError(ReasonPersist)
			c.log.Error("bundle activated but not persisted as last known good", "revision", rev.ID, "error", err)
		}
	}
	return nil
}

// activate compiles and swaps in b, timing it for the histogram.
func (c *Client) activate(ctx context.Context, b *bundle.Bundle, source string) (*policy.Revision, error) {
	t0 := time.Now()
	rev, err := c.engine.Activate(ctx, b, source)
	c.metrics.BundleActivation(err == nil, time.Since(t0))
	return rev, err
}

func (c *Client) checked(now time.Time) {
	c.metrics.BundleChecked(now)
	c.mu.Lock()
	c.lastCheck = now
	c.status.LastSuccessfulRequest = now.UTC()
	c.mu.Unlock()
}

// clearError forgets the last failure; call with mu held.
func (c *Client) clearError() {
	c.lastErr, c.lastReason = nil, ""
	c.status.SetError(nil)
}

// rejectBundle fails a bundle that downloaded but was not taken, counted and logged this
// once. The next checks ask with its ETag, so a server that still serves it answers 304
// (read as "still rejected", never as "up to date"), and the intake refuses its bytes
// unopened from a server that ignores ETags. Called on the poll goroutine.
func (c *Client) rejectBundle(reason string, err error, s seen) error {
	err = c.secrets.Error(err) // kept for the repeats, which bypass fail
	c.dl.SetCache(s.etag)
	c.intake.setBad(&s.sum)
	c.mu.Lock()
	c.bad = &rejected{seen: s, reason: reason, err: err}
	c.mu.Unlock()
	return c.fail(reason, err)
}

// repeat is a check that found the rejected bundle still served: no download, no
// expansion, no new count or log line; the status keeps (or gets back) its error, and
// the check returns it so Run backs off. A bundle that failed to compile had been
// downloaded fine, so its repeat counts as a successful check, as it did the first time.
func (c *Client) repeat(now time.Time) error {
	c.mu.Lock()
	bad := c.bad
	if bad != nil {
		c.lastErr, c.lastReason = bad.err, bad.reason
		c.status.SetError(bad.err)
	}
	c.mu.Unlock()
	if bad == nil {
		// The intake matched a digest the client already forgot: cannot happen on the
		// poll goroutine, but a check that decides nothing must not pass as a success.
		return errors.New("bundle download: repeat of an unknown rejected bundle")
	}
	if bad.reason == ReasonCompile {
		c.checked(now)
	}
	c.dl.SetCache(bad.etag)
	return bad.err
}

// forgetRejected drops the rejected bundle once the server serves another; call with mu
// held.
func (c *Client) forgetRejected() {
	if c.bad != nil {
		c.bad = nil
		c.intake.setBad(nil)
	}
}

// fail records a failed check. The error is scrubbed first: the HTTP client's errors
// quote the request URL, query and all, and this error reaches the log, /readyz and the
// status API.
func (c *Client) fail(reason string, err error) error {
	err = c.secrets.Error(err)
	c.metrics.BundleDownloadError(reason)
	c.mu.Lock()
	c.lastErr, c.lastReason = err, reason
	c.status.SetError(err)
	c.mu.Unlock()
	active := ""
	if rev := c.engine.Active(); rev != nil {
		active = rev.ID
	}
	c.log.Warn("bundle update failed; the active revision stays", "reason", reason, "active_revision", active, "error", err)
	return err
}

// classify names why a download failed. OPA's bundle reader returns signature failures as
// plain errors, so they are told apart by what they say.
func (c *Client) classify(err error) string {
	var httpErr download.HTTPError
	var netErr net.Error
	var urlErr *url.Error
	switch {
	case errors.Is(err, policy.ErrBundleTooLarge), strings.Contains(err.Error(), "size_limit_bytes"),
		strings.Contains(err.Error(), "exceeded max size"):
		// The intake's bounds, or OPA's reader's own per-file one (a plain error).
		return ReasonTooLarge
	case errors.As(err, &httpErr):
		return ReasonHTTP
	case errors.As(err, &urlErr), errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded):
		return ReasonNetwork
	case isVerifyError(err):
		return ReasonVerify
	}
	return ReasonBundle
}

var verifyMarkers = []string{"signature", "digest mismatch", "scope mismatch", "verification key", "verifier", "jwt", "pem"}

func isVerifyError(err error) bool {
	msg := strings.ToLower(err.Error())
	for _, m := range verifyMarkers {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

// Status is OPA's bundle status for this bundle (GET /v1/gavel/status).
func (c *Client) Status() pluginbundle.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.status
	s.Errors = append([]error(nil), s.Errors...)
	return s
}

type noMetrics struct{}

func (noMetrics) BundleActivation(bool, time.Duration) {}
func (noMetrics) BundleDownloadError(string)           {}
func (noMetrics) BundleChecked(time.Time)              {}

// readVerified reads a tarball as the downloader would, signature check included.
func (c *Client) readVerified(raw []byte, etag string) (*bundle.Bundle, error) {
	base, resource, _ := splitURL(c.cfg.URL)
	return policy.ReadTarballLimited(raw, base+"/"+resource, c.cfg.Limits, c.cfg.Verification, func(r *bundle.Reader) *bundle.Reader {
		return r.WithBundleEtag(etag).WithBundleName(BundleName)
	})
}
