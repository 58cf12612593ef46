package app

import (
	"path/filepath"
	"testing"
)

// BenchmarkChatCompletionDecisionLog is BenchmarkChatCompletion/json with decision logging
// off, on with only the in-memory lookup ring (the default), and on with a file sink. The
// request path's share is the same in both "on" cases (one channel send); the file case
// adds the background goroutine's encoding and writing, which competes for the same cores.
func BenchmarkChatCompletionDecisionLog(b *testing.B) {
	off := false
	for _, mode := range []string{"off", "ring", "file"} {
		b.Run(mode, func(b *testing.B) {
			cfg := benchConfig()
			switch mode {
			case "off":
				cfg.DecisionLog.Enabled = &off
			case "file":
				cfg.DecisionLog.File = filepath.Join(b.TempDir(), "decisions.jsonl")
			}
			benchHandler(b, cfg, benchBody, nil)
		})
	}
}
