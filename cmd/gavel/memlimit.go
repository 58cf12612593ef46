package main

import (
	"log/slog"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// memoryLimitRatio is the share of the container's (or, outside one, the host's) memory
// the Go runtime aims to stay under. The rest is for what the runtime does not count:
// goroutine stacks above the heap's, the OPA bundle's mmapped files, TLS buffers in the
// kernel. It is a soft limit: as the heap nears it the collector runs more often, so a
// burst of large answers costs CPU instead of getting gavel OOM-killed.
const memoryLimitRatio = 0.9

// setMemoryLimit sets the runtime's soft memory limit (GOMEMLIMIT) to memoryLimitRatio of
// what provider reports, unless the operator set GOMEMLIMIT (or AUTOMEMLIMIT=off, or
// AUTOMEMLIMIT to another ratio). github.com/KimMachineGun/automemlimit reads cgroup v1
// and v2 limits, including a parent cgroup's, which is more than a read of
// /sys/fs/cgroup/memory.max would get right. It returns the limit in effect.
func setMemoryLimit(log *slog.Logger, provider memlimit.Provider) int64 {
	// A failure is logged by Set; gavel then runs without a limit, as it did before.
	limit, _ := memlimit.Set(memlimit.WithRatio(memoryLimitRatio), memlimit.WithProvider(provider), memlimit.WithLogger(log))
	return limit
}

// hostMemory is the memory limit of gavel's cgroup, or the host's memory outside one.
var hostMemory = memlimit.ApplyFallback(memlimit.FromCgroup, memlimit.FromSystem)
