package pii

import (
	"net/netip"
	"strings"
)

// IP addresses.
//
// IPv4: four dotted decimal octets, each 0–255 without leading zeros, that are not part of
// a longer dotted sequence (10.20.30.40.50, 10.0.0.1.tar.gz, 10.2.3.4-beta and v10.2.3.4
// are versions or file names, not addresses). Private, loopback and link-local addresses
// do count: an internal address reveals the inside of a network and is as sensitive as a
// public one. What does not name a host is not reported: anything in 0.0.0.0/8, the
// limited broadcast 255.255.255.255, netmasks (255.255.255.0, 255.255.0.0, …) and class-A
// bases n.0.0.0 (which is also how four-part versions like 1.0.0.0 look). Nor are quads
// that read as versions: all four parts single digits (1.5.4.1, 3.6.1.1 — the hosts they
// could name are a few public resolvers such as 1.1.1.1 and 8.8.8.8, not personal data),
// or labelled as a section or version ("section 4.1.12.3", "§ 3.1.1.23", "version:
// 2.1.0.17"). Other four-part versions (Git 1.7.12.1) cannot be told from addresses and
// are reported.
//
// IPv6: anchored on ':', the candidate is the run of hex digits and colons around it (plus
// a trailing dotted IPv4 part) and must parse with net/netip. Short forms that code is
// full of are not addresses here: at least two colons, and either three non-empty groups
// or a group of four hex digits (fe80::1 and 2001:db8::1 count; ::1, a::b and Python's
// x[1::2] do not).

// ipv4 matches an IPv4 address at text[i], a digit; it returns the end or -1.
func ipv4(text string, i int) int {
	n := len(text)
	var oct [4]int
	j := i
	for k := range oct {
		if k > 0 {
			if j >= n || text[j] != '.' {
				return -1
			}
			j++
		}
		s, v := j, 0
		for j < n && isDigit(text[j]) && j-s < 4 {
			v = v*10 + int(text[j]-'0')
			j++
		}
		if d := j - s; d == 0 || d > 3 || v > 255 || d > 1 && text[s] == '0' {
			return -1
		}
		oct[k] = v
	}
	if j < n {
		c := text[j]
		if class[c] == cWord {
			return -1
		}
		if j+1 < n {
			next := text[j+1]
			// 1.2.3.4.5, 1.2.3.4.tar, 1.2.3.4-rc1, 1.2.3.4+build; a range
			// 10.0.0.1-10.0.0.9 is fine.
			if c == '.' && class[next] == cWord || c == '-' && (isUpper(next) || isLower(next)) || c == '+' && class[next] == cWord {
				return -1
			}
		}
	}
	if oct[0] == 0 || oct[1] == 0 && oct[2] == 0 && oct[3] == 0 || oct[0] == 255 && netmask(oct) ||
		oct[0] < 10 && oct[1] < 10 && oct[2] < 10 && oct[3] < 10 {
		return -1
	}
	return j
}

// sectionLabel reports whether the number at text[i] is labelled as a section or a
// version: "section 4.1.2.3", "§ 4.1.2.3", "version: 2.1.0.7".
func sectionLabel(text string, i int) bool {
	j := i
	for j > 0 && i-j < 3 && (text[j-1] == ' ' || text[j-1] == '\t') {
		j--
	}
	if j >= 2 && text[j-2:j] == "§" {
		return true
	}
	w, _ := wordBefore(text, i)
	for _, x := range sectionWords {
		if strings.EqualFold(w, x) {
			return true
		}
	}
	return false
}

var sectionWords = [...]string{
	"section", "sections", "sec", "chapter", "clause", "paragraph", "para", "appendix", "rule",
	"step", "item", "figure", "fig", "table", "version", "versions", "ver", "release",
	"build", "rev", "revision", "term", "article", "art", "part", "oid",
}

// netmask reports whether the octets are a run of one bits followed by zero bits
// (255.255.255.255 included).
func netmask(oct [4]int) bool {
	v := uint32(oct[0])<<24 | uint32(oct[1])<<16 | uint32(oct[2])<<8 | uint32(oct[3])
	inv := ^v
	return inv&(inv+1) == 0
}

// ipv6 looks for an IPv6 address around the ':' at text[i], not starting before floor. It
// returns the address's start and end (end -1 when there is none) and the offset up to
// which the ':'s need not be tried again.
func ipv6(text string, i, floor int) (start, end, tried int) {
	n := len(text)
	s := i
	for s > floor && i-s < 40 && (isHex(text[s-1]) || text[s-1] == ':') {
		s--
	}
	e := i + 1
	for e < n && e-s < 46 && (isHex(text[e]) || text[e] == ':' || text[e] == '.') {
		e++
	}
	tried = e
	if s > 0 && (class[text[s-1]] == cWord || text[s-1] == '.') || e < n && class[text[e]] == cWord {
		return -1, -1, tried
	}
	for e > i && text[e-1] == '.' {
		e--
	}
	if e-1 > s && text[e-1] == ':' && text[e-2] != ':' {
		e--
	}
	cand := text[s:e]
	// Cheap structure checks first: most candidates (times, MACs, hashes) fail here, and
	// a failing netip.ParseAddr allocates its error.
	colons, groups, long, compressed := 0, 0, false, false
	run, dotted, tail := 0, false, false
	for k := 0; k <= len(cand); k++ {
		if k < len(cand) && cand[k] != ':' {
			run++
			dotted = dotted || cand[k] == '.'
			continue
		}
		if k < len(cand) {
			colons++
			compressed = compressed || k > 0 && cand[k-1] == ':'
		}
		if dotted && k < len(cand) {
			return -1, -1, tried // an IPv4 part can only be last
		}
		tail = dotted
		if run > 4 && !dotted || run > 15 {
			return -1, -1, tried
		}
		if run > 0 {
			groups++
			long = long || run >= 4
		}
		run, dotted = 0, false
	}
	if colons < 2 || colons > 7 || groups < 3 && !long {
		return -1, -1, tried
	}
	if !compressed && colons != 7 && !(colons == 6 && tail) {
		return -1, -1, tried
	}
	a, err := netip.ParseAddr(cand)
	if err != nil || !a.Is6() {
		return -1, -1, tried
	}
	return s, e, tried
}
