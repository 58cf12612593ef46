package pii

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

var all = NewScanner()

// scanAll returns every finding of s in text.
func scanAll(s *Scanner, text string) []Finding {
	var fs []Finding
	s.Scan(text, func(f Finding) { fs = append(fs, f) })
	return fs
}

// describe renders findings with their text, for failure messages.
func describe(text string, fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "\n\t%s %d:%d %q", f.Type, f.Start, f.End, text[f.Start:f.End])
	}
	if len(fs) == 0 {
		b.WriteString(" none")
	}
	return b.String()
}

// sample is one line of testdata/positives.
type sample struct {
	line       int
	typ        Type
	text       string
	start, end int
}

const openMark, closeMark = "⟦", "⟧"

// parseSample parses "<type> <sample>": markers delimit the expected finding (the whole
// sample without them); a sample written go:"…" is a Go string literal.
func parseSample(line int, s string) (sample, error) {
	typ, text, ok := strings.Cut(s, " ")
	if !ok {
		return sample{}, fmt.Errorf("line %d: no sample", line)
	}
	if lit, ok := strings.CutPrefix(text, "go:"); ok {
		u, err := strconv.Unquote(lit)
		if err != nil {
			return sample{}, fmt.Errorf("line %d: %v", line, err)
		}
		text = u
	}
	sm := sample{line: line, typ: Type(typ)}
	if !sm.typ.Valid() {
		return sample{}, fmt.Errorf("line %d: unknown type %q", line, typ)
	}
	i := strings.Index(text, openMark)
	if i < 0 {
		sm.text, sm.start, sm.end = text, 0, len(text)
		return sm, nil
	}
	text = text[:i] + text[i+len(openMark):]
	j := strings.Index(text, closeMark)
	if j < i {
		return sample{}, fmt.Errorf("line %d: unbalanced markers", line)
	}
	sm.text, sm.start, sm.end = text[:j]+text[j+len(closeMark):], i, j
	return sm, nil
}

func loadSamples(t testing.TB) []sample {
	t.Helper()
	f, err := os.Open("testdata/positives/samples.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []sample
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		s, err := parseSample(n, l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// loadNegatives returns the files of testdata/negatives by name.
func loadNegatives(t testing.TB) map[string]string {
	t.Helper()
	paths, err := filepath.Glob("testdata/negatives/*")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no negatives: %v", err)
	}
	out := make(map[string]string, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = string(b)
	}
	return out
}

// TestPositives: every sample of the corpus is found, with its type and exact span, and
// nothing else is.
func TestPositives(t *testing.T) {
	samples := loadSamples(t)
	perType := map[Type]int{}
	for _, s := range samples {
		perType[s.typ]++
		t.Run(fmt.Sprintf("%d_%s", s.line, s.typ), func(t *testing.T) {
			got := scanAll(all, s.text)
			want := Finding{Type: s.typ, Start: s.start, End: s.end}
			if len(got) != 1 || got[0] != want {
				t.Errorf("%q: want %s %q, got%s", s.text, want.Type, s.text[s.start:s.end], describe(s.text, got))
			}
			// The type's own scanner finds it too.
			if got := scanAll(NewScanner(s.typ), s.text); len(got) != 1 || got[0] != want {
				t.Errorf("NewScanner(%s) on %q: got%s", s.typ, s.text, describe(s.text, got))
			}
		})
	}
	for _, typ := range kindTypes {
		if perType[typ] < 5 {
			t.Errorf("only %d positive samples of %s", perType[typ], typ)
		}
	}
	t.Logf("%d positive samples: %v", len(samples), perType)
}

// TestNegatives: the prose, code and log corpus holds no PII, and none is found in it, in
// whole or line by line.
func TestNegatives(t *testing.T) {
	total := 0
	for name, text := range loadNegatives(t) {
		total += len(text)
		t.Run(name, func(t *testing.T) {
			if got := scanAll(all, text); len(got) != 0 {
				t.Errorf("false positives:%s", describe(text, got))
			}
			for i, l := range strings.Split(text, "\n") {
				if got := scanAll(all, l); len(got) != 0 {
					t.Errorf("line %d %q:%s", i+1, l, describe(l, got))
				}
			}
		})
	}
	t.Logf("%d bytes of negatives", total)
}

// TestPositivesInContext: every sample still yields exactly its finding when embedded in
// the negative corpus, at text start, in the middle and at text end.
func TestPositivesInContext(t *testing.T) {
	var neg strings.Builder
	for _, text := range loadNegatives(t) {
		neg.WriteString(text)
	}
	filler := neg.String()
	for _, s := range loadSamples(t) {
		for _, where := range []struct {
			name         string
			before, afer string
		}{
			{"start", "", "\n" + filler},
			{"middle", filler + "\n", "\n" + filler},
			{"end", filler + "\n", ""},
		} {
			text := where.before + s.text + where.afer
			want := Finding{Type: s.typ, Start: len(where.before) + s.start, End: len(where.before) + s.end}
			got := scanAll(all, text)
			if len(got) != 1 || got[0] != want {
				t.Errorf("line %d at %s: want %s %q, got %d findings:%s", s.line, where.name, s.typ,
					s.text[s.start:s.end], len(got), describe(text, got))
			}
		}
	}
}

// find is a table entry: text and the findings expected, as type and matched text.
type find struct {
	typ  Type
	text string
}

func checkTable(t *testing.T, cases []struct {
	name string
	text string
	want []find
}) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := scanAll(all, c.text)
			ok := len(got) == len(c.want)
			for i := 0; ok && i < len(got); i++ {
				ok = got[i].Type == c.want[i].typ && c.text[got[i].Start:got[i].End] == c.want[i].text
			}
			if !ok {
				t.Errorf("%q: want %v, got%s", c.text, c.want, describe(c.text, got))
			}
		})
	}
}

