//go:build race

package pipeline_test

// raceEnabled: the race detector slows the tokenizer some twentyfold, so tests that count
// megabytes count less under it.
const raceEnabled = true
