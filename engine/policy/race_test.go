//go:build race

package policy

// raceSlowdown scales the timing bounds of tests that measure wall time: the race
// detector makes every expression the evaluator runs several times slower.
const raceSlowdown = 10
