package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gavel-gw/gavel/engine/policy"
)

// policyDiff is `gavel policy diff`: the impact of a candidate bundle on logged traffic,
// as a table, markdown for a pull-request comment or JSON, with gates for CI.
func policyDiff(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy diff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	replay := fs.String("replay", "", "decision log (JSON lines, as the file sink writes them); - for stdin")
	var pol, routeGates policyPaths
	fs.Var(&pol, "policy", "the candidate: bundle .tar.gz, or directories (repeat: --policy policies --policy bundles)")
	format := fs.String("format", "text", "text, md or json")
	maxSpend := fs.Float64("max-spend-increase", -1, "fail when the re-priced spend grows by more than this percentage")
	maxDenied := fs.Int("max-newly-denied", -1, "fail when more than this many requests would be newly denied")
	fs.Var(&routeGates, "fail-on-route-change", "fail when any request for this alias would change route (repeatable)")
	live := fs.String("live", "", "read recent decisions from a running gateway at this base URL (GET /v1/gavel/decisions) instead of --replay")
	key := fs.String("key", "", "with --live: an admin or viewer key (default $GAVEL_ADMIN_KEY)")
	since := fs.String("since", "", "with --live: decisions since this RFC 3339 time, or this long ago (24h)")
	limit := fs.Int("limit", defaultLiveLimit, "with --live: at most this many recent decisions")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*replay == "") == (*live == "") || len(pol) == 0 {
		return errReplayOrLive
	}
	var src *liveSource
	if *live != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			return fmt.Errorf("policy diff: %w", err)
		}
		if *limit < 1 {
			return fmt.Errorf("policy diff: --limit must be at least 1, got %d", *limit)
		}
		k := *key
		if k == "" {
			k = os.Getenv("GAVEL_ADMIN_KEY")
		}
		src = &liveSource{base: *live, key: k, since: t, limit: *limit, http: http.DefaultClient}
	} else if *since != "" || *key != "" {
		return errors.New("policy diff: --key and --since go with --live")
	}
	if *format != "text" && *format != "md" && *format != "json" {
		return fmt.Errorf("policy diff: --format %q: want text, md or json", *format)
	}
	b, source, err := loadPolicy(pol, stderr)
	if err != nil {
		return err
	}
	ctx := context.Background()
	rev, err := policy.Prepare(ctx, b, source)
	if err != nil {
		return err
	}
	var in io.Reader = os.Stdin
	switch {
	case src != nil:
		lines, n, err := src.fetch(ctx)
		if err != nil {
			return fmt.Errorf("policy diff: %w", err)
		}
		fmt.Fprintf(stderr, "read %d recent decisions from %s\n", n, src.shown())
		in = bytes.NewReader(lines)
	case *replay != "-":
		f, err := os.Open(*replay)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	im, err := policy.ComputeImpact(ctx, rev, in)
	if err != nil {
		return err
	}
	switch *format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(im)
	case "md":
		err = writeImpactMD(stdout, im)
	default:
		err = writeImpactText(stdout, im)
	}
	if err != nil {
		return err
	}
	var failed []string
	if *maxSpend >= 0 && im.SpendIncreasePct() > *maxSpend {
		failed = append(failed, fmt.Sprintf("spend would grow by %.1f%% (over %.1f%%)", im.SpendIncreasePct(), *maxSpend))
	}
	if *maxDenied >= 0 && im.NewlyDenied > *maxDenied {
		failed = append(failed, fmt.Sprintf("%d requests would be newly denied (over %d)", im.NewlyDenied, *maxDenied))
	}
	for _, alias := range routeGates {
		if n := im.RouteChanges(alias); n > 0 {
			failed = append(failed, fmt.Sprintf("%d requests for %s would change route", n, alias))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("policy diff: %s", strings.Join(failed, "; "))
	}
	return nil
}

var errReplayOrLive = errors.New("policy diff: --replay LOG or --live URL (not both), and --policy CANDIDATE are required")

var groupOrder = []string{"team", "key", "alias", "route", "deny_code"}

func signedUSD(musd int64) string {
	if musd >= 0 {
		return "+" + policy.USD(musd)
	}
	return "-" + policy.USD(-musd)
}

