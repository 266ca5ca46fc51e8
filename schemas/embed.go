// Package schemas embeds the JSON Schema contracts shared by the Go services
// and the Python code. The files in this directory are the single source.
package schemas

import "embed"

// FS holds every *.schema.json file of this directory.
//
//go:embed *.schema.json
var FS embed.FS
