// Package bundles embeds the data half of gavel's default bundle: the manifest (revision,
// roots) and data.gavel (model catalog, aliases, routing switches, virtual keys).
package bundles

import "embed"

// FS holds .manifest and the data documents under gavel/.
//
//go:embed .manifest gavel
var FS embed.FS
