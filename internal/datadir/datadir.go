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

// Config is /data/config.json.
type Config struct {
	Parameters      map[string]any `json:"parameters"`
	Storage         StorageMapping `json:"storage"`
	ImageParameters map[string]any `json:"image_parameters"`
	Authorization   map[string]any `json:"authorization"`
	Action          string         `json:"action"`
	Runtime         map[string]any `json:"runtime,omitempty"`
	Processors      *Processors    `json:"processors,omitempty"`
}

// StorageMapping is a configuration's input and output mapping.
type StorageMapping struct {
	Input  InputMapping  `json:"input"`
	Output OutputMapping `json:"output"`
}

// InputMapping selects what the component reads.
type InputMapping struct {
	Tables []InputTable `json:"tables,omitempty"`
	Files  []InputFiles `json:"files,omitempty"`
}

// InputTable is one table given to the component.
type InputTable struct {
	Source        string   `json:"source"`
	Destination   string   `json:"destination,omitempty"`
	Columns       []string `json:"columns,omitempty"`
	WhereColumn   string   `json:"where_column,omitempty"`
	WhereOperator string   `json:"where_operator,omitempty"`
	WhereValues   []string `json:"where_values,omitempty"`
	ChangedSince  string   `json:"changed_since,omitempty"`
	Limit         int      `json:"limit,omitempty"`
}

// InputFiles selects files by tags.
type InputFiles struct {
	Tags  []string `json:"tags"`
	Limit int      `json:"limit,omitempty"`
}

// OutputMapping says where the component's outputs go.
type OutputMapping struct {
	Tables []OutputTable `json:"tables,omitempty"`
	Files  []OutputFile  `json:"files,omitempty"`
}

// OutputTable maps an output file to a table.
type OutputTable struct {
	Source            string   `json:"source"`
	Destination       string   `json:"destination"`
	Incremental       bool     `json:"incremental,omitempty"`
	PrimaryKey        []string `json:"primary_key,omitempty"`
	Columns           []string `json:"columns,omitempty"`
	DeleteWhereColumn string   `json:"delete_where_column,omitempty"`
	DeleteWhereValues []string `json:"delete_where_values,omitempty"`
	WriteAlways       bool     `json:"write_always,omitempty"`
}

// OutputFile maps an output file to tags.
type OutputFile struct {
	Source string   `json:"source"`
	Tags   []string `json:"tags,omitempty"`
}

// Processors run before and after the component.
type Processors struct {
	Before []Processor `json:"before,omitempty"`
	After  []Processor `json:"after,omitempty"`
}

// Processor is a component run over the same data folder.
type Processor struct {
	Definition struct {
		Component string `json:"component"`
	} `json:"definition"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

// TableManifest is in/tables/<name>.manifest.
type TableManifest struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Columns        []string `json:"columns"`
	PrimaryKey     []string `json:"primary_key"`
	RowsCount      int      `json:"rows_count"`
	Created        string   `json:"created"`
	LastChangeDate string   `json:"last_change_date"`
}

// FileManifest is in/files/<id>_<name>.manifest.
type FileManifest struct {
	ID        int64    `json:"id"`
	Name      string   `json:"name"`
	Tags      []string `json:"tags"`
	SizeBytes int64    `json:"size_bytes"`
	Created   string   `json:"created"`
	IsPublic  bool     `json:"is_public"`
}

// Layout creates the folders of a data dir.
func Layout(dir string) error {
	for _, d := range []string{"in/tables", "in/files", "out/tables", "out/files"} {
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
	return WriteJSON(filepath.Join(dir, "config.json"), c)
}

// WriteState writes in/state.json ({} when state is nil).
func WriteState(dir string, state json.RawMessage) error {
	if len(state) == 0 {
		state = json.RawMessage("{}")
	}
	return os.WriteFile(filepath.Join(dir, "in", "state.json"), state, 0o644)
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

// CarryState copies a processor's in/state.json to its out/state.json, so the state travels
// with the inputs it hands on. Whatever the processor left at out/state.json is replaced,
// never written through; a missing in/state.json carries nothing.
func CarryState(dir string, lim Limits) error {
	lim = lim.orDefaults()
	f, err := OpenFolder(dir, "")
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := f.ReadFile("in/state.json", lim.MaxStateBytes, "the cap on state.json")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Replace("out/state.json", b)
}

// Error is a problem with a file the component wrote: the job fails as a user error naming it.
type Error struct {
	File    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.File, e.Message) }

// TS formats a time as manifests do.
func TS(t time.Time) string { return t.UTC().Format(time.RFC3339) }
