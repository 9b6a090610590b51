package datadir

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// The storage mapping of a configuration, as Keboola's runner reads it (input-mapping's and
// output-mapping's configuration trees). Every key Keboola accepts is accepted; the keys berth
// has no concept for are kept and passed on to the component in config.json. An unknown key is
// an error naming its path, as it is on Keboola. Lists may use the older object form
// ({"0": {...}}); Normalize fills every default the runner fills, so config.json carries them.

// StorageMapping is a configuration's input and output mapping.
type StorageMapping struct {
	Input  InputMapping  `json:"input"`
	Output OutputMapping `json:"output"`
}

// InputMapping selects what the component reads.
type InputMapping struct {
	Tables                List[InputTable] `json:"tables,omitempty"`
	Files                 List[InputFiles] `json:"files,omitempty"`
	ReadOnlyStorageAccess *bool            `json:"read_only_storage_access,omitempty"`
}

// InputTable is one table given to the component.
type InputTable struct {
	Source                      string            `json:"source"`
	SourceSearch                map[string]any    `json:"source_search,omitempty"`
	Destination                 string            `json:"destination,omitempty"`
	Days                        *int              `json:"days,omitempty"`
	ChangedSince                string            `json:"changed_since,omitempty"`
	Columns                     []string          `json:"columns"`
	ColumnTypes                 []json.RawMessage `json:"column_types"`
	WhereColumn                 string            `json:"where_column,omitempty"`
	WhereValues                 []string          `json:"where_values"`
	WhereOperator               string            `json:"where_operator"`
	Limit                       int               `json:"limit,omitempty"`
	Overwrite                   bool              `json:"overwrite"`
	UseView                     bool              `json:"use_view"`
	KeepInternalTimestampColumn *bool             `json:"keep_internal_timestamp_column"`
	LoadType                    string            `json:"load_type,omitempty"`
	SourceBranchID              json.RawMessage   `json:"source_branch_id,omitempty"`
}

// InputFiles selects files by tags.
type InputFiles struct {
	Tags          []string    `json:"tags,omitempty"`
	Source        *FileSource `json:"source,omitempty"`
	Query         string      `json:"query,omitempty"`
	FileIDs       []int64     `json:"file_ids,omitempty"`
	FilterByRunID bool        `json:"filter_by_run_id,omitempty"`
	Limit         int         `json:"limit,omitempty"`
	ProcessedTags []string    `json:"processed_tags,omitempty"`
	ChangedSince  string      `json:"changed_since,omitempty"`
	Overwrite     *bool       `json:"overwrite"`
}

// FileSource is the newer form of a file selection: tags with include/exclude.
type FileSource struct {
	Tags []FileTag `json:"tags"`
}

// FileTag is one tag of a FileSource.
type FileTag struct {
	Name  string `json:"name"`
	Match string `json:"match,omitempty"`
}

// OutputMapping says where the component's outputs go.
type OutputMapping struct {
	Tables             List[OutputTable] `json:"tables,omitempty"`
	Files              List[OutputFile]  `json:"files,omitempty"`
	DefaultBucket      string            `json:"default_bucket,omitempty"`
	DataTypeSupport    string            `json:"data_type_support,omitempty"`
	TableModifications string            `json:"table_modifications,omitempty"`
	TreatValuesAsNull  []string          `json:"treat_values_as_null,omitempty"`
	TableFiles         json.RawMessage   `json:"table_files,omitempty"`
}

// MetaKV is one metadata entry of a table or a column.
type MetaKV struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

// ColumnMetadata is metadata by column. Keboola writes an empty one as [] (a PHP empty
// array); berth reads both forms and writes [] when empty, as Keboola does.
type ColumnMetadata map[string][]MetaKV

// MarshalJSON writes [] for an empty map.
func (c ColumnMetadata) MarshalJSON() ([]byte, error) {
	if len(c) == 0 {
		return []byte("[]"), nil
	}
	return json.Marshal(map[string][]MetaKV(c))
}

// UnmarshalJSON reads an object by column, or an empty array.
func (c *ColumnMetadata) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" || s == "[]" {
		*c = nil
		return nil
	}
	var m map[string][]MetaKV
	if err := DecodeStrict(b, &m); err != nil {
		return &PathError{Message: "must be an object of column name → [{key, value}]"}
	}
	*c = m
	return nil
}

