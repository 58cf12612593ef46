// Package pii finds personal and secret data in prompt text — e-mail addresses, phone
// numbers, payment card numbers, US Social Security numbers, IBANs, IP addresses and
// credentials (cloud and API keys, JWTs, private keys) — so that the policy can act on
// counts of findings per type (input.pii) without scanning text in Rego, and so that the
// executor can mask what the policy decides to redact.
//
// # Why a windowed scan
//
// The detectors run on every request, over prompts of up to hundreds of kilobytes. Go's
// regexp runs at 35–70 MB/s per pattern on the gateway's machines, so seven-odd patterns
// over a 64 KB prompt cost several milliseconds — more than the policy evaluation itself.
// Almost all of a prompt is ordinary prose or code that cannot be PII, and every type has
// a cheap anchor: '@' for e-mail, a number at the start of a word for phones, cards, SSNs
// and IPv4, an upper-case pair followed by digits for IBANs, ':' between hex digits for
// IPv6, fixed prefixes for keys. So the Scanner makes one pass over the bytes, looks at
// words only at their first byte, and hands just the small window around each anchor to a
// hand-written validator (shape, then checksums: Luhn, mod-97, registry lengths and
// ranges). That scans 64 KB in well under a tenth of a millisecond with the same findings,
// and allocates nothing unless something is found.
//
// # Findings
//
// Scan reports findings in text order, never overlapping; where two detectors could claim
// the same bytes, the one whose anchor comes first wins. Offsets are bytes. Each detector's
// file documents exactly what it accepts and what it deliberately leaves out; the guiding
// rule is that a finding should be something a human reviewer would also call PII, since
// false positives block or mangle legitimate prompts (bare digit runs, dates, versions,
// times, amounts and ids are not flagged).
package pii
