//go:build !race

package policy

// raceSlowdown scales the timing bounds of tests that measure wall time (see race_test.go).
const raceSlowdown = 1
