// Package scrub keeps configured credentials out of everything that leaves the process:
// responses, logs, metrics, status pages and files. A Set removes known secret values from
// text that may echo them (an upstream's error body, an HTTP client's error naming a URL);
// URL shows a URL with its credentials replaced, keeping what tells an operator which
// server it is.
package scrub

import (
	"cmp"
	"encoding/json"
	"html"
	"net/url"
	"slices"
	"strings"
)

// Mask replaces a secret in text.
const Mask = "[redacted]"

// URLMask replaces userinfo and query values in a URL; unlike Mask it needs no escaping
// there, so the redacted URL still reads as one.
const URLMask = "REDACTED"

// MinLen is the shortest value a Set removes. A value of one to three bytes is no secret
// (it is guessed at once), and removing it would mangle every message that happens to
// contain it ("401" for a header valued "1").
const MinLen = 4

// Set is a fixed set of secret values. The zero Set removes nothing.
type Set struct {
	r *strings.Replacer
}

// New returns the Set of values: each as given and in the escaped forms a body may echo
// it in (JSON string, HTML, URL query). Values shorter than MinLen are left out.
func New(values ...string) Set {
	var all []string
	add := func(v string) {
		if len(v) >= MinLen && !slices.Contains(all, v) {
			all = append(all, v)
		}
	}
	for _, v := range values {
		if len(v) < MinLen {
			continue
		}
		add(v)
		add(html.EscapeString(v))
		add(url.QueryEscape(v))
		add(url.PathEscape(v))
		if b, err := json.Marshal(v); err == nil {
			add(string(b[1 : len(b)-1])) // Go's JSON escapes <, > and & as \u003c...
		}
		add(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v)) // ...most encoders do not
	}
	if len(all) == 0 {
		return Set{}
	}
	// At one position the Replacer takes the first old string that matches: longest
	// first, so a secret that contains another is removed whole.
	slices.SortFunc(all, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(all))
	for _, v := range all {
		pairs = append(pairs, v, Mask)
	}
	return Set{r: strings.NewReplacer(pairs...)}
}

// Scrub returns text with every secret of the Set replaced by Mask.
func (s Set) Scrub(text string) string {
	if s.r == nil || text == "" {
		return text
	}
	return s.r.Replace(text)
}

// Error returns err with its text scrubbed, or err itself when the Set removes nothing
// from it; errors.Is and errors.As still see the original through Unwrap.
func (s Set) Error(err error) error {
	if err == nil || s.r == nil {
		return err
	}
	msg := err.Error()
	if clean := s.r.Replace(msg); clean != msg {
		return &scrubbed{msg: clean, err: err}
	}
	return err
}

type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// URL returns raw with its credentials replaced by URLMask: the whole userinfo (a user
// name alone is often the token) and every query value (pre-signed URLs carry their
// signature there; a bare query item counts as a value). Scheme, host and path stay, so
// the operator can still tell which server it is. A fragment, which never goes on the
// wire, is dropped. Text that does not parse as a URL is masked whole.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return URLMask
	}
	if u.User != nil {
		u.User = url.User(URLMask)
	}
	u.Fragment, u.RawFragment = "", ""
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			if k, _, ok := strings.Cut(p, "="); ok {
				parts[i] = k + "=" + URLMask
			} else if p != "" {
				parts[i] = URLMask
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	u.ForceQuery = false
	return u.String()
}

// URLSecrets returns the credential parts of raw that URL masks, as they appear in the
// URL and unescaped: the user name, the password and every query value. Add them to a
// Set to scrub the URL out of error texts that quote it.
func URLSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return []string{raw}
	}
	var out []string
	if u.User != nil {
		out = append(out, u.User.Username())
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	for p := range strings.SplitSeq(u.RawQuery, "&") {
		v := p
		if _, val, ok := strings.Cut(p, "="); ok {
			v = val
		}
		out = append(out, v)
		if un, err := url.QueryUnescape(v); err == nil && un != v {
			out = append(out, un)
		}
	}
	return out
}
