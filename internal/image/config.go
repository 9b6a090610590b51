package image

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Config configures the image manager.
type Config struct {
	// PipIndexURL is the PEP 503 index pip installs from (server --pip-index-url, env
	// BERTH_PIP_INDEX_URL; default https://pypi.org/simple/). Not part of the spec hash.
	PipIndexURL string
	// CRANURL is the CRAN-style repository R packages come from (--cran-url, env
	// BERTH_CRAN_URL; default https://cloud.r-project.org). Not part of the spec hash.
	CRANURL string
	// LogDir keeps build logs as <hash>.log (default <data-dir>/image-logs).
	LogDir string
	// CacheDir keeps bootstrapped root filesystems by recipe hash (default
	// $XDG_CACHE_HOME/berth or ~/.cache/berth).
	CacheDir string
	// DebianMirror is where debootstrap fetches packages (--mirror; default
	// http://deb.debian.org/debian).
	DebianMirror string
	// Suite is the Debian release base images are made from (default bookworm).
	Suite string
	// RecipeVersion is part of every hash: bump it to rebuild every image (default "1").
	RecipeVersion string
	// BuildNetwork is the network RUN steps use: "host" (default) reaches a package index on
	// the host's loopback.
	BuildNetwork string
	// ExtraLabels are added to generated images (tests set berth.test=1).
	ExtraLabels map[string]string
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache")
		} else {
			cache = os.TempDir()
		}
	}
	return Config{
		PipIndexURL:   "https://pypi.org/simple/",
		CRANURL:       "https://cloud.r-project.org",
		LogDir:        filepath.Join(os.TempDir(), "berth-image-logs"),
		CacheDir:      filepath.Join(cache, "berth"),
		DebianMirror:  "http://deb.debian.org/debian",
		Suite:         "bookworm",
		RecipeVersion: "1",
		BuildNetwork:  "host",
	}
}

// Languages are the languages with a base runtime.
func Languages() []string { return []string{"python", "r", "shell"} }

// BaseRef is the tag of a language's base runtime image.
func BaseRef(lang string) (string, error) {
	r, ok := recipes[lang]
	if !ok {
		return "", fmt.Errorf("no base runtime for language %q (allowed: %s)", lang, strings.Join(Languages(), ", "))
	}
	return r.ref, nil
}