func TestEmail(t *testing.T) {
	checkTable(t, []struct {
		name string
		text string
		want []find
	}{
		{"plain", "a@b.io", []find{{Email, "a@b.io"}}},
		{"sentence end", "Mail me: a.b@c.example.", []find{{Email, "a.b@c.example"}}},
		{"two", "a@x.com,b@y.org", []find{{Email, "a@x.com"}, {Email, "b@y.org"}}},
		{"leading dots trimmed", "...a@b.co", []find{{Email, "a@b.co"}}},
		{"numeric local", "4155552671@txt.att.net", []find{{Email, "4155552671@txt.att.net"}}},
		{"phone-ish local", "+14155552671@example.com", []find{{Email, "14155552671@example.com"}}},
		{"url credentials", "https://user:hunter2@db.example.com/x", []find{{Email, "hunter2@db.example.com"}}},
		{"no tld", "root@localhost", nil},
		{"numeric tld", "lodash@4.17.21", nil},
		{"single letter tld", "a@b.c", nil},
		{"no local", "@example.com", nil},
		{"decorator", "@app.route('/x')", nil},
		{"double dot", "a..b@example.com", nil},
		{"trailing dot local", "a.@example.com", nil},
		{"scp remote", "git@github.com:org/repo.git", nil},
		{"density suffix", "logo@2x.png", nil},
		{"docker digest", "nginx@sha256:abc123", nil},
		{"label hyphen", "a@-x.com", nil},
		{"long local", strings.Repeat("a", 65) + "@x.com", nil},
		{"underscore after", "a@b.com_x", nil},
	})
}

