package remote

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/plugins/rest"

	"github.com/gavel-gw/gavel/engine/policy"
)

// longPollContentType is how a bundle server says it honours Prefer: wait (OPA's rule).
const longPollContentType = "application/vnd.openpolicyagent.bundles"

// authPluginName routes the REST client's credentials through observingAuth.
const authPluginName = "gavel-observed"

// observingAuth wraps OPA's own credential plugin (bearer, or none) and the HTTP client it
// builds, to learn what OPA's downloader learns but does not expose: whether the server
// honours long polling, which decides whether the next check may start at once.
type observingAuth struct {
	inner    rest.HTTPAuthPlugin
	user     *url.Userinfo // the bundle URL's, sent as basic authentication; nil: none
	longPoll *atomic.Bool
	intake   *intake
}

var _ rest.HTTPAuthPlugin = (*observingAuth)(nil)

// newObservingAuth builds OPA's plugin for creds (a rest.Config "credentials" object);
// user, when set, is sent as basic authentication (OPA's REST client has no such
// credential of its own). Every 200's body goes through in before OPA reads it.
func newObservingAuth(creds map[string]any, user *url.Userinfo, longPoll *atomic.Bool, in *intake) (*observingAuth, error) {
	raw, err := json.Marshal(map[string]any{"credentials": creds})
	if err != nil {
		return nil, err
	}
	var cfg rest.Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("bundle credentials: %w", err)
	}
	inner, err := cfg.AuthPlugin(nil)
	if err != nil {
		return nil, fmt.Errorf("bundle credentials: %w", err)
	}
	return &observingAuth{inner: inner, user: user, longPoll: longPoll, intake: in}, nil
}

func (a *observingAuth) NewClient(c rest.Config) (*http.Client, error) {
	hc, err := a.inner.NewClient(c)
	if err != nil {
		return nil, err
	}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Transport = observer{next: next, longPoll: a.longPoll, intake: a.intake}
	return hc, nil
}

func (a *observingAuth) Prepare(r *http.Request) error {
	if err := a.inner.Prepare(r); err != nil {
		return err
	}
	if a.user != nil {
		pw, _ := a.user.Password()
		r.SetBasicAuth(a.user.Username(), pw)
	}
	return nil
}

type observer struct {
	next     http.RoundTripper
	longPoll *atomic.Bool
	intake   *intake
}

// RoundTrip mirrors download.Downloader: a 200 says whether long polling is on, a 304
// leaves it as it was. A 200's body then goes through the intake before OPA's reader
// sees it.
func (o observer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := o.next.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusOK {
		o.longPoll.Store(resp.Header.Get("Content-Type") == longPollContentType)
		if o.intake != nil {
			return o.intake.check(resp)
		}
	}
	return resp, err
}

// intake guards OPA's bundle reader, which expands a whole tarball in memory before it
// looks at sizes in total or at signatures: the body is read up to max_compressed_bytes,
// a bundle already rejected (same bytes) is refused without being opened again, and a new
// one is scanned (policy.ScanTarball: size bounds, signature) in constant memory. Only a
// body that passes reaches OPA's reader.
type intake struct {
	lim policy.Limits
	vc  *bundle.VerificationConfig

	mu     sync.Mutex
	bad    [sha256.Size]byte // digest of the rejected bundle the server still serves
	hasBad bool
	last   seen // the last body the server sent

	scans atomic.Int64 // tarballs scanned: what a repeat of a rejected bundle must not cost
}

// seen is a body as the server sent it, which is what a rejection remembers.
type seen struct {
	etag string
	sum  [sha256.Size]byte
}

// intakeError is the intake's refusal; the downloader reports it wrapped in the HTTP
// client's error, and the client unwraps it.
type intakeError struct {
	reason string // a download error reason; "" for a repeat of the rejected bundle
	err    error
}

func (e *intakeError) Error() string {
	if e.reason == "" {
		return "the bundle rejected before is served again"
	}
	return e.err.Error()
}

func (e *intakeError) Unwrap() error { return e.err }

func (in *intake) check(resp *http.Response) (*http.Response, error) {
	defer resp.Body.Close()
	lim := in.lim.WithDefaults()
	if resp.ContentLength > lim.MaxCompressedBytes {
		// Refused on its announced length: not a byte of it is read.
		in.record(seen{etag: resp.Header.Get("ETag")})
		return nil, &intakeError{reason: ReasonTooLarge, err: &policy.LimitError{What: "compressed", Limit: lim.MaxCompressedBytes}}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, lim.MaxCompressedBytes+1))
	if err != nil {
		return nil, err
	}
	// An oversized body is known by the digest of what was read of it (one byte past the
	// bound), so its repeats are recognised too.
	s := seen{etag: resp.Header.Get("ETag"), sum: sha256.Sum256(raw)}
	if repeat := in.record(s); repeat {
		return nil, &intakeError{}
	}
	if int64(len(raw)) > lim.MaxCompressedBytes {
		return nil, &intakeError{reason: ReasonTooLarge, err: &policy.LimitError{What: "compressed", Limit: lim.MaxCompressedBytes}}
	}
	in.scans.Add(1)
	if err := policy.ScanTarball(bytes.NewReader(raw), lim, in.vc); err != nil {
		reason := ReasonBundle
		switch {
		case errors.Is(err, policy.ErrBundleTooLarge):
			reason = ReasonTooLarge
		case isVerifyError(err):
			reason = ReasonVerify
		}
		return nil, &intakeError{reason: reason, err: err}
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	resp.ContentLength = int64(len(raw))
	return resp, nil
}

// record remembers the body just received and reports whether it is the rejected one.
func (in *intake) record(s seen) (repeat bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.last = s
	return in.hasBad && s.sum == in.bad && s.sum != [sha256.Size]byte{}
}

// lastSeen is the last body the server sent.
func (in *intake) lastSeen() seen {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.last
}

// setBad remembers sum as rejected; nil forgets.
func (in *intake) setBad(sum *[sha256.Size]byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.hasBad = sum != nil
	if sum != nil {
		in.bad = *sum
	}
}
