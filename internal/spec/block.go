// Package spec holds berth's user-facing definitions and their parsing and validation.
// It does no I/O beyond reading the files it is given.
package spec

import "time"

// Languages a block may be written in.
const (
	LangPython = "python"
	LangR      = "r"
	LangShell  = "shell"
)

// Block is a user's script and everything it needs to run once in a container.
type Block struct {
	Name     string `json:"name" yaml:"name"`
	Language string `json:"language" yaml:"language"`
	// Script is a file next to the spec (relative path); exactly one of Script and Code is set.
	Script string `json:"script,omitempty" yaml:"script,omitempty"`
	// Code is the script inline.
	Code string `json:"code,omitempty" yaml:"code,omitempty"`
	// Dependencies are pip requirement strings (python) or package names (r).
	Dependencies []string `json:"dependencies,omitempty" yaml:"dependencies,omitempty"`
	// SystemPackages are Debian package names installed before the language packages.
	SystemPackages []string `json:"system_packages,omitempty" yaml:"system_packages,omitempty"`
	// Image replaces the language's base image with a custom one.
	Image string `json:"image,omitempty" yaml:"image,omitempty"`
	// InstallAPILibrary adds berth's helper library to a custom image.
	InstallAPILibrary bool              `json:"install_api_library,omitempty" yaml:"install_api_library,omitempty"`
	Mounts            []Mount           `json:"mounts,omitempty" yaml:"mounts,omitempty"`
	Limits            Limits            `json:"limits,omitempty" yaml:"limits,omitempty"`
	Network           string            `json:"network,omitempty" yaml:"network,omitempty"` // none (default) | bridge
	Env               map[string]EnvVar `json:"env,omitempty" yaml:"env,omitempty"`
	// Parameters are written into /data/config.json as "parameters".
	Parameters map[string]any `json:"parameters,omitempty" yaml:"parameters,omitempty"`
	// Retry runs the block again when it fails for a passing reason (nil: never).
	Retry *Retry `json:"retry,omitempty" yaml:"retry,omitempty"`
}

// Mount is a host folder or file given to the block.
type Mount struct {
	Source string `json:"source" yaml:"source"`                 // host path, relative to the spec's folder or absolute
	Target string `json:"target" yaml:"target"`                 // absolute path in the container
	Mode   string `json:"mode,omitempty" yaml:"mode,omitempty"` // ro (default) | rw
}

// ReadOnly reports whether the mount is read-only (the default).
func (m Mount) ReadOnly() bool { return m.Mode != "rw" }

// Limits are the block's resource limits. Zero values take the server's defaults.
type Limits struct {
	CPU     float64  `json:"cpu,omitempty" yaml:"cpu,omitempty"`       // cores, e.g. 0.5
	Memory  ByteSize `json:"memory,omitempty" yaml:"memory,omitempty"` // "512m", "1g" or bytes
	Pids    int64    `json:"pids,omitempty" yaml:"pids,omitempty"`
	ShmSize ByteSize `json:"shm_size,omitempty" yaml:"shm_size,omitempty"`
	GPU     int      `json:"gpu,omitempty" yaml:"gpu,omitempty"`
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"` // "30s", "10m" or seconds
	// Disk caps what the job writes to /data ("20m", "2g" or bytes); at most the server's
	// --max-data-size, which is also the cap when unset. Passing it ends the job disk_limit.
	Disk ByteSize `json:"disk,omitempty" yaml:"disk,omitempty"`
}

// EnvVar is an environment value; Secret values are redacted as [hidden] in stored output.
// In YAML it is either a plain string or {value: ..., secret: true}.
type EnvVar struct {
	Value  string `json:"value" yaml:"value"`
	Secret bool   `json:"secret,omitempty" yaml:"secret,omitempty"`
}

// ByteSize is a size in bytes, written as "512m", "2g", "64k" or a number of bytes.
type ByteSize int64

// Duration is a time.Duration written as "30s", "5m" or a number of seconds.
type Duration time.Duration
