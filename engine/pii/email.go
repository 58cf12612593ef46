package pii

// E-mail addresses, RFC 5321-ish, anchored on '@': a local part of 1–64 bytes of
// [A-Za-z0-9._%+-] (no leading, trailing or doubled dot) and a domain of at least two
// dot-separated labels of [A-Za-z0-9-] (1–63 bytes, no leading or trailing '-'), whose last
// label, the TLD, is two or more letters. Both parts are ASCII: an internationalised
// address is found only from its ASCII part on.
//
// Not addresses, though shaped like one: scp-style Git remotes (git@github.com:org/repo —
// the domain followed by ':' and a path) and image density suffixes (icon@2x.png).

// email matches an address around the '@' at text[at], not starting before floor; it
// returns its start and end, or end -1.
func email(text string, at, floor int) (int, int) {
	n := len(text)
	s := at
	for s > floor && at-s <= 64 && localChar(text[s-1]) {
		s--
	}
	if at-s > 64 {
		return -1, -1
	}
	for s < at && (text[s] == '.' || text[s] == '-' || text[s] == '+') {
		s++
	}
	if s == at || text[at-1] == '.' {
		return -1, -1
	}
	for k := s + 1; k < at; k++ {
		if text[k] == '.' && text[k-1] == '.' {
			return -1, -1
		}
	}

	e := at + 1
	for e < n && e-at <= 254 && domainChar(text[e]) {
		e++
	}
	if e < n && (domainChar(text[e]) || text[e] == '_' || text[e] == '@') {
		return -1, -1
	}
	for e > at+1 && (text[e-1] == '.' || text[e-1] == '-') {
		e--
	}
	// scp-style remote: host:path.
	if e+1 < n && text[e] == ':' && (class[text[e+1]] == cWord || text[e+1] == '/' || text[e+1] == '~' || text[e+1] == '.') {
		return -1, -1
	}
	labels, l := 0, ""
	for k, ls := at+1, at+1; k <= e; k++ {
		if k < e && text[k] != '.' {
			continue
		}
		l = text[ls:k]
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return -1, -1
		}
		if labels == 0 && len(l) >= 2 && l[len(l)-1] == 'x' && digits(l, 0, len(l)-1) {
			return -1, -1 // icon@2x.png
		}
		labels++
		ls = k + 1
	}
	if labels < 2 || len(l) < 2 {
		return -1, -1
	}
	for k := 0; k < len(l); k++ { // the TLD
		if !isUpper(l[k]) && !isLower(l[k]) {
			return -1, -1
		}
	}
	return s, e
}

func localChar(c byte) bool {
	return class[c] == cWord || c == '.' || c == '%' || c == '+' || c == '-'
}

func domainChar(c byte) bool { return isAlnum(c) || c == '.' || c == '-' }
