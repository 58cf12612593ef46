package pii

import "strings"

// Secrets are recognised by the fixed prefixes their issuers put on them, then checked for
// the length and alphabet of the rest, and that the token ends there:
//
//	AWS access key id     AKIA… / ASIA… + 16 [A-Z0-9]
//	Google API key        AIza + 35 [A-Za-z0-9_-]
//	OpenAI / Anthropic    sk-… ≥ 20 [A-Za-z0-9_-] with letters and digits (sk-proj-…, sk-ant-…)
//	Stripe                sk_live_, sk_test_, rk_live_, rk_test_ + ≥ 16 [A-Za-z0-9] with a digit
//	GitHub                ghp_, gho_, ghs_, ghu_, ghr_ + ≥ 30 [A-Za-z0-9];
//	                      github_pat_ + ≥ 22 [A-Za-z0-9_]
//	GitLab                glpat- + ≥ 20 [A-Za-z0-9_-]
//	Slack                 xoxb-, xoxa-, xoxp-, xoxr-, xoxs- + ≥ 10 [A-Za-z0-9-] with a digit
//	JWT                   eyJ… . ey… . [signature]: base64url segments, header and claims
//	                      both JSON objects (so both start "ey")
//	Private key           -----BEGIN … PRIVATE KEY----- through its -----END …----- line
//	                      (the whole block, so redaction leaves none of the key behind)
//
// Generic high-entropy strings are not secrets here: without a prefix a key cannot be told
// from a hash, a UUID or base64 data.

// secret matches a prefixed key or a JWT at text[i], the start of a word; it returns the
// end or -1.
func secret(text string, i int) int {
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
			return token(text, i, 3, urlChar, 20, 0, needDigit|needLetter)
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
	return -1
}

const (
	needDigit = 1 << iota
	needLetter
)

// token matches a prefix of plen bytes at text[i] followed by a body of [min, max] bytes
// (max 0: unbounded) of the given alphabet, ending at a byte outside it; need lists what
// the body must contain.
func token(text string, i, plen int, ok func(byte) bool, min, max int, need int) int {
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
	if l < min || max > 0 && l > max || has&need != need || j < n && class[text[j]] == cWord {
		return -1
	}
	return j
}

// jwt matches header.claims.signature at text[i], where the header starts "eyJ".
func jwt(text string, i int) int {
	n := len(text)
	seg := func(j int) int {
		for j < n && urlChar(text[j]) {
			j++
		}
		return j
	}
	h := seg(i)
	if h-i < 10 || h+3 >= n || text[h] != '.' || text[h+1] != 'e' || text[h+2] != 'y' {
		return -1
	}
	c := seg(h + 1)
	if c-h-1 < 10 || c >= n || text[c] != '.' {
		return -1
	}
	return seg(c + 1)
}

// privateKey matches a PEM private-key block at text[i], the start of "-----BEGIN ". The
// span runs to the end of the matching END line or, when the block is cut off, over the
// base64 body that follows the header.
func privateKey(text string, i int) int {
	const begin = "-----BEGIN "
	t := text[i:]
	if !strings.HasPrefix(t, begin) {
		return -1
	}
	h := strings.Index(t[len(begin):], "-----")
	if h < 0 || h > 40 {
		return -1
	}
	label := t[len(begin) : len(begin)+h]
	if !strings.HasSuffix(label, "PRIVATE KEY") && !strings.HasSuffix(label, "PRIVATE KEY BLOCK") {
		return -1
	}
	hdrEnd := len(begin) + h + 5
	if e := strings.Index(t[hdrEnd:], "-----END "); e >= 0 {
		end := hdrEnd + e + len("-----END ")
		if k := strings.Index(t[end:], "-----"); k >= 0 && k <= 40 {
			return i + end + k + 5
		}
	}
	// Cut off: take the whitespace-separated base64 chunks that follow as long as they
	// look like key material: 16 bytes or more, or '=' padding, or the short last line of
	// a body right after a full line.
	end, k, full := hdrEnd, hdrEnd, false
	for {
		nl := 0
		for ; k < len(t) && (t[k] == ' ' || t[k] == '\t' || t[k] == '\r' || t[k] == '\n'); k++ {
			if t[k] == '\n' {
				nl++
			}
		}
		c := k
		for c < len(t) && (isAlnum(t[c]) || t[c] == '+' || t[c] == '/' || t[c] == '=') {
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

func awsChar(c byte) bool   { return isUpper(c) || isDigit(c) }
func alnumChar(c byte) bool { return isAlnum(c) }
func wordChar(c byte) bool  { return class[c] == cWord }
func urlChar(c byte) bool   { return class[c] == cWord || c == '-' }
func slackChar(c byte) bool { return isAlnum(c) || c == '-' }
