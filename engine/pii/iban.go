package pii

// IBANs: a country code, two check digits and the country's BBAN, upper case, written
// compact (DE89370400440532013000) or in groups of four separated by single spaces
// (DE89 3704 0044 0532 0130 00). A candidate counts only when its total length is the one
// registered for its country (so only countries in the IBAN registry, below, are known)
// and the ISO 7064 mod-97 check gives 1.

// ibanLen holds the registered IBAN length per country code, indexed by
// (c1-'A')*26 + c2-'A'; 0 means the country issues no IBAN.
var ibanLen = func() (t [26 * 26]uint8) {
	for _, e := range []struct {
		cc string
		n  uint8
	}{
		// SEPA
		{"AD", 24}, {"AT", 20}, {"BE", 16}, {"BG", 22}, {"CH", 21}, {"CY", 28}, {"CZ", 24},
		{"DE", 22}, {"DK", 18}, {"EE", 20}, {"ES", 24}, {"FI", 18}, {"FR", 27}, {"GB", 22},
		{"GI", 23}, {"GR", 27}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IS", 26}, {"IT", 27},
		{"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MT", 31}, {"NL", 18},
		{"NO", 15}, {"PL", 28}, {"PT", 25}, {"RO", 24}, {"SE", 24}, {"SI", 19}, {"SK", 24},
		{"SM", 27}, {"VA", 22},
		// The rest of the registry
		{"AE", 23}, {"AL", 28}, {"AZ", 28}, {"BA", 20}, {"BH", 22}, {"BI", 27}, {"BR", 29},
		{"BY", 28}, {"CR", 22}, {"DJ", 27}, {"DO", 28}, {"EG", 29}, {"FK", 18}, {"FO", 18},
		{"GE", 22}, {"GL", 18}, {"GT", 28}, {"IL", 23}, {"IQ", 23}, {"JO", 30}, {"KW", 30},
		{"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LY", 25}, {"MD", 24}, {"ME", 22}, {"MK", 19},
		{"MN", 20}, {"MR", 27}, {"MU", 30}, {"NI", 28}, {"OM", 23}, {"PK", 24}, {"PS", 29},
		{"QA", 29}, {"RS", 22}, {"RU", 33}, {"SA", 24}, {"SC", 31}, {"SD", 18}, {"SO", 23},
		{"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VG", 24},
		{"XK", 20}, {"YE", 30},
	} {
		t[int(e.cc[0]-'A')*26+int(e.cc[1]-'A')] = e.n
	}
	return t
}()

// iban matches an IBAN at text[i], an upper-case letter; it returns the end or -1.
func iban(text string, i int) int {
	n := len(text)
	if i+15 > n || !isUpper(text[i+1]) || !isDigit(text[i+2]) || !isDigit(text[i+3]) {
		return -1
	}
	want := int(ibanLen[int(text[i]-'A')*26+int(text[i+1]-'A')])
	if want == 0 {
		return -1
	}
	if check := text[i+2 : i+4]; check == "00" || check == "01" || check == "99" {
		return -1
	}
	j, got := i+4, 4
	if text[j] == ' ' {
		// Groups of four; only the last may be shorter.
		for got < want {
			if j+1 >= n || text[j] != ' ' {
				return -1
			}
			j++
			k := j
			for k < n && k-j < 4 && got < want && ibanChar(text[k]) {
				k++
				got++
			}
			if k-j < 4 && got < want || k == j {
				return -1
			}
			j = k
		}
	} else {
		for j < n && ibanChar(text[j]) {
			j++
		}
		got = j - i
	}
	if got != want || j < n && class[text[j]] == cWord || !mod97(text[i:j]) {
		return -1
	}
	return j
}

func ibanChar(c byte) bool { return isDigit(c) || isUpper(c) }

// mod97 reports whether the IBAN s (spaces skipped) passes ISO 7064 MOD 97-10: moving its
// first four characters to the end and reading letters as 10–35 gives a number ≡ 1 mod 97.
func mod97(s string) bool {
	r := 0
	add := func(c byte) {
		switch {
		case isDigit(c):
			r = (r*10 + int(c-'0')) % 97
		case isUpper(c):
			r = (r*100 + int(c-'A') + 10) % 97
		}
	}
	for i := 4; i < len(s); i++ {
		add(s[i])
	}
	for i := 0; i < 4; i++ {
		add(s[i])
	}
	return r == 1
}
