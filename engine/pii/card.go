package pii

// Payment card numbers: 13–19 digits, written compact (4111111111111111) or in groups
// separated by one kind of separator, a single space or '-' (4111 1111 1111 1111,
// 3782-822463-10005), whose first group has four digits. A candidate counts only when its
// Luhn checksum holds and its prefix and length belong to a major scheme:
//
//	Visa        4                                  13, 16, 19 digits
//	Mastercard  51–55, 2221–2720                   16
//	Amex        34, 37                             15
//	Discover    6011, 644–649, 65                  16–19
//	JCB         3528–3589                          16–19
//	Diners      300–305, 36, 38                    14–19
//
// Together the checks reject about 99% of random digit runs of those lengths; what is left
// is a number that a payment form would accept. A compact run must moreover have one of
// the lengths cards are actually issued with in volume — 13 or 16 (Visa), 15 (Amex), 14 or
// 16 (Diners), 16 (the others): a bare 19-digit run is a 64-bit integer far more often than
// a card, so 17–19 digits count only when grouped. A number right after a minus sign is a
// negative integer, not a card.

// cardCompact matches the digit run text[i:j] as a card number; it returns j or -1.
func cardCompact(text string, i, j int) int {
	if d := j - i; d > 16 || !numberEnds(text, j) || !cardValid(text[i:j], d) {
		return -1
	}
	return j
}

// cardGrouped matches a grouped card number starting with the four digits at text[i]; it
// returns the end or -1. When more groups follow than belong to the card ("4111 1111
// 1111 1111 12 pcs"), the longest valid prefix of whole groups wins; with '-' the whole
// run must be the card.
func cardGrouped(text string, i int) int {
	n := len(text)
	sep := text[i+4]
	var ends [8]int // end of each group
	var total [8]int
	g, d, j := 0, 0, i
	for g < len(ends) {
		k := j
		for k < n && isDigit(text[k]) {
			k++
		}
		if k-j < 3 && g > 0 || k-j > 6 || d+k-j > 19 {
			break
		}
		d += k - j
		ends[g], total[g] = k, d
		g++
		if k+1 >= n || text[k] != sep || !isDigit(text[k+1]) {
			break
		}
		j = k + 1
	}
	for g--; g > 0; g-- {
		end := ends[g]
		if total[g] >= 13 && (numberEnds(text, end) || sep == ' ' && text[end] == ' ') && cardValid(text[i:end], total[g]) {
			return end
		}
	}
	return -1
}

// cardValid checks the scheme prefix, the length (digits) and the Luhn sum of s, digits
// with separators.
func cardValid(s string, digits int) bool {
	p, got := 0, 0 // the first four digits
	for i := 0; i < len(s) && got < 4; i++ {
		if isDigit(s[i]) {
			p = p*10 + int(s[i]-'0')
			got++
		}
	}
	p2, p3 := p/100, p/10
	ok := false
	switch {
	case p/1000 == 4:
		ok = digits == 13 || digits == 16 || digits == 19
	case p2 >= 51 && p2 <= 55 || p >= 2221 && p <= 2720:
		ok = digits == 16
	case p2 == 34 || p2 == 37:
		ok = digits == 15
	case p == 6011 || p2 == 65 || p3 >= 644 && p3 <= 649:
		ok = digits >= 16
	case p >= 3528 && p <= 3589:
		ok = digits >= 16
	case p3 >= 300 && p3 <= 305 || p2 == 36 || p2 == 38:
		ok = digits >= 14
	}
	return ok && luhn(s)
}

// luhn reports whether the digits of s (other bytes are skipped) pass the Luhn check.
func luhn(s string) bool {
	sum, double := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if !isDigit(c) {
			continue
		}
		v := int(c - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}
