package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/berthproject/berth/internal/datadir"
)

// Component is a container image that speaks the common interface (/data/config.json in,
// /data/out back), registered once and run through its configurations.
type Component struct {
	ID string `json:"id"`
	// Image is an image on the engine (`berth component register --build DIR` builds it from a
	// folder and fills this in), or on berth's registry, <registry>/<project>/<id>:<version>
	// (`berth component publish` pushes it), pulled with the job's project's token each run.
	Image string `json:"image"`
	// ImageParameters are the component's defaults, given to every run as image_parameters.
	ImageParameters map[string]any `json:"image_parameters,omitempty"`
	// Schema is a JSON schema every configuration's parameters must pass.
	Schema json.RawMessage `json:"schema,omitempty"`
	// Actions are the sync actions the component allows (besides run).
	Actions []string `json:"actions,omitempty"`
	// Limits: memory, cpu and timeout of its runs (server defaults when unset).
	Limits Limits `json:"limits,omitempty"`
	// Network: none (default) or a network the admin allows.
	Network string `json:"network,omitempty"`
	// ForwardToken gives the caller's API token to the component as KBC_TOKEN. An explicit
	// opt-in the admin must allow (server --allow-forward-token); off by default.
	ForwardToken bool `json:"forward_token,omitempty"`
	// ForwardTokenDetails gives the component who runs it, never the token itself: the
	// caller's token id and name as KBC_TOKENID and KBC_TOKENDESC, and KBC_PROJECTNAME (Keboola's
	// forward_token_details). Harmless, so it needs no server setting.
	ForwardTokenDetails bool `json:"forward_token_details,omitempty"`
	// DataTypeSupport is the component's typed-columns support (authoritative | hints | none),
	// given as KBC_DATA_TYPE_SUPPORT; Keboola's libraries pick their manifest format by it.
	DataTypeSupport string `json:"data_type_support,omitempty"`
}

// ComponentConfig is one configuration of a component: parameters and storage mapping.
type ComponentConfig struct {
	ID         string                 `json:"id"`
	Component  string                 `json:"component"`
	Name       string                 `json:"name,omitempty"`
	Parameters map[string]any         `json:"parameters,omitempty"`
	Storage    datadir.StorageMapping `json:"storage"`
	Processors *datadir.Processors    `json:"processors,omitempty"`
	// Rows are the configuration's rows (Keboola's configuration rows): running the
	// configuration runs each enabled row in order, with the configuration's parameters merged
	// under the row's, the row's storage mapping, and a state of the row's own.
	Rows datadir.List[ConfigRow] `json:"rows,omitempty"`
	// Retry runs a job of the configuration again when it fails for a passing reason.
	Retry *Retry `json:"retry,omitempty"`
}

// ConfigRow is one row of a configuration.
type ConfigRow struct {
	ID         string                  `json:"id"`
	Name       string                  `json:"name,omitempty"`
	IsDisabled bool                    `json:"is_disabled,omitempty"`
	Parameters map[string]any          `json:"parameters,omitempty"`
	Storage    *datadir.StorageMapping `json:"storage,omitempty"`
}

// ForRow is the configuration a row runs with: the configuration's parameters with the row's
// merged over them (objects merged key by key, anything else replaced), and the row's storage
// mapping (the configuration's when the row has none).
func (c ComponentConfig) ForRow(row ConfigRow) ComponentConfig {
	out := c
	out.Rows = nil
	out.Parameters = mergeParams(c.Parameters, row.Parameters)
	if row.Storage != nil {
		out.Storage = *row.Storage
	}
	return out
}

