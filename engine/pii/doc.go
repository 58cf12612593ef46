// Package pii finds personal and secret data in prompt text — e-mail addresses, phone
// numbers, payment card numbers, US Social Security numbers, IBANs, IP addresses and
// credentials (cloud and API keys, JWTs, private keys) — so that the policy can act on
// counts of findings per type (input.pii) without scanning text in Rego, and so that the
// executor can mask what the policy decides to redact.
//
// # Why a windowed scan
//
// The detectors run on every request, over prompts of tens or hundreds of kilobytes. Go's
// regexp runs at 35–70 MB/s per pattern on the gateway's machines: five patterns over a
// 64 KB prompt cost about 6 ms, more than everything else gavel does for a request. Yet
// almost all of a prompt is prose or code that cannot be PII, and every type has a cheap
// anchor: '@' for e-mail; a number at the start of a word for phones, cards, SSNs and IPv4;
// an upper-case pair for IBANs; ':' before hex digits for IPv6; fixed prefixes for keys.
//
// So a Scanner makes one pass over the bytes. Its hot loop decides from each byte and the
// next, through small lookup tables and without a data-dependent branch, whether an anchor
// can start there; only those few positions reach a detector, which validates just the
// window around the anchor by hand — shape first, then checksums and registries (Luhn,
// mod-97 and the IBAN lengths, card scheme ranges, SSA rules, net/netip). The result: 64 KB
// of mixed prose, code and logs in about 70–90 µs (0.7–0.9 GB/s) on a 2-core machine,
// nothing allocated unless something is found, and time linear in the input even when it
// is built to defeat the anchors (detectors that run over a long stretch remember how far
// they got).
//
// # Findings
//
// Scan reports findings in text order, never overlapping; where two detectors could claim
// the same bytes, the one whose anchor comes first wins. Offsets are bytes. Each detector's
// file documents what it accepts and what it deliberately leaves out. The guiding rule is
// that a finding should be something a reviewer would also call PII, because a false
// positive blocks or mangles a legitimate prompt: bare digit runs, dates, times, versions,
// amounts and labelled ids are not flagged.
package pii
