// Package policies embeds gavel's default Rego policy library, so the binary decides
// offline with no bundle server. The .rego files here are also a normal OPA source tree:
// `opa test policies/ bundles/` runs their tests.
package policies

import "embed"

// FS holds the default policies (tests included; the bundle loader drops them).
//
//go:embed *.rego
var FS embed.FS