func mergeParams(base, over map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if bo, ok := out[k].(map[string]any); ok {
			if oo, ok := v.(map[string]any); ok {
				out[k] = mergeParams(bo, oo)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// RowsToRun are the enabled rows, or only the one named (which may be disabled: running it by
// name is asked for). An unknown row id is a *ValidationError.
func (c ComponentConfig) RowsToRun(only string) ([]ConfigRow, error) {
	var out []ConfigRow
	for _, r := range c.Rows {
		switch {
		case only != "" && r.ID == only:
			return []ConfigRow{r}, nil
		case only == "" && !r.IsDisabled:
			out = append(out, r)
		}
	}
	if only != "" {
		return nil, &ValidationError{Problems: []Problem{{Field: "row", Message: fmt.Sprintf("configuration %s has no row %q", c.ID, only)}}}
	}
	return out, nil
}

var (
	reID     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)
	reAction = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)
)

// decodeStrict decodes a JSON object, refusing unknown keys; an error names the JSON path of
// the problem in the document's own terms (storage.input.tables[0].columns), never a Go type.
func decodeStrict(data []byte, v any, file string) error {
	var err error
	if u, ok := v.(interface{ UnmarshalJSON([]byte) error }); ok {
		err = u.UnmarshalJSON(data)
	} else {
		err = datadir.DecodeObject(data, datadir.FieldsOf(v))
	}
	if err == nil {
		return nil
	}
	var pe *datadir.PathError
	if errors.As(err, &pe) {
		return &ValidationError{File: file, Problems: []Problem{{Field: pe.Path, Message: pe.Message}}}
	}
	return &ValidationError{File: file, Problems: []Problem{{Message: err.Error()}}}
}

// ParseComponent reads and checks a component definition (JSON).
func ParseComponent(data []byte, file string) (*Component, error) {
	var c Component
	if err := decodeStrict(data, &c, file); err != nil {
		return nil, err
	}
	var ps []Problem
	if !reID.MatchString(c.ID) {
		ps = append(ps, Problem{Field: "id", Message: fmt.Sprintf("%q: letters, digits, '.', '_', '-' (at most 100)", c.ID)})
	}
	if c.Image == "" {
		ps = append(ps, Problem{Field: "image", Message: "is required (an image on the engine; or register with --build DIR)"})
	} else if !reImage.MatchString(c.Image) {
		ps = append(ps, Problem{Field: "image", Message: fmt.Sprintf("%q is not an image reference", c.Image)})
	}
	for i, a := range c.Actions {
		if !reAction.MatchString(a) || a == "run" {
			ps = append(ps, Problem{Field: fmt.Sprintf("actions[%d]", i), Message: fmt.Sprintf("%q: a sync action is a name other than run", a)})
		}
	}
	if len(c.Schema) > 0 {
		if _, err := compileSchema(c.Schema); err != nil {
			ps = append(ps, Problem{Field: "schema", Message: "not a valid JSON schema: " + err.Error()})
		}
	}
	switch c.DataTypeSupport {
	case "", "authoritative", "hints", "none":
	default:
		ps = append(ps, Problem{Field: "data_type_support", Message: fmt.Sprintf("%q: allowed: authoritative, hints, none", c.DataTypeSupport)})
	}
	if c.Network == "host" {
		ps = append(ps, Problem{Field: "network", Message: "the host network is never given"})
	}
	if len(ps) > 0 {
		return nil, &ValidationError{File: file, Problems: ps}
	}
	return &c, nil
}

func compileSchema(raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("component.schema.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("component.schema.json")
}

// ParseComponentConfig reads a configuration (JSON) and checks it against its component:
// parameters must pass the component's schema (a failure names the path that failed).
func ParseComponentConfig(data []byte, file string, comp *Component) (*ComponentConfig, error) {
	var c ComponentConfig
	if err := decodeStrict(data, &c, file); err != nil {
		return nil, err
	}
	var ps []Problem
	if !reID.MatchString(c.ID) {
		ps = append(ps, Problem{Field: "id", Message: fmt.Sprintf("%q: letters, digits, '.', '_', '-' (at most 100)", c.ID)})
	}
	if comp == nil || c.Component != comp.ID {
		ps = append(ps, Problem{Field: "component", Message: fmt.Sprintf("no registered component %q", c.Component)})
	}
	if c.Processors != nil {
		for stage, list := range map[string][]datadir.Processor{"before": c.Processors.Before, "after": c.Processors.After} {
			for i, p := range list {
				if p.Definition.Component == "" {
					ps = append(ps, Problem{Field: fmt.Sprintf("processors.%s[%d].definition.component", stage, i), Message: "is required"})
				}
			}
		}
	}
	for _, p := range c.Storage.Check() {
		ps = append(ps, Problem{Field: p.Path, Message: p.Message})
	}
	ps = append(ps, c.Retry.check("retry")...)
	seenRow := map[string]bool{}
	for i, row := range c.Rows {
		at := fmt.Sprintf("rows[%d]", i)
		if !reID.MatchString(row.ID) {
			ps = append(ps, Problem{Field: at + ".id", Message: fmt.Sprintf("%q: letters, digits, '.', '_', '-' (at most 100)", row.ID)})
		} else if seenRow[row.ID] {
			ps = append(ps, Problem{Field: at + ".id", Message: fmt.Sprintf("%q: another row has this id", row.ID)})
		}
		seenRow[row.ID] = true
		if row.Storage != nil {
			for _, p := range row.Storage.Check() {
				ps = append(ps, Problem{Field: at + "." + p.Path, Message: p.Message})
			}
		}
	}
	if comp != nil && len(comp.Schema) > 0 {
		sch, err := compileSchema(comp.Schema)
		if err == nil {
			// With rows, each row runs with the parameters merged: those must pass.
			type set struct {
				at     string
				params map[string]any
			}
			sets := []set{{"parameters", c.Parameters}}
			if len(c.Rows) > 0 {
				sets = nil
				for i, row := range c.Rows {
					sets = append(sets, set{fmt.Sprintf("rows[%d].parameters", i), c.ForRow(row).Parameters})
				}
			}
			for _, st := range sets {
				ps = append(ps, checkParams(sch, st.at, st.params)...)
			}
		}
	}
	if len(ps) > 0 {
		return nil, &ValidationError{File: file, Problems: ps}
	}
	return &c, nil
}

// checkParams checks parameters against a component's schema, naming each failing path
// under at.
func checkParams(sch *jsonschema.Schema, at string, params map[string]any) []Problem {
	if params == nil {
		params = map[string]any{}
	}
	raw, _ := json.Marshal(params)
	inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	err := sch.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []Problem{{Field: at, Message: err.Error()}}
	}
	var ps []Problem
	for _, p := range flattenSchemaErrors(ve) {
		p.Field = joinPath(at, p.Field)
		ps = append(ps, p)
	}
	return ps
}

func joinPath(a, b string) string {
	if b == "" {
		return a
	}
	if strings.HasPrefix(b, "[") {
		return a + b
	}
	return a + "." + b
}

// flattenSchemaErrors lists the leaf errors of a schema validation with their paths.
func flattenSchemaErrors(ve *jsonschema.ValidationError) []Problem {
	var out []Problem
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		out = append(out, Problem{Field: pointerToField("/" + strings.Join(e.InstanceLocation, "/")), Message: e.ErrorKind.LocalizedString(printer)})
	}
	walk(ve)
	return out
}