func writeImpactText(w io.Writer, im *policy.Impact) error {
	fmt.Fprintln(w, im.Summary())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, dim := range groupOrder {
		gs := im.Groups[dim]
		if len(gs) == 0 {
			continue
		}
		fmt.Fprintf(tw, "\n%s\trequests\tchanged\tnewly denied\tnewly allowed\tspend before\tspend after\tdelta\n", strings.ToUpper(strings.ReplaceAll(dim, "_", " ")))
		for _, g := range gs {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", orNone(g.Name), g.Requests, g.Changed, g.NewlyDenied, g.NewlyAllowed,
				policy.USD(g.SpendBeforeMUSD), policy.USD(g.SpendAfterMUSD), signedUSD(g.SpendAfterMUSD-g.SpendBeforeMUSD))
		}
	}
	if len(im.Moves) > 0 {
		fmt.Fprintf(tw, "\nROUTE MOVE\trequests\tfrom: latency, errors\tto: latency, errors\n")
		for _, m := range im.Moves {
			fmt.Fprintf(tw, "%s: %s -> %s\t%d\t%s\t%s\n", m.Alias, m.From, m.To, m.Requests, statsText(m.FromLog), statsText(m.ToLog))
		}
	}
	if len(im.Fields) > 0 {
		fmt.Fprintf(tw, "\nFIELD\tchanged\n")
		for _, f := range sortedKeys(im.Fields) {
			fmt.Fprintf(tw, "%s\t%d\n", f, im.Fields[f])
		}
	}
	return tw.Flush()
}

func writeImpactMD(w io.Writer, im *policy.Impact) error {
	fmt.Fprintf(w, "### Policy impact: revision `%s`\n\n", im.Revision)
	fmt.Fprintf(w, "| replayed | changed | newly denied | newly allowed | rerouted | spend before | spend after | change |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(w, "| %d | %d | %d | %d | %d | %s | %s | %+.1f%% |\n", im.Replayed, im.Changed, im.NewlyDenied, im.NewlyAllowed, im.Rerouted,
		policy.USD(im.SpendBeforeMUSD), policy.USD(im.SpendAfterMUSD), im.SpendIncreasePct())
	for _, dim := range groupOrder {
		gs := im.Groups[dim]
		if len(gs) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n| %s | requests | changed | newly denied | newly allowed | spend before | spend after | delta |\n|---|---:|---:|---:|---:|---:|---:|---:|\n", strings.ReplaceAll(dim, "_", " "))
		for _, g := range gs {
			fmt.Fprintf(w, "| `%s` | %d | %d | %d | %d | %s | %s | %s |\n", orNone(g.Name), g.Requests, g.Changed, g.NewlyDenied, g.NewlyAllowed,
				policy.USD(g.SpendBeforeMUSD), policy.USD(g.SpendAfterMUSD), signedUSD(g.SpendAfterMUSD-g.SpendBeforeMUSD))
		}
	}
	if len(im.Moves) > 0 {
		fmt.Fprintf(w, "\n| route move | requests | from: latency, errors | to: latency, errors |\n|---|---:|---|---|\n")
		for _, m := range im.Moves {
			fmt.Fprintf(w, "| `%s`: `%s` → `%s` | %d | %s | %s |\n", m.Alias, m.From, m.To, m.Requests, statsText(m.FromLog), statsText(m.ToLog))
		}
	}
	if len(im.Fields) > 0 {
		fmt.Fprintf(w, "\n| decision field | changed |\n|---|---:|\n")
		for _, f := range sortedKeys(im.Fields) {
			fmt.Fprintf(w, "| `%s` | %d |\n", f, im.Fields[f])
		}
	}
	_, err := fmt.Fprintf(w, "\n%d skipped (no decision logged); %d newly allowed requests logged no usage and are not priced.\n", im.Skipped, im.Unpriced)
	return err
}

func statsText(s policy.TargetStats) string {
	if s.Primary == 0 && s.Answered == 0 {
		return "not in the log"
	}
	return fmt.Sprintf("%d ms, %.1f%% errors (%d as primary)", s.LatencyMS, float64(s.ErrorRateBP)/100, s.Primary)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