func TestPhone(t *testing.T) {
	checkTable(t, []struct {
		name string
		text string
		want []find
	}{
		{"e164", "+14155552671", []find{{Phone, "+14155552671"}}},
		{"e164 trailing number", "+1 415 555 2671 5 times", []find{{Phone, "+1 415 555 2671 5"}}},
		{"e164 overflow space", "+1 415 555 2671 12345", []find{{Phone, "+1 415 555 2671"}}},
		{"nanp", "Call 415-555-2671.", []find{{Phone, "415-555-2671"}}},
		{"nanp trunk dots", "1.415.555.2671", []find{{Phone, "1.415.555.2671"}}},
		{"two", "415-555-2671 / (212) 555-0147", []find{{Phone, "415-555-2671"}, {Phone, "(212) 555-0147"}}},
		{"e164 zero country", "+0123456789", nil},
		{"e164 short", "+1234567", nil},
		{"e164 compact 9", "{+123456789, 0.1}", nil},
		{"e164 grouped 9", "+45 12 34 56 78 9", []find{{Phone, "+45 12 34 56 78 9"}}},
		{"tz offset and year", "Thu Feb 04 21:00:57 +1130 2010", nil},
		{"e164 too long", "+1234567890123456", nil},
		{"e164 amount", "+1500000.00", nil},
		{"e164 after word", "x+14155552671", nil},
		{"timezone", "10:31:08 +0530", nil},
		{"bare 10 digits", "4155552671", nil},
		{"bare 11 digits", "14155552671", nil},
		{"spaces only", "415 555 2671", nil},
		{"mixed separators", "415-555.2671", nil},
		{"area 1xx", "115-555-2671", nil},
		{"exchange 0xx", "415-055-2671", nil},
		{"reserved area N9X", "999.999.9999", nil},
		{"service code", "415-911-2671", nil},
		{"iso date", "2024-03-15", nil},
		{"date dots", "15.03.2024", nil},
		{"time", "14:45:07", nil},
		{"amount", "$1,299.99", nil},
		{"order hash", "Order #415-555-2671", nil},
		{"order number", "order number 415-555-2671", nil},
		{"invoice no", "Invoice no. 415-555-2671", nil},
		{"ticket colon", "ticket: (415) 555-2671", nil},
		{"longer dashed id", "415-555-2671-22", nil},
		{"inside id", "12-415-555-2671", nil},
		{"function call", "f(415) 555-2671", nil},
		{"version", "1.2.3", nil},
	})
}

func TestCard(t *testing.T) {
	checkTable(t, []struct {
		name string
		text string
		want []find
	}{
		{"visa", "4111111111111111", []find{{CreditCard, "4111111111111111"}}},
		{"visa 19 grouped", "4111 1111 1111 1111 110", []find{{CreditCard, "4111 1111 1111 1111 110"}}},
		{"visa 19 compact", "4111111111111111110", nil},
		{"negative number", "x := -4111111111111111", nil},
		{"int64 list", "{-4576982950128230565, 6011544915663598137}", nil},
		{"amex groups", "3782 822463 10005", []find{{CreditCard, "3782 822463 10005"}}},
		{"mc 2-series", "2223-0031-2200-3222", []find{{CreditCard, "2223-0031-2200-3222"}}},
		{"two", "4111111111111111, 5555555555554444", []find{{CreditCard, "4111111111111111"}, {CreditCard, "5555555555554444"}}},
		{"bad luhn", "4111111111111112", nil},
		{"unknown prefix", "1234567812345670", nil},
		{"visa wrong length", "411111111111116", nil},
		{"amex wrong length", "3782822463100050", nil},
		{"mixed separators", "4111 1111-1111 1111", nil},
		{"too long", "41111111111111111111", nil},
		{"glued to letters", "x4111111111111111", nil},
		{"hex", "4111111111111111abc", nil},
		{"decimal", "4111111111111111.5", nil},
		{"dashed tail", "4111-1111-1111-1111-22", nil},
		{"snowflake", "1460323737035677698", nil},
		{"epoch ms", "1710498645123", nil},
	})
}

func TestSSN(t *testing.T) {
	checkTable(t, []struct {
		name string
		text string
		want []find
	}{
		{"dashes", "123-45-6789", []find{{SSN, "123-45-6789"}}},
		{"spaces", "SSN 123 45 6789.", []find{{SSN, "123 45 6789"}}},
		{"area 000", "000-12-3456", nil},
		{"area 666", "666-12-3456", nil},
		{"area 9xx", "912-34-5678", nil},
		{"group 00", "123-00-4567", nil},
		{"serial 0000", "123-45-0000", nil},
		{"mixed separators", "123-45 6789", nil},
		{"bare", "123456789", nil},
		{"longer", "123-45-6789-1", nil},
		{"dots", "123.45.6789", nil},
		{"spaced in a row of numbers", "16 0 640 79 1818 1824", nil},
		{"spaced after a number", "0 640 79 1818", nil},
	})
}