// OutputTable maps an output file to a table. Its manifest has the same keys but source.
type OutputTable struct {
	Source                string            `json:"source"`
	Destination           string            `json:"destination,omitempty"`
	Incremental           bool              `json:"incremental"`
	UnloadStrategy        string            `json:"unload_strategy,omitempty"`
	DeduplicationStrategy string            `json:"deduplication_strategy,omitempty"`
	PrimaryKey            []string          `json:"primary_key"`
	Columns               []string          `json:"columns"`
	DistributionKey       []string          `json:"distribution_key"`
	DeleteWhereColumn     string            `json:"delete_where_column,omitempty"`
	DeleteWhereValues     []string          `json:"delete_where_values"`
	DeleteWhereOperator   string            `json:"delete_where_operator"`
	DeleteWhere           []json.RawMessage `json:"delete_where,omitempty"`
	Delimiter             string            `json:"delimiter"`
	Enclosure             string            `json:"enclosure"`
	Metadata              []MetaKV          `json:"metadata"`
	ColumnMetadata        ColumnMetadata    `json:"column_metadata"`
	WriteAlways           bool              `json:"write_always"`
	Tags                  []string          `json:"tags"`
	Schema                []SchemaColumn    `json:"schema"`
	ManifestType          string            `json:"manifest_type,omitempty"`
	HasHeader             *bool             `json:"has_header,omitempty"`
	Description           string            `json:"description,omitempty"`
	TableMetadata         map[string]any    `json:"table_metadata,omitempty"`
}

// SchemaColumn is one column of the newer (typed) manifest format.
type SchemaColumn struct {
	Name            string          `json:"name"`
	DataType        json.RawMessage `json:"data_type,omitempty"`
	Nullable        *bool           `json:"nullable,omitempty"`
	PrimaryKey      bool            `json:"primary_key,omitempty"`
	DistributionKey bool            `json:"distribution_key,omitempty"`
	Description     string          `json:"description,omitempty"`
	Metadata        map[string]any  `json:"metadata,omitempty"`
}

// OutputFile maps an output file to tags. Its manifest has the same keys but source.
type OutputFile struct {
	Source      string   `json:"source"`
	Tags        []string `json:"tags"`
	IsPublic    bool     `json:"is_public"`
	IsPermanent bool     `json:"is_permanent"`
	IsEncrypted *bool    `json:"is_encrypted"`
	Notify      bool     `json:"notify"`
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

// UnmarshalJSON: see the package's mapping rules (object form, paths in errors).
func (s *StorageMapping) UnmarshalJSON(b []byte) error { return DecodeObject(b, FieldsOf(s)) }

// UnmarshalJSON reads the input mapping; tables and files may use the older object form.
func (m *InputMapping) UnmarshalJSON(b []byte) error { return DecodeObject(b, FieldsOf(m)) }

// UnmarshalJSON reads the output mapping; tables and files may use the older object form.
func (m *OutputMapping) UnmarshalJSON(b []byte) error { return DecodeObject(b, FieldsOf(m)) }

// UnmarshalJSON reads a table's output mapping strictly.
func (t *OutputTable) UnmarshalJSON(b []byte) error { return DecodeObject(b, FieldsOf(t)) }

// UnmarshalJSON reads a file's output mapping strictly.
func (f *OutputFile) UnmarshalJSON(b []byte) error { return DecodeObject(b, FieldsOf(f)) }

// FieldsOf lists pointers to a struct's fields by their JSON names, embedded structs' fields
// inline; fields named "-" are left out. v must be a pointer to a struct.
func FieldsOf(v any) map[string]any {
	out := map[string]any{}
	fieldsOf(reflect.ValueOf(v).Elem(), out)
	return out
}

func fieldsOf(rv reflect.Value, out map[string]any) {
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		sf := rt.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
			fieldsOf(rv.Field(i), out)
			continue
		}
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out[name] = rv.Field(i).Addr().Interface()
	}
}

// Normalize fills the defaults Keboola's runner fills into every mapping (input-mapping's and
// output-mapping's configuration trees), so the component reads the same config.json.
func (s *StorageMapping) Normalize() {
	for i := range s.Input.Tables {
		t := &s.Input.Tables[i]
		t.Columns = nonNil(t.Columns)
		if t.ColumnTypes == nil {
			t.ColumnTypes = []json.RawMessage{}
		}
		t.WhereValues = nonNil(t.WhereValues)
		if t.WhereOperator == "" {
			t.WhereOperator = "eq"
		}
		if t.KeepInternalTimestampColumn == nil {
			yes := true
			t.KeepInternalTimestampColumn = &yes
		}
	}
	for i := range s.Input.Files {
		f := &s.Input.Files[i]
		if f.Overwrite == nil {
			yes := true
			f.Overwrite = &yes
		}
	}
	for i := range s.Output.Tables {
		s.Output.Tables[i].fillDefaults()
	}
	for i := range s.Output.Files {
		s.Output.Files[i].fillDefaults()
	}
}

func (o *OutputTable) fillDefaults() {
	o.PrimaryKey = nonNil(o.PrimaryKey)
	o.Columns = nonNil(o.Columns)
	o.DistributionKey = nonNil(o.DistributionKey)
	o.DeleteWhereValues = nonNil(o.DeleteWhereValues)
	o.Tags = nonNil(o.Tags)
	if o.DeleteWhereOperator == "" {
		o.DeleteWhereOperator = "eq"
	}
	if o.Delimiter == "" {
		o.Delimiter = ","
	}
	if o.Enclosure == "" {
		o.Enclosure = `"`
	}
	if o.Metadata == nil {
		o.Metadata = []MetaKV{}
	}
	if o.Schema == nil {
		o.Schema = []SchemaColumn{}
	}
}

