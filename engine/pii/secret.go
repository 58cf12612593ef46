package pii

import "strings"

// Secrets are recognised by the fixed prefixes their issuers put on them, then checked for
// the length and alphabet of the rest, and that the token ends there:
//
//	AWS access key id     AKIA… / ASIA… + 16 [A-Z0-9]
//	Google API key        AIza + 35 [A-Za-z0-9_-]
//	OpenAI / Anthropic    sk-… ≥ 20 [A-Za-z0-9_-] holding a random-looking run: 16 or more
//	                      alphanumerics with letters and digits (sk-proj-…, sk-ant-api03-…;
//	                      not OpenSSH's sk-ecdsa-sha2-nistp256-cert-v01)
//	Stripe                sk_live_, sk_test_, rk_live_, rk_test_ + ≥ 16 [A-Za-z0-9] with a digit
//	GitHub                ghp_, gho_, ghs_, ghu_, ghr_ + ≥ 30 [A-Za-z0-9];
//	                      github_pat_ + ≥ 22 [A-Za-z0-9_]
//	GitLab                glpat- + ≥ 20 [A-Za-z0-9_-]
//	Slack                 xoxb-, xoxa-, xoxp-, xoxr-, xoxs- + ≥ 10 [A-Za-z0-9-] with a digit
//	JWT                   eyJ… . ey… . [signature]: base64url segments, header and claims
//	                      both JSON objects (so both start "ey")
//	Private key           -----BEGIN … PRIVATE KEY----- through its -----END …----- line
//	                      (the whole block, so redaction leaves none of the key behind),
//	                      with key material in it: a header alone is a mention, not a key
//
// Generic high-entropy strings are not secrets here: without a prefix a key cannot be told
// from a hash, a UUID or base64 data.

// secret matches a prefixed key or a JWT at text[i], the start of a word; it returns the
// end or -1, and the end of the token it examined: a key prefix inside that token would
// only examine the same bytes again (keys are not glued to one another).
func secret(text string, i int) (end, tried int) {
	t := text[i:]
	switch t[0] {
	case 'A':
		if strings.HasPrefix(t, "AKIA") || strings.HasPrefix(t, "ASIA") {
			return token(text, i, 4, awsChar, 16, 16, 0)
		}
		if strings.HasPrefix(t, "AIza") {
			return token(text, i, 4, urlChar, 35, 35, 0)
		}
	case 's':
		if strings.HasPrefix(t, "sk_live_") || strings.HasPrefix(t, "sk_test_") {
			return token(text, i, 8, alnumChar, 16, 0, needDigit)
		}
		if strings.HasPrefix(t, "sk-") {
			end, tried := token(text, i, 3, urlChar, 20, 0, needDigit|needLetter)
			if end > 0 && !randomRun(text[i+3:end], 16) {
				end = -1
			}
			return end, tried
		}
	case 'r':
		if strings.HasPrefix(t, "rk_live_") || strings.HasPrefix(t, "rk_test_") {
			return token(text, i, 8, alnumChar, 16, 0, needDigit)
		}
	case 'g':
		if len(t) > 4 && t[1] == 'h' && t[3] == '_' && strings.IndexByte("posur", t[2]) >= 0 {
			return token(text, i, 4, alnumChar, 30, 0, 0)
		}
		if strings.HasPrefix(t, "github_pat_") {
			return token(text, i, 11, wordChar, 22, 0, 0)
		}
		if strings.HasPrefix(t, "glpat-") {
			return token(text, i, 6, urlChar, 20, 0, 0)
		}
	case 'x':
		if len(t) > 5 && strings.HasPrefix(t, "xox") && t[4] == '-' && strings.IndexByte("baprs", t[3]) >= 0 {
			return token(text, i, 5, slackChar, 10, 0, needDigit)
		}
	case 'e':
		if strings.HasPrefix(t, "eyJ") {
			return jwt(text, i)
		}
	}
	return -1, i
}

const (
	needDigit = 1 << iota
	needLetter
)

// randomRun reports whether s holds a run of at least n alphanumerics with both letters
// and digits.
func randomRun(s string, n int) bool {
	run, has := 0, 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && isAlnum(s[i]) {
			run++
			if isDigit(s[i]) {
				has |= needDigit
			} else {
				has |= needLetter
			}
			continue
		}
		if run >= n && has == needDigit|needLetter {
			return true
		}
		run, has = 0, 0
	}
	return false
}

// token matches a prefix of plen bytes at text[i] followed by a body of lo to hi bytes
// (hi 0: unbounded) of the given alphabet, ending at a byte outside it; need lists what
// the body must contain. It returns the end or -1, and where the body's run ends.
func token(text string, i, plen int, ok func(byte) bool, lo, hi int, need int) (int, int) {
	n := len(text)
	j := i + plen
	var has int
	for j < n && ok(text[j]) {
		c := text[j]
		if isDigit(c) {
			has |= needDigit
		} else if isUpper(c) || isLower(c) {
			has |= needLetter
		}
		j++
	}
	l := j - i - plen
	if l < lo || hi > 0 && l > hi || has&need != need || j < n && class[text[j]] == cWord {
		return -1, j
	}
	return j, j
}

