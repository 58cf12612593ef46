package pii

import "fmt"

// Type is a kind of personal or secret data. Its string is the key the policy sees in
// input.pii.
type Type string

// The detected types.
const (
	Email      Type = "email"
	Phone      Type = "phone"
	CreditCard Type = "credit_card"
	SSN        Type = "ssn"
	IBAN       Type = "iban"
	IP         Type = "ip"
	Secret     Type = "secret" // cloud and API keys, JWTs, private-key blocks
)

// Valid reports whether t is one of the detected types; NewScanner panics on any other, so
// callers turning configuration strings into Types check them with Valid first.
func (t Type) Valid() bool {
	_, ok := kindOf(t)
	return ok
}

// Finding is one detected item: text[Start:End] of the scanned text, in bytes.
type Finding struct {
	Type       Type
	Start, End int
}

// Counts is the number of findings per type. It holds only non-zero entries.
type Counts map[Type]int

// kind is a Type as an index, for arrays and bit masks.
type kind uint8

const (
	kEmail kind = iota
	kPhone
	kCard
	kSSN
	kIBAN
	kIP
	kSecret
	numKinds
)

var kindTypes = [numKinds]Type{Email, Phone, CreditCard, SSN, IBAN, IP, Secret}

func kindOf(t Type) (kind, bool) {
	for k, kt := range kindTypes {
		if kt == t {
			return kind(k), true
		}
	}
	return 0, false
}

// mask is a set of kinds.
type mask uint8

func (m mask) has(k kind) bool { return m&(1<<k) != 0 }

const numeric = mask(1<<kPhone | 1<<kCard | 1<<kSSN | 1<<kIP)

// Scanner finds PII in text. It is immutable once built, so one Scanner is safe for
// concurrent use; build it once (NewScanner) and share it. The zero Scanner finds nothing.
type Scanner struct {
	m mask
	// Per byte c: in the low half, the properties (n*) the next byte must have for c to
	// be an anchor; in the high half, after[c].
	tab [256]uint32
}

// NewScanner returns a Scanner for the given types, or for every type when none is given.
// It panics on a Type that is not Valid.
func NewScanner(types ...Type) *Scanner {
	var m mask
	if len(types) == 0 {
		m = 1<<numKinds - 1
	}
	for _, t := range types {
		k, ok := kindOf(t)
		if !ok {
			panic(fmt.Sprintf("pii: unknown type %q", string(t)))
		}
		m |= 1 << k
	}
	s := &Scanner{m: m}
	set := func(on bool, bytes string, need uint16) {
		if on {
			for i := 0; i < len(bytes); i++ {
				s.tab[bytes[i]] |= uint32(need)
			}
		}
	}
	const upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	set(m&numeric != 0, "0123456789", nAny)
	set(m.has(kIBAN), upper, nUpper)
	set(m.has(kSecret), "A", nUpper)
	set(m.has(kSecret), "sr", nK)
	set(m.has(kSecret), "e", nY)
	set(m.has(kSecret), "x", nO)
	set(m.has(kSecret), "g", nHIL)
	set(m.has(kSecret), "-", nDash)
	set(m.has(kEmail), "@", nAlnum)
	set(m.has(kPhone), "+(", nDigit)
	set(m.has(kIP), ":", nHexColon)
	for c, a := range after {
		s.tab[c] |= uint32(a) << 16
	}
	return s
}

// Scan calls fn, synchronously, for every finding in text, in order: each finding starts
// at or after the end of the previous one (findings never overlap). Where candidates of two
// types would overlap, the one whose anchor the scan reaches first wins. Scan itself
// allocates nothing.
func (s *Scanner) Scan(text string, fn func(Finding)) {
	s.scan(text, func(k kind, start, end int) {
		fn(Finding{Type: kindTypes[k], Start: start, End: end})
	})
}

// Counts scans every text and returns the number of findings per type over all of them,
// or nil when there is none — the common case, which allocates nothing.
func (s *Scanner) Counts(texts ...string) Counts {
	var n [numKinds]int
	found := false
	for _, t := range texts {
		s.scan(t, func(k kind, _, _ int) {
			n[k]++
			found = true
		})
	}
	if !found {
		return nil
	}
	c := make(Counts, 2)
	for k, v := range n {
		if v > 0 {
			c[kindTypes[k]] = v
		}
	}
	return c
}

// Byte classes.
const (
	cOther = iota
	cWord  // [A-Za-z0-9_]
)