func (o *OutputFile) fillDefaults() {
	o.Tags = nonNil(o.Tags)
	if o.IsEncrypted == nil {
		yes := true
		o.IsEncrypted = &yes
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Check reports what Keboola's mapping configuration refuses, each problem naming its path
// (storage.input.tables[0].where_operator …) and what is allowed.
func (s StorageMapping) Check() []PathError {
	var ps []PathError
	bad := func(path, format string, args ...any) {
		ps = append(ps, PathError{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	for i, t := range s.Input.Tables {
		at := fmt.Sprintf("storage.input.tables[%d]", i)
		if t.Source == "" && t.SourceSearch == nil {
			bad(at+".source", `the "source" must be configured`)
		}
		if op := t.WhereOperator; op != "" && op != "eq" && op != "ne" {
			bad(at+".where_operator", "%q: allowed: eq, ne", op)
		}
		if t.WhereColumn != "" && len(t.WhereValues) == 0 {
			bad(at+".where_values", `when "where_column" is set, "where_values" must be provided`)
		}
		if t.WhereColumn == "" && len(t.WhereValues) > 0 {
			bad(at+".where_column", `when "where_values" is set, a non-empty "where_column" must be provided`)
		}
		if strings.ContainsAny(t.Destination, "/\\") || t.Destination == ".." || t.Destination == "." {
			bad(at+".destination", "a file name, not a path")
		}
	}
	for i, f := range s.Input.Files {
		at := fmt.Sprintf("storage.input.files[%d]", i)
		if len(f.Tags) == 0 && f.Source == nil && f.Query == "" && len(f.FileIDs) == 0 {
			bad(at, `at least one of "tags", "source.tags", "query" or "file_ids" must be defined`)
		}
		if len(f.Tags) > 0 && f.Source != nil {
			bad(at, `both "tags" and "source.tags" cannot be defined`)
		}
		if f.Source != nil {
			for j, tg := range f.Source.Tags {
				if tg.Match != "" && tg.Match != "include" && tg.Match != "exclude" {
					bad(fmt.Sprintf("%s.source.tags[%d].match", at, j), "%q: allowed: include, exclude", tg.Match)
				}
			}
		}
		if f.Query != "" {
			bad(at+".query", "berth's file storage has no search query; select files by tags")
		}
	}
	for i, t := range s.Output.Tables {
		at := fmt.Sprintf("storage.output.tables[%d]", i)
		if t.Source == "" {
			bad(at+".source", `the "source" must be configured`)
		}
		for _, p := range t.check() {
			bad(at+"."+p.Path, "%s", p.Message)
		}
	}
	for i, f := range s.Output.Files {
		if f.Source == "" {
			bad(fmt.Sprintf("storage.output.files[%d].source", i), `the "source" must be configured`)
		}
	}
	return ps
}

// check is what the mapping and a manifest must both respect.
func (o OutputTable) check() []PathError {
	var ps []PathError
	if op := o.DeleteWhereOperator; op != "" && op != "eq" && op != "ne" {
		ps = append(ps, PathError{"delete_where_operator", fmt.Sprintf("%q: allowed: eq, ne", op)})
	}
	if o.DeleteWhereColumn != "" && len(o.DeleteWhereValues) == 0 {
		ps = append(ps, PathError{"delete_where_values", `when "delete_where_column" is set, "delete_where_values" is required`})
	}
	if o.DeleteWhereColumn != "" && len(o.DeleteWhere) > 0 {
		ps = append(ps, PathError{"delete_where", `only one of "delete_where_column" or "delete_where" can be defined`})
	}
	if len(o.Schema) > 0 && len(o.Columns) > 0 {
		ps = append(ps, PathError{"schema", `only one of "schema" or "columns" can be defined`})
	}
	if o.Delimiter != "" && o.Delimiter != "," {
		ps = append(ps, PathError{"delimiter", fmt.Sprintf("%q: berth loads comma-separated tables only", o.Delimiter)})
	}
	if o.Enclosure != "" && o.Enclosure != `"` {
		ps = append(ps, PathError{"enclosure", fmt.Sprintf("%q: berth loads tables enclosed by '\"' only", o.Enclosure)})
	}
	for i, c := range o.Columns {
		if strings.TrimSpace(c) == "" {
			ps = append(ps, PathError{fmt.Sprintf("columns[%d]", i), "an empty column name"})
		}
	}
	for i, c := range o.Schema {
		if c.Name == "" {
			ps = append(ps, PathError{fmt.Sprintf("schema[%d].name", i), "is required"})
		}
	}
	return ps
}

// MarshalJSON leaves out an empty input or output, so an empty mapping is {} as Keboola
// writes it.
func (s StorageMapping) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	if !reflect.ValueOf(s.Input).IsZero() {
		m["input"] = s.Input
	}
	if !reflect.ValueOf(s.Output).IsZero() {
		m["output"] = s.Output
	}
	return json.Marshal(m)
}
