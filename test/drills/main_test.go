package drills

import (
	"fmt"
	"os"
	"testing"
	"time"
)

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