var class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		if isAlnum(byte(c)) || c == '_' {
			t[c] = cWord
		}
	}
	return t
}()

// Properties of the byte after a candidate anchor. The low byte holds those that make an
// anchor only at the start of a word, the high byte those that make one anywhere.
const (
	nAny   = 1 << iota // every byte: a digit starting a word is always a candidate
	nUpper             // an upper-case letter after an upper-case one: IBAN, AKIA, ASIA, AIza
	nK                 // sk-, sk_live_, rk_live_…
	nY                 // eyJ
	nO                 // xoxb-…
	nHIL               // ghp_…, github_pat_, glpat-
	_
	_
	nAlnum    // '@' then the domain
	nDigit    // '+' or '(' then a digit
	nHexColon // ':' then a hex digit or ':'
	nDash     // "--": "-----BEGIN"

	anywhere = 0xff00
)

var next = func() (t [256]uint16) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		t[c] = nAny
		if isUpper(b) {
			t[c] |= nUpper
		}
		switch b {
		case 'k':
			t[c] |= nK
		case 'y':
			t[c] |= nY
		case 'o':
			t[c] |= nO
		case 'h', 'i', 'l':
			t[c] |= nHIL
		case ':':
			t[c] |= nHexColon
		case '-':
			t[c] |= nDash
		}
		if isAlnum(b) {
			t[c] |= nAlnum
		}
		if isDigit(b) {
			t[c] |= nDigit
		}
		if isHex(b) {
			t[c] |= nHexColon
		}
	}
	return t
}()

// after[c] is the mask of next-byte properties that count after the byte c: all of them
// after a byte that ends a word (the next one starts a word), only the anywhere ones
// inside a word.
var after = func() (t [256]uint16) {
	for c := range t {
		t[c] = 0xffff
		if class[c] == cWord {
			t[c] = anywhere
		}
	}
	return t
}()

// scan is the single pass behind Scan, Counts and Redact. The loop looks at each byte and
// the next one through three small tables, without a data-dependent branch: a byte is a
// candidate anchor when it starts a word and it and its successor can begin something (a
// digit; upper-case pairs for IBANs and AWS/Google keys; "sk", "rk", "ey", "xo", "gh",
// "gi", "gl" for key prefixes), or when it is '@' before an alphanumeric, '+' or '(' before
// a digit, ':' before a hex digit or ':', or "--". Only candidates reach a detector, which
// validates just the window around its anchor. st.last is the end of the previous finding:
// nothing is reported before it, which keeps findings ordered and disjoint even for e-mail,
// whose anchor is in its middle.
func (s *Scanner) scan(text string, emit func(k kind, start, end int)) {
	var st state
	for i := s.skip(text, 0); i < len(text); i = s.skip(text, i+1) {
		var k kind
		start, end := i, -1
		switch text[i] {
		case '@':
			k = kEmail
			start, end = email(text, i, st.last)
		case ':':
			if i >= st.v6 {
				k = kIP
				start, end, st.v6 = ipv6(text, i, st.last)
			}
		case '+':
			if !prevWord(text, i) {
				k, end = kPhone, e164(text, i)
			}
		case '(':
			if !prevWord(text, i) && !labeledID(text, i) {
				k, end = kPhone, nanp(text, i)
			}
		case '-':
			k, end = kSecret, privateKey(text, i, &st.pemEnd)
		default:
			k, end = word(text, i, s.m, &st)
		}
		if end > 0 {
			emit(k, start, end)
			st.last = end
			i = end - 1
		}
	}
}

// state is what scan remembers between candidates. Besides ordering findings, it keeps
// the scan linear on hostile input: a detector that ran over a long stretch of text
// records how far it got, so the candidates inside that stretch do not run it again.
type state struct {
	last   int // end of the previous finding; nothing is reported before it
	v6     int // ':' before this offset were already tried as part of an IPv6 candidate
	sec    int // key prefixes before this offset lie in a token already tried
	pemEnd int // where "-----END " was found, see privateKey
}

// skip returns the offset of the first candidate anchor at or after i, or len(text). It
// is the hot loop: per byte three table loads, two ANDs and one branch that is almost
// never taken.
func (s *Scanner) skip(text string, i int) int {
	if i >= len(text) {
		return len(text)
	}
	tab, nt := &s.tab, &next
	pm := uint32(0xffff)
	if i > 0 {
		pm = tab[text[i-1]] >> 16
	}
	c := text[i]
	for j := i + 1; j < len(text); j++ {
		nx := text[j]
		t := tab[c]
		if t&uint32(nt[nx])&pm != 0 {
			return j - 1
		}
		pm, c = t>>16, nx
	}
	return len(text)
}

