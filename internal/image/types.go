// Package image makes the images blocks run in: offline base runtimes bootstrapped from
// Debian packages, and generated images (base + system packages + language packages) built
// once per distinct content hash and reused by every later run.
package image

import (
	"fmt"
	"time"
)

// Request is what a block needs of its image.
type Request struct {
	Language          string   // python | r | shell
	BaseImage         string   // custom image; "" uses the language's base runtime
	Dependencies      []string // pip requirement strings or R package names
	SystemPackages    []string // Debian packages
	InstallAPILibrary bool     // add berth's helper library (custom images)
}

// Result is the image a Request resolved to.
type Result struct {
	Ref      string        // tag (or base ref) to run
	ImageID  string        // engine image ID
	Hash     string        // content hash; "" when the base is used unchanged
	CacheHit bool          // true when no build happened
	BuildLog string        // path of the stored build log, when a build happened
	Duration time.Duration // time spent in Ensure
}

// MissingBaseError says a base runtime image is absent and how to make it.
type MissingBaseError struct {
	Language string
	Ref      string
}

func (e *MissingBaseError) Error() string {
	return fmt.Sprintf("base image %s for %s is not built: run `berth runtime bootstrap %s` (or `berth run --bootstrap`)", e.Ref, e.Language, e.Language)
}
