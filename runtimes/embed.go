// Package runtimes holds the base runtime recipes' files: berth's in-container helper
// libraries for Python and R, embedded so the binary can build base images anywhere.
package runtimes

import "embed"

// FS holds python/ and r/.
//
//go:embed all:python all:r
var FS embed.FS