// word examines the word starting at text[i].
func word(text string, i int, m mask, st *state) (kind, int) {
	c := text[i]
	switch {
	case isDigit(c):
		if m&numeric != 0 {
			return number(text, i, m)
		}
	case isUpper(c):
		if m.has(kIBAN) {
			if end := iban(text, i); end > 0 {
				return kIBAN, end
			}
		}
		if c == 'A' && m.has(kSecret) && i >= st.sec {
			end, tried := secret(text, i)
			st.sec = tried
			return kSecret, end
		}
	case c == 's' || c == 'r' || c == 'g' || c == 'x' || c == 'e':
		if m.has(kSecret) && i >= st.sec {
			end, tried := secret(text, i)
			st.sec = tried
			return kSecret, end
		}
	}
	return 0, -1
}

// number examines a word starting with a digit: IPv4 addresses, North-American phone
// numbers, SSNs and card numbers all start this way.
func number(text string, i int, m mask) (kind, int) {
	n := len(text)
	j := i
	for j < n && isDigit(text[j]) {
		j++
	}
	d := j - i
	var sep byte
	if j < n {
		sep = text[j]
	}
	prev, prev2 := byte(0), byte(0)
	if i >= 1 {
		prev = text[i-1]
	}
	if i >= 2 {
		prev2 = text[i-2]
	}
	// Glued to a preceding number by '.' it is the tail of a longer dotted sequence
	// (version, date, address); after a lone '-' it is a negative number.
	if prev == '.' && isDigit(prev2) || prev == '-' && class[prev2] != cWord {
		return 0, -1
	}
	if sep == '.' && d <= 3 && m.has(kIP) && !(prev == '-' && isAlnum(prev2)) {
		if end := ipv4(text, i); end > 0 && !sectionLabel(text, i) {
			return kIP, end
		}
	}
	// Glued to a preceding number by '-' it is the tail of an id, a date or a range.
	if prev == '-' && isDigit(prev2) {
		return 0, -1
	}
	switch {
	case d == 3 && (sep == '-' || sep == '.' || sep == ' '):
		if m.has(kSSN) && sep != '.' {
			if end := ssn(text, i); end > 0 {
				return kSSN, end
			}
		}
		if m.has(kPhone) {
			if end := nanp(text, i); end > 0 && !labeledID(text, i) {
				return kPhone, end
			}
		}
	case d == 1 && text[i] == '1' && (sep == '-' || sep == '.' || sep == ' '):
		// 1-555-123-4567, 1 (555) 123-4567: the NANP trunk prefix.
		if m.has(kPhone) && j+1 < n {
			if end := nanp(text, j+1); end > 0 && !labeledID(text, i) {
				return kPhone, end
			}
		}
	case d >= 13:
		if m.has(kCard) {
			if end := cardCompact(text, i, j); end > 0 {
				return kCard, end
			}
		}
	case d == 4 && (sep == ' ' || sep == '-'):
		if m.has(kCard) {
			if end := cardGrouped(text, i); end > 0 {
				return kCard, end
			}
		}
	}
	return 0, -1
}

// numberEnds reports whether a number ending at text[end] really ends there: it is not
// followed by a word byte or '@' (then it is the local part of an e-mail address), nor
// glued by '.', '-' or ',' to more digits.
func numberEnds(text string, end int) bool {
	if end >= len(text) {
		return true
	}
	c := text[end]
	if class[c] == cWord || c == '@' {
		return false
	}
	if (c == '.' || c == '-' || c == ',') && end+1 < len(text) && isDigit(text[end+1]) {
		return false
	}
	return true
}

func prevWord(text string, i int) bool { return i > 0 && class[text[i-1]] == cWord }

func isDigit(c byte) bool { return c-'0' < 10 }
func isUpper(c byte) bool { return c-'A' < 26 }
func isLower(c byte) bool { return c-'a' < 26 }
func isAlnum(c byte) bool { return isDigit(c) || isUpper(c) || isLower(c) }
func isHex(c byte) bool   { return isDigit(c) || (c|0x20)-'a' < 6 }