func TestIBAN(t *testing.T) {
	checkTable(t, []struct {
		name string
		text string
		want []find
	}{
		{"compact", "DE89370400440532013000", []find{{IBAN, "DE89370400440532013000"}}},
		{"spaced", "GB82 WEST 1234 5698 7654 32", []find{{IBAN, "GB82 WEST 1234 5698 7654 32"}}},
		{"spaced then number", "GB82 WEST 1234 5698 7654 32 1234", []find{{IBAN, "GB82 WEST 1234 5698 7654 32"}}},
		{"bad checksum", "DE89370400440532013001", nil},
		{"wrong length", "DE8937040044053201300", nil},
		{"unknown country", "ZZ89370400440532013000", nil},
		{"lower case", "de89370400440532013000", nil},
		{"glued", "XDE89370400440532013000", nil},
		{"bad grouping", "GB82 WEST 12345 698 7654 32", nil},
		{"word after", "DE89370400440532013000abc", nil},
	})
}

func TestIP(t *testing.T) {
	checkTable(t, []struct {
		name string
		text string
		want []find
	}{
		{"v4", "1.2.3.40", []find{{IP, "1.2.3.40"}}},
		{"single digits are a version", "fixed in 1.5.4.1.", nil},
		{"public resolver", "nameserver 8.8.8.8", nil},
		{"oid", "(OID 1.3.101.112)", nil},
		{"v4 private", "192.168.0.1", []find{{IP, "192.168.0.1"}}},
		{"v4 loopback", "127.0.0.1", []find{{IP, "127.0.0.1"}}},
		{"v4 port", "10.1.1.1:8080", []find{{IP, "10.1.1.1"}}},
		{"v4 sentence end", "at 10.1.1.1.", []find{{IP, "10.1.1.1"}}},
		{"v4 cidr", "192.168.0.0/16", []find{{IP, "192.168.0.0"}}},
		{"v6 full", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", []find{{IP, "2001:0db8:85a3:0000:0000:8a2e:0370:7334"}}},
		{"v6 trailing colon", "at 2001:db8::1: done", []find{{IP, "2001:db8::1"}}},
		{"v6 bracket port", "[2001:db8::1]:443", []find{{IP, "2001:db8::1"}}},
		{"v6 mapped", "::ffff:10.1.2.3", []find{{IP, "::ffff:10.1.2.3"}}},
		{"version 5 parts", "10.20.30.40.50", nil},
		{"version v", "v10.20.30.40", nil},
		{"section", "see section 4.1.12.3 of the RFC", nil},
		{"section sign", "§ 4.1.12.3", nil},
		{"labelled version", "Version: 2.1.0.17", nil},
		{"file name", "pkg-10.20.30.40.tar.gz", nil},
		{"prerelease", "10.20.30.40-rc1", nil},
		{"build meta", "10.20.30.40+build", nil},
		{"octet > 255", "256.1.1.1", nil},
		{"leading zero", "010.20.30.40", nil},
		{"three parts", "10.0.1", nil},
		{"unspecified", "0.0.0.0:8080", nil},
		{"zero net", "0.1.2.3", nil},
		{"broadcast", "255.255.255.255", nil},
		{"netmask", "255.255.255.0", nil},
		{"class a base", "2.0.0.0", nil},
		{"tail of dotted", "10.1.2.3.4", nil},
		{"v6 loopback", "::1", nil},
		{"slice", "a[1::2]", nil},
		{"reverse slice", "b[::-1]", nil},
		{"cpp scope", "std::vector", nil},
		{"rust path", "Vec::new()", nil},
		{"css", "a::before", nil},
		{"short groups", "a::b", nil},
		{"time", "10:30:45", nil},
		{"mac", "00:1a:2b:3c:4d:5e", nil},
		{"v6 no compression short", "1:2:3:4", nil},
		{"too many groups", "1:2:3:4:5:6:7:8:9", nil},
	})
}

func TestSecret(t *testing.T) {
	// Assembled at run time so that secret scanners do not flag this file.
	p := func(parts ...string) string { return strings.Join(parts, "") }
	aws := p("AK", "IAIOSFODNN7EXAMPLE")
	ghp := p("gh", "p_", "zQPxC5HChpoevbLJoLoaeTOdoe5c3veGprQF")
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
	checkTable(t, []struct {
		name string
		text string
		want []find
	}{
		{"aws", aws, []find{{Secret, aws}}},
		{"aws in quotes", `"` + aws + `"`, []find{{Secret, aws}}},
		{"aws too long", aws + "X", nil},
		{"aws lower after", aws + "x", nil},
		{"aws glued", "X" + aws, nil},
		{"github", "token=" + ghp, []find{{Secret, ghp}}},
		{"github short", p("gh", "p_abc123"), nil},
		{"jwt", "Bearer " + jwt + ".", []find{{Secret, jwt}}},
		{"jwt unsigned", jwt[:strings.LastIndexByte(jwt, '.')+1], []find{{Secret, jwt[:strings.LastIndexByte(jwt, '.')+1]}}},
		{"base64 json", "eyJuYW1lIjoiZ2F2ZWwifQ==", nil},
		{"jwt claims not json", "eyJhbGciOiJIUzI1NiJ9.abcdefghijklmnop.sig", nil},
		{"sk-learn", "pip install sk-learn scikit-learn", nil},
		{"sk words", "sk-this-is-a-long-kebab-case-name-without-digits", nil},
		{"sk short", "sk-12345", nil},
		{"openssh algorithm", "HostKeyAlgorithms sk-ecdsa-sha2-nistp256-cert-v01,sk-ssh-ed25519-cert-v01", nil},
		{"sk random run", p("s", "k-", "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"), []find{{Secret, p("s", "k-", "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6")}}},
		{"legacy encrypted key", p("-----BEGIN ", "RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123456789ABCDEF\n\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\n-----END RSA PRIVATE KEY-----"),
			[]find{{Secret, p("-----BEGIN ", "RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123456789ABCDEF\n\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\n-----END RSA PRIVATE KEY-----")}}},
		{"legacy encrypted key cut", p("-----BEGIN ", "RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123456789ABCDEF\n\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\n... rest omitted"),
			[]find{{Secret, p("-----BEGIN ", "RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123456789ABCDEF\n\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi")}}},
		{"one-line key", p("key=-----BEGIN ", "PRIVATE KEY----- MIIEvQIBADANBgkqhkiG9w0BAQEFAASC -----END PRIVATE KEY----- ok"),
			[]find{{Secret, p("-----BEGIN ", "PRIVATE KEY----- MIIEvQIBADANBgkqhkiG9w0BAQEFAASC -----END PRIVATE KEY-----")}}},
		{"private key header alone", p("files start with -----BEGIN ", "RSA PRIVATE KEY----- and end with a footer"), nil},
		{"private key empty template", p("-----BEGIN ", "PRIVATE KEY-----\n<paste here>\n-----END PRIVATE KEY-----"), nil},
		{"stripe no digit", p("sk_", "test_", "placeholderplaceholder"), nil},
		{"sk_buff", "struct sk_buff *skb", nil},
		{"public key", "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----", nil},
		{"certificate", "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa\n-----END CERTIFICATE-----", nil},
		{"dashes", "----- notes -----", nil},
		{"private key cut", p("-----BEGIN ", "EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oUGCzWbeJLbBoAoGCCqGSM49\nAwEHoUQDQgAE\n\nend of paste"),
			[]find{{Secret, p("-----BEGIN ", "EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oUGCzWbeJLbBoAoGCCqGSM49\nAwEHoUQDQgAE")}}},
	})
}

// TestMixed: findings of several types in one text come in order with exact spans.
func TestMixed(t *testing.T) {
	text := "Hi, I'm Jane (jane.doe@example.com, +44 20 7946 0958). Card 4111 1111 1111 1111, " +
		"SSN 536-22-1234, IBAN DE89 3704 0044 0532 0130 00, from 10.20.30.40 / 2001:db8::7. " +
		"Key AKIAIOSFODNN7EXAMPLE. Released v1.2.3.4 on 2024-03-15 at 10:30 for $1,299.99."
	want := []find{
		{Email, "jane.doe@example.com"}, {Phone, "+44 20 7946 0958"}, {CreditCard, "4111 1111 1111 1111"},
		{SSN, "536-22-1234"}, {IBAN, "DE89 3704 0044 0532 0130 00"}, {IP, "10.20.30.40"}, {IP, "2001:db8::7"},
		{Secret, "AKIAIOSFODNN7EXAMPLE"},
	}
	got := scanAll(all, text)
	if len(got) != len(want) {
		t.Fatalf("want %d findings, got%s", len(want), describe(text, got))
	}
	for i, f := range got {
		if f.Type != want[i].typ || text[f.Start:f.End] != want[i].text {
			t.Errorf("finding %d: want %s %q, got %s %q", i, want[i].typ, want[i].text, f.Type, text[f.Start:f.End])
		}
	}
	c := all.Counts(text, "and bob@example.org")
	wantC := Counts{Email: 2, Phone: 1, CreditCard: 1, SSN: 1, IBAN: 1, IP: 2, Secret: 1}
	if fmt.Sprint(c) != fmt.Sprint(wantC) {
		t.Errorf("Counts = %v, want %v", c, wantC)
	}
}

func TestNewScanner(t *testing.T) {
	text := "a@b.io 415-555-2671 4111111111111111 123-45-6789 DE89370400440532013000 10.1.2.3 AKIAIOSFODNN7EXAMPLE"
	for _, typ := range kindTypes {
		t.Run(string(typ), func(t *testing.T) {
			got := scanAll(NewScanner(typ), text)
			if len(got) != 1 || got[0].Type != typ {
				t.Errorf("got%s", describe(text, got))
			}
		})
	}
	if got := scanAll(NewScanner(Email, IP), text); len(got) != 2 {
		t.Errorf("Email+IP: got%s", describe(text, got))
	}
	if got := scanAll(&Scanner{}, text); len(got) != 0 {
		t.Errorf("zero Scanner found%s", describe(text, got))
	}
	if Type("emial").Valid() || !Email.Valid() {
		t.Error("Valid")
	}
	defer func() {
		if recover() == nil {
			t.Error("NewScanner(unknown) did not panic")
		}
	}()
	NewScanner("emial")
}

func TestCounts(t *testing.T) {
	if c := all.Counts(); c != nil {
		t.Errorf("Counts() = %v", c)
	}
	if c := all.Counts("nothing here", "", "version 1.2.3.4.5"); c != nil {
		t.Errorf("Counts(clean) = %v", c)
	}
	c := all.Counts("a@b.io", "c@d.io and 10.1.2.3")
	if len(c) != 2 || c[Email] != 2 || c[IP] != 1 {
		t.Errorf("Counts = %v", c)
	}
}

func TestAllocs(t *testing.T) {
	var neg strings.Builder
	for _, text := range loadNegatives(t) {
		neg.WriteString(text)
	}
	clean := neg.String()
	dirty := clean + " mail a@b.io, call +1 415 555 2671, key AKIAIOSFODNN7EXAMPLE, host fe80::1ff:fe23:4567:890a"
	n := 0
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"Counts clean", func() { _ = all.Counts(clean, clean) }},
		{"Scan clean", func() { all.Scan(clean, func(Finding) { n++ }) }},
		{"Scan dirty", func() { all.Scan(dirty, func(Finding) { n++ }) }},
		{"Redact clean", func() { _, _ = Redact(clean, nil, all) }},
		{"Redact types not present", func() { _, _ = Redact(dirty, map[Type]bool{IBAN: true}, all) }},
	} {
		if a := testing.AllocsPerRun(20, c.f); a != 0 {
			t.Errorf("%s: %v allocs per run", c.name, a)
		}
	}
}

