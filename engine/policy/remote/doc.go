// Package remote keeps the active policy bundle in step with a bundle server.
//
// It speaks OPA's bundle protocol through OPA's own packages: download.Downloader does the
// conditional GET (ETag / If-None-Match → 304), long polling (Prefer: wait=N) and
// signature verification (.signatures.json against the configured key), and
// plugins/rest is its HTTP client with bearer credentials. gavel drives the downloader by
// hand (manual trigger) because OPA's own loop counts delays in whole seconds and hides
// the outcome of each request; this package's loop keeps OPA's min/max jittered delay and
// exponential backoff on errors, in any unit.
//
// A downloaded bundle goes through policy.Engine.Activate: compile and prepare happen on
// this package's goroutine, then the revision is swapped in atomically; requests never
// wait for a download. A bundle that fails to download, verify or compile is counted,
// logged and reported in the status, and the active revision stays. After each
// successful activation the tarball, exactly as downloaded (signatures included), is
// written to the persist directory with a small metadata file (last known good); on
// startup that bundle is verified again and served until the server answers.
package remote
