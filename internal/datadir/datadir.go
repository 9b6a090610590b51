// Package datadir is the /data folder of the common interface components speak:
// config.json, in/tables and in/files with their manifests, in/state.json, and out/ with the
// tables, files and state a component writes. It reads and writes folders; it does not know
// where tables come from or go to.
package datadir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Config is /data/config.json as Keboola's runner writes it: runtime and processors are
// never given to the component, shared_code_row_ids is always there, and the storage mapping
// carries every default the runner fills in.
type Config struct {
	Parameters       map[string]any `json:"parameters"`
	ImageParameters  map[string]any `json:"image_parameters"`
	Action           string         `json:"action"`
	SharedCodeRowIDs []string       `json:"shared_code_row_ids"`
	Storage          StorageMapping `json:"storage"`
	Authorization    map[string]any `json:"authorization"`
}

// Layout creates the folders of a data dir.
func Layout(dir string) error {
	for _, d := range []string{"in/tables", "in/files", "in/user", "out/tables", "out/files"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON writes v as indented JSON.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteConfig writes config.json with the common interface's defaults filled in.
func WriteConfig(dir string, c Config) error {
	if c.Parameters == nil {
		c.Parameters = map[string]any{}
	}
	if c.ImageParameters == nil {
		c.ImageParameters = map[string]any{}
	}
	if c.Authorization == nil {
		c.Authorization = map[string]any{}
	}
	if c.Action == "" {
		c.Action = "run"
	}
	if c.SharedCodeRowIDs == nil {
		c.SharedCodeRowIDs = []string{}
	}
	c.Storage.Normalize()
	return WriteJSON(filepath.Join(dir, "config.json"), c)
}

// WriteState writes in/state.json ({} when state is nil), replacing whatever is there
// without writing through a link (a before-processor's output became in/).
func WriteState(dir string, state json.RawMessage) error {
	if len(state) == 0 {
		state = json.RawMessage("{}")
	}
	f, err := OpenFolder(dir, "")
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Replace("in/state.json", state)
}

// ReadState reads out/state.json, below dir and without following links, refusing one over
// lim.MaxStateBytes. A missing file is (nil, false): the state is cleared.
func ReadState(dir string, lim Limits) (json.RawMessage, bool, error) {
	lim = lim.orDefaults()
	f, err := OpenFolder(dir, "")
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	b, err := f.ReadFile("out/state.json", lim.MaxStateBytes, "the cap on state.json")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, false, &Error{File: "out/state.json", Message: "not a JSON object: " + err.Error()}
	}
	return b, true, nil
}

// Error is a problem with a file the component wrote: the job fails as a user error naming it.
type Error struct {
	File    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.File, e.Message) }

// TS formats a time as manifests do.
func TS(t time.Time) string { return t.UTC().Format(time.RFC3339) }