func TestRedact(t *testing.T) {
	aws := "AKIA" + "IOSFODNN7EXAMPLE"
	for _, c := range []struct {
		name  string
		text  string
		types map[Type]bool
		want  string
		n     int
	}{
		{"email", "mail a@b.io now", map[Type]bool{Email: true}, "mail [REDACTED_EMAIL] now", 1},
		{"whole text", "a@b.io", nil, "[REDACTED_EMAIL]", 1},
		{"multiple", "a@b.io, c@d.io; 10.1.2.3", nil, "[REDACTED_EMAIL], [REDACTED_EMAIL]; [REDACTED_IP]", 3},
		{"adjacent", "a@b.io\n415-555-2671", nil, "[REDACTED_EMAIL]\n[REDACTED_PHONE]", 2},
		{"only some types", "a@b.io 415-555-2671 " + aws, map[Type]bool{Phone: true, Secret: true},
			"a@b.io [REDACTED_PHONE] [REDACTED_SECRET]", 2},
		{"false entries", "a@b.io 415-555-2671", map[Type]bool{Email: false, Phone: true}, "a@b.io [REDACTED_PHONE]", 1},
		{"every placeholder", "a@b.io +14155552671 4111111111111111 123-45-6789 DE89370400440532013000 10.1.2.3 " + aws, nil,
			"[REDACTED_EMAIL] [REDACTED_PHONE] [REDACTED_CREDIT_CARD] [REDACTED_SSN] [REDACTED_IBAN] [REDACTED_IP] [REDACTED_SECRET]", 7},
		// Overlapping candidates: the digits are the local part of an address, the
		// address is redacted whole.
		{"phone inside email", "+14155552671@sms.example.com", map[Type]bool{Email: true}, "+[REDACTED_EMAIL]", 1},
		{"ip after ssh user", "ssh root@10.1.2.3", nil, "ssh root@[REDACTED_IP]", 1},
		{"unicode around", "«a@b.io»—☎ (415) 555-2671…", nil, "«[REDACTED_EMAIL]»—☎ [REDACTED_PHONE]…", 2},
		{"nothing", "version 1.2.3.4.5 at 10:30", nil, "version 1.2.3.4.5 at 10:30", 0},
		{"type absent", "a@b.io", map[Type]bool{IBAN: true}, "a@b.io", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, n := Redact(c.text, c.types, all)
			if got != c.want || n != c.n {
				t.Errorf("Redact(%q) = %q, %d; want %q, %d", c.text, got, n, c.want, c.n)
			}
			if n == 0 && unsafe.StringData(got) != unsafe.StringData(c.text) {
				t.Error("unchanged text was copied")
			}
		})
	}
	// A nil Scanner means every type; a narrower Scanner limits what is redacted.
	if got, _ := Redact("a@b.io 10.1.2.3", nil, nil); got != "[REDACTED_EMAIL] [REDACTED_IP]" {
		t.Errorf("nil scanner: %q", got)
	}
	if got, _ := Redact("a@b.io 10.1.2.3", nil, NewScanner(IP)); got != "a@b.io [REDACTED_IP]" {
		t.Errorf("IP scanner: %q", got)
	}
}