// jwt matches header.claims.signature at text[i], where the header starts "eyJ". It
// returns the end or -1, and the end of the header.
func jwt(text string, i int) (int, int) {
	n := len(text)
	seg := func(j int) int {
		for j < n && urlChar(text[j]) {
			j++
		}
		return j
	}
	h := seg(i)
	if h-i < 10 || h+3 >= n || text[h] != '.' || text[h+1] != 'e' || text[h+2] != 'y' {
		return -1, h
	}
	c := seg(h + 1)
	if c-h-1 < 10 || c >= n || text[c] != '.' {
		return -1, h
	}
	return seg(c + 1), h
}

// privateKey matches a PEM private-key block at text[i], the start of "-----BEGIN ". The
// span runs to the end of the matching END line or, when the block is cut off, over the
// base64 body that follows the header. endAt caches where the search for an END line
// found one (1 + its offset, -1 for none up to the end of the text; 0: not searched yet),
// so that many headers before one END line do not each search the text again.
func privateKey(text string, i int, endAt *int) int {
	const begin = "-----BEGIN "
	t := text[i:]
	if !strings.HasPrefix(t, begin) {
		return -1
	}
	hdr := t[len(begin):min(len(t), len(begin)+45)]
	h := strings.Index(hdr, "-----")
	if h < 0 {
		return -1
	}
	label := t[len(begin) : len(begin)+h]
	if !strings.HasSuffix(label, "PRIVATE KEY") && !strings.HasSuffix(label, "PRIVATE KEY BLOCK") {
		return -1
	}
	hdrEnd := len(begin) + h + 5
	body := keyMaterial(t, hdrEnd)
	if body < 0 {
		return -1 // a header alone (named in prose, an empty template): not a key
	}
	if *endAt == 0 || *endAt > 0 && *endAt-1 < i+body {
		*endAt = -1
		if e := strings.Index(t[body:], "-----END "); e >= 0 {
			*endAt = 1 + i + body + e
		}
	}
	if *endAt > 0 {
		end := *endAt - 1 - i + len("-----END ")
		if k := strings.Index(t[end:min(len(t), end+45)], "-----"); k >= 0 {
			return i + end + k + 5
		}
	}
	// Cut off: take the whitespace-separated base64 chunks that follow as long as they
	// look like key material: 16 bytes or more, or '=' padding, or the short last line of
	// a body right after a full line.
	end, k, full := hdrEnd, body, false
	for nl := 1; ; nl = 0 {
		for ; k < len(t) && (t[k] == ' ' || t[k] == '\t' || t[k] == '\r' || t[k] == '\n'); k++ {
			if t[k] == '\n' {
				nl++
			}
		}
		c := k
		for c < len(t) && base64Char(t[c]) {
			c++
		}
		if c == k || c < len(t) && class[t[c]] != cOther {
			return i + end
		}
		if c-k < 16 && t[c-1] != '=' {
			if full && nl == 1 && (c == len(t) || t[c] == '\n' || t[c] == '\r') {
				return i + c
			}
			return i + end
		}
		end, k, full = c, c, c-k >= 40 && nl == 1
	}
}

// keyMaterial returns where the base64 body of a PEM block starts, given the end of its
// header (t[k:]): after white space and at most four "Name: value" lines (Proc-Type,
// DEK-Info, Version, Comment), a run of 16 or more base64 characters; or -1.
func keyMaterial(t string, k int) int {
	for lines := 0; lines <= 4; lines++ {
		for k < len(t) && (t[k] == ' ' || t[k] == '\t' || t[k] == '\r' || t[k] == '\n') {
			k++
		}
		c := k
		for c < len(t) && c-k < 16 && base64Char(t[c]) {
			c++
		}
		if c-k >= 16 {
			return k
		}
		nl := strings.IndexByte(t[k:min(len(t), k+120)], '\n')
		if nl < 0 || !strings.Contains(t[k:k+nl], ": ") {
			return -1
		}
		k += nl + 1
	}
	return -1
}

func base64Char(c byte) bool { return isAlnum(c) || c == '+' || c == '/' || c == '=' }

func awsChar(c byte) bool   { return isUpper(c) || isDigit(c) }
func alnumChar(c byte) bool { return isAlnum(c) }
func wordChar(c byte) bool  { return class[c] == cWord }
func urlChar(c byte) bool   { return class[c] == cWord || c == '-' }
func slackChar(c byte) bool { return isAlnum(c) || c == '-' }
