package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// ContainerJSON is a service's container.json, with Datagrok's fields and defaults.
type ContainerJSON struct {
	CPU             float64           `json:"cpu"`              // cores (0.25)
	GPU             int               `json:"gpu"`              // GPUs (0)
	Memory          int64             `json:"memory"`           // MB (512)
	OnDemand        bool              `json:"on_demand"`        // start on the first request (false)
	ShutdownTimeout *float64          `json:"shutdown_timeout"` // minutes idle before it is stopped (null: never)
	Storage         int64             `json:"storage"`          // GB of root filesystem (21)
	ShmSize         int64             `json:"shm_size"`         // MB (64)
	Env             map[string]string `json:"env"`              // values may hold #{x.Package:Entity}

	// TimeoutMinutes is timeout_minutes, found in several of Datagrok's own packages beside
	// on_demand but absent from its table: berth bounds a start of the service with it (null:
	// the server's ready timeout).
	TimeoutMinutes *float64 `json:"timeout_minutes,omitempty"`

	// Warnings name what the file says that berth keeps but reads differently from Datagrok's
	// table, or ignores (an unknown field). Not stored.
	Warnings []string `json:"-"`

	// Given names the fields the file set; the others hold their defaults. A limit the engine
	// cannot apply is said only for a field the author gave. Not stored.
	Given map[string]bool `json:"-"`
}

// DefaultContainerJSON is what an absent container.json means.
func DefaultContainerJSON() ContainerJSON {
	return ContainerJSON{CPU: 0.25, Memory: 512, Storage: 21, ShmSize: 64, Env: map[string]string{}}
}

// containerJSONFields are Datagrok's table; containerJSONExtra are fields Datagrok's own
// packages use beyond it.
var (
	containerJSONFields = []string{"cpu", "gpu", "memory", "on_demand", "shutdown_timeout", "storage", "shm_size", "env"}
	containerJSONExtra  = []string{"environmentVars", "timeout_minutes"}
)

// ParseContainerJSON reads container.json: every field is optional and takes its default.
// A known field with a wrong type or value is an error naming the field and what it allows;
// the error lists every such problem of the file. An unknown field is a warning
// (ContainerJSON.Warnings), not an error. environmentVars is merged into env (env wins on a
// name both give).
func ParseContainerJSON(data []byte) (ContainerJSON, error) {
	c := DefaultContainerJSON()
	verr := &ValidationError{File: "container.json"}
	if len(bytes.TrimSpace(data)) == 0 {
		return c, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		verr.Problems = append(verr.Problems, Problem{Message: "not a JSON object: " + err.Error()})
		return c, verr
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	c.Given = make(map[string]bool, len(keys))
	var envs, envVars map[string]string
	for _, k := range keys {
		v := raw[k]
		c.Given[k] = true
		bad := func(want string) {
			verr.Problems = append(verr.Problems, Problem{Field: k, Message: fmt.Sprintf("must be %s (got %s)", want, string(v))})
		}
		isNull := string(bytes.TrimSpace(v)) == "null"
		switch k {
		case "cpu":
			if json.Unmarshal(v, &c.CPU) != nil || isNull || c.CPU <= 0 {
				bad("a number of cores above 0")
			}
		case "gpu":
			if json.Unmarshal(v, &c.GPU) != nil || isNull || c.GPU < 0 {
				bad("a whole number of GPUs, 0 or more")
			}
		case "memory":
			if json.Unmarshal(v, &c.Memory) != nil || isNull || c.Memory < 6 {
				bad("a whole number of MB, at least 6")
			}
		case "on_demand":
			if json.Unmarshal(v, &c.OnDemand) != nil || isNull {
				bad("true or false")
			}
		case "shutdown_timeout":
			if isNull {
				c.ShutdownTimeout = nil
				continue
			}
			var f float64
			if json.Unmarshal(v, &f) != nil || f <= 0 {
				bad("a number of minutes above 0, or null")
			} else {
				c.ShutdownTimeout = &f
			}
		case "storage":
			if json.Unmarshal(v, &c.Storage) != nil || isNull || c.Storage < 0 {
				bad("a whole number of GB, 0 or more")
			}
		case "shm_size":
			if json.Unmarshal(v, &c.ShmSize) != nil || isNull || c.ShmSize < 0 {
				bad("a whole number of MB, 0 or more")
			}
		case "env", "environmentVars":
			var env map[string]string
			if json.Unmarshal(v, &env) != nil {
				bad("an object of string values")
				continue
			}
			names := make([]string, 0, len(env))
			for name := range env {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				if !reEnvName.MatchString(name) {
					verr.Problems = append(verr.Problems, Problem{Field: k + "." + name, Message: "is not a variable name (letters, digits and '_', not starting with a digit)"})
				}
			}
			if k == "env" {
				envs = env
			} else {
				envVars = env
			}
		case "timeout_minutes":
			if isNull {
				continue
			}
			var f float64
			if json.Unmarshal(v, &f) != nil || f <= 0 {
				bad("a number of minutes above 0, or null")
			} else {
				c.TimeoutMinutes = &f
			}
		default:
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: unknown field, ignored (known: %s)", k,
				strings.Join(append(append([]string{}, containerJSONFields...), containerJSONExtra...), ", ")))
		}
	}
	// environmentVars first, env over it.
	for name, val := range envVars {
		if old, ok := envs[name]; ok && old != val {
			c.Warnings = append(c.Warnings, fmt.Sprintf("environmentVars.%s: also in env, whose value is used", name))
			continue
		}
		c.Env[name] = val
	}
	for name, val := range envs {
		c.Env[name] = val
	}
	sort.Strings(c.Warnings)
	if len(verr.Problems) > 0 {
		return c, verr
	}
	return c, nil
}

var reEntityRef = regexp.MustCompile(`#\{x\.([A-Za-z0-9_-]+):([A-Za-z0-9_.-]+)\}`)

// EntityRefs lists the #{x.Package:Entity} references in a value.
func EntityRefs(v string) [][2]string {
	var out [][2]string
	for _, m := range reEntityRef.FindAllStringSubmatch(v, -1) {
		out = append(out, [2]string{m[1], m[2]})
	}
	return out
}

// ExpandEntities replaces each #{x.Package:Entity} with lookup's value. A reference to another
// package's entity is an error naming the variable (never the value).
func ExpandEntities(env map[string]string, pkg string, lookup func(pkg, name string) (string, error)) (map[string]string, error) {
	out := make(map[string]string, len(env))
	for k, v := range env {
		var ferr error
		out[k] = reEntityRef.ReplaceAllStringFunc(v, func(ref string) string {
			m := reEntityRef.FindStringSubmatch(ref)
			if m[1] != pkg {
				if ferr == nil {
					ferr = &ValidationError{File: "container.json", Problems: []Problem{{Field: "env." + k,
						Message: fmt.Sprintf("refers to package %s's entity %s; a service may only use its own package's (%s)", m[1], m[2], pkg)}}}
				}
				return ""
			}
			val, err := lookup(m[1], m[2])
			if err != nil && ferr == nil {
				ferr = &ValidationError{File: "container.json", Problems: []Problem{{Field: "env." + k, Message: err.Error()}}}
			}
			return val
		})
		if ferr != nil {
			return nil, ferr
		}
	}
	return out, nil
}
