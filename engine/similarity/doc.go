// Package similarity scores how alike two model answers are, cheaply enough to run for
// every shadow request: cosine similarity over hashed word and word-pair counts.
//
// It is a drift signal for comparing a shadow model with the primary, not a semantic
// judge: paraphrases score lower than they deserve, reordered words score higher. Both
// inputs are cut to MaxBytes, the work is one pass over each, and nothing is allocated.
package similarity
