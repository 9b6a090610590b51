package image

import (
	"fmt"
	"regexp"
	"strings"
)

// InstallError is a generated image's build that failed because an installer (pip, R's
// install.packages, apt-get) could not install a package the request named: the user's to
// fix, not berth's. Line is the installer's own error line, without terminal escapes; the
// whole output is in the build log.
type InstallError struct {
	Installer string // pip | R | apt
	Field     string // dependencies | system_packages
	Package   string // the package as the request (or, failing that, the installer) named it
	Line      string
	Hash      string // the spec hash naming the build log
	BuildLog  string // the build log's path on the server
	Err       error  // the engine's build error
}

func (e *InstallError) Unwrap() error { return e.Err }

func (e *InstallError) Error() string {
	pkg := ""
	if e.Package != "" {
		pkg = fmt.Sprintf(" %q", e.Package)
	}
	msg := fmt.Sprintf("%s: %s could not install%s: %s", e.Field, e.Installer, pkg, e.Line)
	if len(e.Hash) >= 16 {
		msg += fmt.Sprintf(" (full build log: berth runtime build-log %s, or GET /api/v1/images/%s/build-log)", e.Hash[:16], e.Hash[:16])
	}
	return msg
}

// ansiEscape matches terminal escape sequences (CSI and OSC) and stray control characters.
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f]`)

// StripEscapes removes terminal escape codes and control characters (but tabs and newlines).
func StripEscapes(s string) string { return ansiEscape.ReplaceAllString(s, "") }

// installerPatterns are the installers' own lines naming a package they could not install,
// most specific first. The first group is the package.
var installerPatterns = []struct {
	installer, field string
	re               *regexp.Regexp
}{
	{"pip", "dependencies", regexp.MustCompile(`ERROR: No matching distribution found for (\S+)`)},
	{"pip", "dependencies", regexp.MustCompile(`ERROR: Could not find a version that satisfies the requirement (\S+)`)},
	{"R", "dependencies", regexp.MustCompile(`package [‘'"]([^’'"]+)[’'"] is not available`)},
	{"R", "dependencies", regexp.MustCompile(`there is no package called [‘'"]([^’'"]+)[’'"]`)},
	{"R", "dependencies", regexp.MustCompile(`failed to install: (.+)$`)},
	{"apt", "system_packages", regexp.MustCompile(`E: Unable to locate package (\S+)`)},
	{"apt", "system_packages", regexp.MustCompile(`E: Package '([^']+)' has no installation candidate`)},
	{"apt", "system_packages", regexp.MustCompile(`E: Version '[^']*' for '([^']+)' was not found`)},
}

// installFailure finds, in a failed build's output, the installer line naming a package it
// could not install. nil: the output names none (the failure is not the request's).
func installFailure(req Request, log string) *InstallError {
	lines := strings.Split(StripEscapes(log), "\n")
	for _, p := range installerPatterns {
		for _, raw := range lines {
			line := strings.TrimSpace(raw)
			m := p.re.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			wanted := req.Dependencies
			if p.field == "system_packages" {
				wanted = req.SystemPackages
			}
			return &InstallError{Installer: p.installer, Field: p.field, Package: requested(wanted, m[1]), Line: line}
		}
	}
	return nil
}

// requested returns the requirement (as the request wrote it) that an installer's name for a
// package refers to: pip's "x==1.0" or "x" for a request "X==1.0"; the installer's own name
// when none matches.
func requested(wanted []string, name string) string {
	name = strings.Trim(name, ` "'‘’,.`)
	norm := func(s string) string {
		s = strings.ToLower(s)
		if i := strings.IndexAny(s, "=<>!~;[ @"); i >= 0 {
			s = s[:i]
		}
		return strings.NewReplacer("_", "-", ".", "-").Replace(s)
	}
	for _, w := range wanted {
		if w == name || norm(w) == norm(name) {
			return w
		}
	}
	return name
}
