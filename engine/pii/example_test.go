package pii_test

import (
	"fmt"

	"github.com/gavel-gw/gavel/engine/pii"
)

// The policy input: counts per type, nil for a clean prompt.
func ExampleScanner_Counts() {
	s := pii.NewScanner() // once, at startup; safe for concurrent use
	fmt.Println(s.Counts("Deploy v1.22.4 to staging at 10:30 tomorrow."))
	fmt.Println(s.Counts("Mail jane.doe@example.com or call +1 415 555 2671.", "from 10.20.30.40"))
	// Output:
	// map[]
	// map[email:1 ip:1 phone:1]
}

func ExampleScanner_Scan() {
	text := "Card 4111 1111 1111 1111, SSN 536-22-1234."
	pii.NewScanner().Scan(text, func(f pii.Finding) {
		fmt.Printf("%s %d-%d %q\n", f.Type, f.Start, f.End, text[f.Start:f.End])
	})
	// Output:
	// credit_card 5-24 "4111 1111 1111 1111"
	// ssn 30-41 "536-22-1234"
}

func ExampleRedact() {
	s := pii.NewScanner()
	out, n := pii.Redact("Mail jane.doe@example.com or call (415) 555-2671.", map[pii.Type]bool{pii.Email: true}, s)
	fmt.Println(out, n)
	// Output:
	// Mail [REDACTED_EMAIL] or call (415) 555-2671. 1
}
