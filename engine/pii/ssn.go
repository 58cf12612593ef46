package pii

// US Social Security numbers: AAA-GG-SSSS or AAA GG SSSS (one separator, used twice).
// Numbers the SSA never issues are rejected: area 000, 666 and 900–999, group 00, serial
// 0000. Nine bare digits are not flagged: without separators an SSN cannot be told from
// any other nine-digit id; nor is a spaced one inside a row of numbers.

// ssn matches an SSN at text[i]; it returns the end or -1.
func ssn(text string, i int) int {
	if i+11 > len(text) || !digits(text, i, 3) || !digits(text, i+4, 2) || !digits(text, i+7, 4) {
		return -1
	}
	sep := text[i+3]
	if sep != '-' && sep != ' ' || text[i+6] != sep {
		return -1
	}
	a, g, s := text[i:i+3], text[i+4:i+6], text[i+7:i+11]
	if a == "000" || a == "666" || a[0] == '9' || g == "00" || s == "0000" {
		return -1
	}
	if !numberEnds(text, i+11) {
		return -1
	}
	// Spaced, it must stand alone: "16 0 640 79 1818 1824" is a row of numbers.
	if sep == ' ' && (i >= 2 && text[i-1] == ' ' && isDigit(text[i-2]) || i+12 < len(text) && text[i+11] == ' ' && isDigit(text[i+12])) {
		return -1
	}
	return i + 11
}