// TestConcurrent shares one Scanner across goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	samples := loadSamples(t)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, s := range samples {
				if c := all.Counts(s.text); c[s.typ] != 1 {
					t.Errorf("line %d: %v", s.line, c)
				}
				Redact(s.text, nil, all)
			}
		}()
	}
	wg.Wait()
}

// TestLinearTime: hostile inputs — long runs of anchors that each start a candidate which
// examines a long stretch of text — scan in time linear in their size. 1 MB of any of them
// takes milliseconds; a quadratic detector would take minutes.
func TestLinearTime(t *testing.T) {
	const size = 1 << 20
	for _, unit := range []string{
		"sk-", "sk-a", "eyJ-", "xoxb-", "glpat-", "AIza-", "ghp_", "a-AKIA",
		"-----BEGIN PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----\nAAAA\n", "-----BEGIN ", "-----END ",
		"@a", "a@", "a@b.", "a.@", "a@b.c", "@", ".",
		"+1 ", "+1", "(1", "(415) ", "1.", "1-", "1 ", "4111 ", "4111-", "DE89 ", "DE89", "GB82 WEST ",
		":a", "::", "1:", "a:", ":", "-", "1", "A1", "x",
	} {
		text := strings.Repeat(unit, size/len(unit))
		if unit == "-----BEGIN PRIVATE KEY-----\nAAAA\n" {
			text += "-----END broken"
		}
		if unit == "eyJ-" {
			text = "eyJhbGciOiJIUzI1NiJ9." + text
		}
		// The best of three: a loaded CI machine can stall one scan past the bound, but
		// a quadratic detector misses it every time (by minutes, not seconds).
		var d time.Duration
		n := 0
		for range 3 {
			start := time.Now()
			n = 0
			all.Scan(text, func(Finding) { n++ })
			if d = time.Since(start); d <= 2*time.Second {
				break
			}
		}
		if d > 2*time.Second {
			t.Errorf("%q × %d: %v (%d findings)", unit, size/len(unit), d, n)
		}
	}
}
