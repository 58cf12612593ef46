package pii

import "strings"

// Phone numbers come in two shapes only; a bare run of digits is never a phone (it is far
// more often an id, an amount or a timestamp).
//
//   - E.164 with its '+': "+" then 8–15 digits, the first 1–9, grouped by single spaces,
//     '-' or '.', with optional parenthesised groups: +1 (415) 555-2671, +44 20 7946 0958,
//     +33 1 23 45 67 89, +44 (0)20 7946 0958. The first group, the country code, has 1–3
//     digits (+1130 2010 is a time-zone offset and a year). Written without separators
//     (+14155552671) the number needs 10 digits or more: shorter ones are signed integers
//     far more often than the phone numbers of the few countries with very short numbers.
//   - North American (NANP): (415) 555-2671, (415)555-2671, 415-555-2671, 415.555.2671,
//     1-415-555-2671, 1 (415) 555-2671 — area code and exchange starting with 2–9, neither
//     a service code N11, the area code not a reserved N9X (so 999.999.9999 is a version).
//
// A number labelled as an id right before it ("Order #…", "ticket: …", "invoice no. …")
// is not a phone even when shaped like one.

// e164 matches a phone number at the '+' in text[i]; it returns the end or -1.
func e164(text string, i int) int {
	n := len(text)
	j := i + 1
	if j >= n || text[j] < '1' || text[j] > '9' {
		return -1
	}
	digits, groups, first, end := 0, 0, 0, -1
	dots := false
	for {
		paren := j < n && text[j] == '('
		if paren {
			j++
		}
		k := j
		for k < n && isDigit(text[k]) {
			k++
		}
		g := k - j
		if g == 0 || paren && (k >= n || text[k] != ')') {
			break
		}
		if digits+g > 15 {
			// Too long: not a phone, unless a space separates a following number.
			if groups == 0 || text[j-1] != ' ' && !(paren && text[j-2] == ' ') {
				return -1
			}
			break
		}
		digits += g
		groups++
		if groups == 1 {
			first = g
		}
		if paren {
			k++
		}
		end, j = k, k
		if j+1 < n && (text[j] == ' ' || text[j] == '-' || text[j] == '.') && (isDigit(text[j+1]) || text[j+1] == '(') {
			dots = dots || text[j] == '.'
			j++
			continue
		}
		if j < n && (text[j] == '(' || paren && isDigit(text[j])) {
			continue
		}
		break
	}
	if groups == 1 && digits < 10 || groups > 1 && (digits < 8 || first > 3) || dots && groups < 3 || !numberEnds(text, end) {
		return -1
	}
	return end
}

// nanp matches a North-American number at text[i] (its area code, '(' or a digit); it
// returns the end or -1.
func nanp(text string, i int) int {
	n := len(text)
	var sep byte // the separator after the area code, 0 after a parenthesised one
	j := i
	if text[j] == '(' {
		if j+5 > n || !digits(text, j+1, 3) || text[j+4] != ')' {
			return -1
		}
		j += 5
		if j < n && (text[j] == ' ' || text[j] == '-') {
			j++
		}
	} else {
		if j+4 > n || !digits(text, j, 3) {
			return -1
		}
		sep = text[j+3]
		if sep != '-' && sep != '.' {
			return -1
		}
		j += 4
	}
	a := i + boolInt(sep == 0) // area code
	if j+8 > n || !digits(text, j, 3) || !digits(text, j+4, 4) || !nanpCode(text[a:a+3]) || !nanpCode(text[j:j+3]) || text[a+1] == '9' {
		return -1
	}
	s2 := text[j+3]
	if sep != 0 && s2 != sep || sep == 0 && s2 != '-' && s2 != '.' && s2 != ' ' {
		return -1
	}
	end := j + 8
	if !numberEnds(text, end) {
		return -1
	}
	return end
}

// nanpCode reports whether an area code or exchange is a possible one: NXX with N 2–9,
// not N11 (service codes such as 911).
func nanpCode(c string) bool {
	return c[0] >= '2' && !(c[1] == '1' && c[2] == '1')
}

// labeledID reports whether the number at text[i] is labelled as an identifier: right
// after '#', or after a word such as "order" or "ticket" (optionally followed by "no",
// "number" and punctuation).
func labeledID(text string, i int) bool {
	if i > 0 && text[i-1] == '#' {
		return true
	}
	w, j := wordBefore(text, i)
	if w == "" {
		return false
	}
	for _, x := range [...]string{"no", "nr", "num", "number"} {
		if strings.EqualFold(w, x) {
			if w, _ = wordBefore(text, j); w == "" {
				return false
			}
			break
		}
	}
	for _, x := range idWords {
		if strings.EqualFold(w, x) {
			return true
		}
	}
	return false
}

var idWords = [...]string{
	"order", "invoice", "ticket", "tracking", "ref", "reference", "sku", "serial", "id",
	"confirmation", "booking", "transaction", "txn", "shipment", "parcel", "po", "part",
}

// wordBefore returns the letters-only word before text[i], skipping a few label
// separators, and where it starts.
func wordBefore(text string, i int) (string, int) {
	j := i
	for j > 0 && i-j < 4 && strings.IndexByte(" \t#:.=-", text[j-1]) >= 0 {
		j--
	}
	e := j
	for j > 0 && e-j < 16 && (isUpper(text[j-1]) || isLower(text[j-1])) {
		j--
	}
	if j > 0 && class[text[j-1]] == cWord {
		return "", j
	}
	return text[j:e], j
}

// digits reports whether text[i:i+k] exists and is all digits.
func digits(text string, i, k int) bool {
	if i < 0 || i+k > len(text) {
		return false
	}
	for _, c := range []byte(text[i : i+k]) {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
