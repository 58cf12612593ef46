package main

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// The soft memory limit is 90% of the container's memory, unless the operator set one.
func TestSetMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	tests := []struct {
		name       string
		gomemlimit string
		provider   memlimit.Provider
		want       int64
	}{
		{"container limit", "", memlimit.Limit(1 << 30), 966367641}, // 0.9 of 1 GiB, rounded down
		{"no limit anywhere", "", func() (uint64, error) { return 0, memlimit.ErrNoLimit }, math.MaxInt64},
		{"operator's GOMEMLIMIT wins", "123MiB", memlimit.Limit(1 << 30), 42 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", tc.gomemlimit)
			t.Setenv("AUTOMEMLIMIT", "") // restored after the test
			os.Unsetenv("AUTOMEMLIMIT")
			debug.SetMemoryLimit(42 << 20) // stands for what the runtime read from GOMEMLIMIT
			setMemoryLimit(slog.New(slog.DiscardHandler), tc.provider)
			if got := debug.SetMemoryLimit(-1); got != tc.want {
				t.Errorf("memory limit = %d, want %d", got, tc.want)
			}
		})
	}
}
