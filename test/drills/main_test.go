package drills

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// pendingFixes names the promises whose fixes are being made elsewhere. A drill (or the
// part of one) that checks such a promise asserts the correct behaviour but skips, saying
// "pending fix <name>", while its name is listed here; delete the name once the fix is
// merged and the drill runs for real.
var pendingFixes = []string{
	// Found by the drills: around Redis's return after an outage, one charge now and then
	// lands in Redis twice (seen with failure_mode open and closed, about one run in three;
	// the replay of queued commits is the likely path).
	"redis-replay-once",
}

// fixed reports whether the named fix is in, i.e. not in pendingFixes. DRILL_FIXED (a
// comma-separated list of names, or "all") runs pending drills anyway, to try a fix on a
// branch before the name is deleted here.
func fixed(name string) bool {
	env := os.Getenv("DRILL_FIXED")
	return env == "all" || slices.Contains(strings.Split(env, ","), name) || !slices.Contains(pendingFixes, name)
}

// pending skips t while the named fix is pending, recording the drill's row as such.
func pending(t *testing.T, drill, name string) {
	t.Helper()
	if !fixed(name) {
		table.Add(Row{Drill: drill, GorBefore: -1, GorAfter: -1, RSSBefore: -1, RSSAfter: -1,
			SpendBefore: -1, SpendAfter: -1, Status: "pending fix " + name})
		t.Skipf("pending fix %s (listed in pendingFixes)", name)
	}
}

// table is every drill's row, printed when the run ends.
var table Table

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gavel-drills-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	start := time.Now()
	gavelBin, err = buildGavel(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	fmt.Printf("drills: built gavel in %v (long form: %t)\n", time.Since(start).Round(100*time.Millisecond), long)
	code := m.Run()
	os.RemoveAll(dir)
	if table.Len() > 0 {
		fmt.Println()
		table.Print(os.Stdout)
		if path := os.Getenv("DRILL_TABLE"); path != "" {
			if f, err := os.Create(path); err == nil {
				table.Print(f)
				f.Close()
			}
		}
	}
	os.Exit(code)
}
