package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gavel-gw/gavel/engine/policy"
)

// policyReplay prints the logged decisions the candidate policy would change, then a
// summary.
func policyReplay(logPath string, pol []string, failOnChange bool, stdout, stderr io.Writer) error {
	b, source, err := loadPolicy(pol, stderr)
	if err != nil {
		return err
	}
	ctx := context.Background()
	rev, err := policy.Prepare(ctx, b, source)
	if err != nil {
		return err
	}
	in := os.Stdin
	if logPath != "-" {
		if in, err = os.Open(logPath); err != nil {
			return err
		}
		defer in.Close()
	}
	sum, err := policy.Replay(ctx, rev, in, func(c policy.Change) {
		fields := ""
		if len(c.Fields) > 0 {
			fields = " [" + strings.Join(c.Fields, ", ") + "]"
		}
		fmt.Fprintf(stdout, "changed %s: %s -> %s%s\n", c.DecisionID, c.Old, c.New, fields)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "replayed %d decisions against revision %s: %d would change, %d unchanged, %d skipped (no decision logged)\n",
		sum.Replayed, rev.ID, sum.Changed, sum.Unchanged, sum.Skipped)
	if failOnChange && sum.Changed > 0 {
		return fmt.Errorf("%d decisions would change", sum.Changed)
	}
	return nil
}
