package spec

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

var (
	reName      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	rePipReq    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._, -]+\])?\s*([<>=!~]=?\s*[A-Za-z0-9.*+!_-]+\s*(,\s*[<>=!~]=?\s*[A-Za-z0-9.*+!_-]+\s*)*)?$`)
	reRPkg      = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9.]*[A-Za-z0-9]$`)
	reDebPkg    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+:~-]+)?$`)
	reImage     = regexp.MustCompile(`^([a-z0-9][a-z0-9.-]*:[0-9]{1,5}/)?[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_.-]+)?(@sha256:[a-f0-9]{64})?$`) // an optional registry host:port first
	reNetwork   = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
	reEnvName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	languages   = []string{LangPython, LangR, LangShell}
	berthPaths  = []string{"/data", "/code", "/proc", "/sys", "/dev"}
	exactForbid = []string{"/", "/tmp", "/etc", "/bin", "/usr", "/lib"}
)

// Validate checks the rules a block must follow beyond its shape. It returns a
// *ValidationError listing every problem, or nil.
func (b *Block) Validate() error {
	var ps []Problem
	bad := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch {
	case b.Name == "":
		bad("name", "is required")
	case !reName.MatchString(b.Name):
		bad("name", "%q: use letters, digits, '.', '_' or '-' (at most 63, starting with a letter or digit)", b.Name)
	}
	langOK := false
	for _, l := range languages {
		langOK = langOK || b.Language == l
	}
	if b.Language == "" {
		bad("language", "is required (allowed: %s)", strings.Join(languages, ", "))
	} else if !langOK {
		bad("language", "%q is not supported (allowed: %s)", b.Language, strings.Join(languages, ", "))
	}
	switch {
	case b.Script == "" && b.Code == "":
		bad("script", "give the script: script (a file next to the spec) or code (inline)")
	case b.Script != "" && b.Code != "":
		bad("code", "give either script or code, not both")
	case b.Script != "":
		if strings.HasPrefix(b.Script, "/") || strings.Contains(b.Script, "\\") || path.Clean(b.Script) != b.Script ||
			b.Script == "." || b.Script == ".." || strings.HasPrefix(b.Script, "../") {
			bad("script", "%q must be a relative path inside the spec's folder", b.Script)
		}
	}
	seen := map[string]bool{}
	for i, d := range b.Dependencies {
		f := fmt.Sprintf("dependencies[%d]", i)
		switch {
		case strings.TrimSpace(d) == "":
			bad(f, "is empty")
		case b.Language == LangShell:
			bad(f, "shell blocks have no language packages; use system_packages")
		case strings.ContainsFunc(d, isControl):
			bad(f, "%q contains a control character (a newline?)", d)
		case strings.HasPrefix(strings.TrimSpace(d), "-"):
			bad(f, "%q: pip options are not allowed, only requirement strings like pandas==2.2.1", d)
		case b.Language == LangPython && (len(d) > 200 || !rePipReq.MatchString(d)):
			bad(f, "%q is not a pip requirement string (e.g. pandas, pandas==2.2.1, numpy>=1.26,<2)", d)
		case b.Language == LangR && !reRPkg.MatchString(d):
			bad(f, "%q is not an R package name (letters, digits and '.')", d)
		case seen[d]:
			bad(f, "%q is listed twice", d)
		}
		seen[d] = true
	}
	seen = map[string]bool{}
	for i, p := range b.SystemPackages {
		f := fmt.Sprintf("system_packages[%d]", i)
		switch {
		case !reDebPkg.MatchString(p):
			bad(f, "%q is not a Debian package name (e.g. libpq5 or r-cran-digest)", p)
		case seen[p]:
			bad(f, "%q is listed twice", p)
		}
		seen[p] = true
	}
	if b.Image != "" && !reImage.MatchString(b.Image) {
		bad("image", "%q is not an image reference (e.g. myorg/python-gis:1.2)", b.Image)
	}
	if b.InstallAPILibrary && b.Image == "" {
		bad("install_api_library", "only applies with image (the base runtimes already have the library)")
	}
	targets := map[string]bool{}
	for i, m := range b.Mounts {
		f := fmt.Sprintf("mounts[%d]", i)
		if m.Source == "" {
			bad(f+".source", "is required")
		}
		t := m.Target
		switch {
		case t == "":
			bad(f+".target", "is required")
		case !strings.HasPrefix(t, "/"):
			bad(f+".target", "%q must be an absolute path in the container", t)
		case path.Clean(t) != t:
			bad(f+".target", "%q must be a clean path (no '..', '//' or trailing '/')", t)
		case reservedTarget(t):
			bad(f+".target", "%q is berth's or the system's; mount somewhere else (e.g. /input)", t)
		case targets[t]:
			bad(f+".target", "%q is mounted twice", t)
		}
		targets[t] = true
		if m.Mode != "" && m.Mode != "ro" && m.Mode != "rw" {
			bad(f+".mode", "%q is not a mode (allowed: ro, rw)", m.Mode)
		}
	}
	l := b.Limits
	if l.CPU < 0 || l.CPU > 256 {
		bad("limits.cpu", "%v: must be more than 0 and at most 256 cores", l.CPU)
	}
	if l.Memory != 0 && l.Memory < 4<<20 {
		bad("limits.memory", "%d bytes: must be at least 4m", l.Memory)
	}
	if l.Memory < 0 {
		bad("limits.memory", "must not be negative")
	}
	if l.Pids < 0 {
		bad("limits.pids", "must be at least 1")
	}
	if l.ShmSize < 0 {
		bad("limits.shm_size", "must not be negative")
	}
	if l.GPU < 0 {
		bad("limits.gpu", "must not be negative")
	}
	if l.Timeout < 0 {
		bad("limits.timeout", "must be more than 0")
	}
	if l.Disk < 0 {
		bad("limits.disk", "must not be negative")
	}
	switch {
	case b.Network == "" || b.Network == "none" || b.Network == "bridge":
	case b.Network == "host":
		bad("network", "the host network is never given to a block (allowed: none, bridge, or a network the admin allows)")
	case !reNetwork.MatchString(b.Network):
		bad("network", "%q is not a network name (allowed: none, bridge, or a network the admin allows)", b.Network)
	}
	names := make([]string, 0, len(b.Env))
	for k := range b.Env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		switch {
		case !reEnvName.MatchString(k):
			bad("env."+k, "is not a variable name (letters, digits, '_', not starting with a digit)")
		case strings.HasPrefix(k, "BERTH_") || strings.HasPrefix(k, "KBC_"):
			bad("env."+k, "names starting with BERTH_ or KBC_ are berth's own")
		}
	}
	ps = append(ps, b.Retry.check("retry")...)
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
}

func reservedTarget(t string) bool {
	for _, p := range exactForbid {
		if t == p {
			return true
		}
	}
	for _, p := range berthPaths {
		if t == p || strings.HasPrefix(t, p+"/") {
			return true
		}
	}
	return false
}

// Secrets are the values of env vars marked secret.
func (b *Block) Secrets() []string {
	var out []string
	for _, v := range b.Env {
		if v.Secret && v.Value != "" {
			out = append(out, v.Value)
		}
	}
	return out
}

// EnvMap is the block's environment, name to value.
func (b *Block) EnvMap() map[string]string {
	out := make(map[string]string, len(b.Env))
	for k, v := range b.Env {
		out[k] = v.Value
	}
	return out
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
