//go:build race

package test

// raceEnabled: the race detector slows the tokenizer some twentyfold, so tests whose
// answers gavel counts token by token send less under it.
const raceEnabled = true
