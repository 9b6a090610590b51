package datadir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// OutTableManifest is out/tables/<name>.manifest: the keys of a table's output mapping (both of
// Keboola's formats: the legacy one with columns and metadata, and the newer one with schema,
// manifest_type, has_header and table_metadata).
type OutTableManifest = OutputTable

// OutFileManifest is out/files/<name>.manifest.
type OutFileManifest = OutputFile

// ParseTableManifest reads an output table manifest: a key berth does not know is returned in
// unknown (a warning for the job's log, as Keboola's libraries write keys of later versions);
// a known key with a bad value is an error naming it.
func ParseTableManifest(b []byte) (OutTableManifest, []string, error) {
	var man OutTableManifest
	unknown, err := parseManifest(b, manifestFields(&man))
	if err != nil {
		return man, unknown, err
	}
	if ps := man.check(); len(ps) > 0 {
		return man, unknown, &ps[0]
	}
	return man, unknown, nil
}

// ParseFileManifest reads an output file manifest, like ParseTableManifest.
func ParseFileManifest(b []byte) (OutFileManifest, []string, error) {
	var man OutFileManifest
	unknown, err := parseManifest(b, manifestFields(&man))
	return man, unknown, err
}

// manifestFields are a mapping's keys but source, which a manifest does not have.
func manifestFields(v any) map[string]any {
	f := FieldsOf(v)
	delete(f, "source")
	return f
}

func parseManifest(b []byte, fields map[string]any) ([]string, error) {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] != '{' {
		return nil, &PathError{Message: "a manifest is a JSON object"}
	}
	if !json.Valid(t) {
		var v any
		return nil, jsonPathError(json.Unmarshal(t, &v))
	}
	unknown, err := DecodeTolerant(t, fields)
	sort.Strings(unknown)
	return unknown, err
}

// UnknownKeysWarning is the job-log line for a manifest's keys berth does not know.
func UnknownKeysWarning(file string, keys []string) string {
	return fmt.Sprintf("warning: %s: ignored unknown key(s) %s", file, strings.Join(keys, ", "))
}

// TableManifest is in/tables/<name>.manifest, with every key Keboola's input mapping writes
// (and those older libraries still read).
type TableManifest struct {
	ID              string         `json:"id"`
	URI             string         `json:"uri"`
	Name            string         `json:"name"`
	PrimaryKey      []string       `json:"primary_key"`
	DistributionKey []string       `json:"distribution_key"`
	Created         string         `json:"created"`
	LastChangeDate  string         `json:"last_change_date"`
	LastImportDate  string         `json:"last_import_date"`
	Columns         []string       `json:"columns"`
	Metadata        []InMeta       `json:"metadata"`
	ColumnMetadata  map[string]any `json:"column_metadata"`
	RowsCount       int            `json:"rows_count"`
	DataSizeBytes   int64          `json:"data_size_bytes"`
	IsAlias         bool           `json:"is_alias"`
	IndexedColumns  []string       `json:"indexed_columns"`
	Attributes      []any          `json:"attributes"`
}

// NewTableManifest is an input table manifest with every list present (empty, never null),
// as Keboola's input mapping writes it; column_metadata has an entry per column.
func NewTableManifest(id, name, uri string, columns, primaryKey []string, created, changed time.Time, rows int, size int64,
	meta []InMeta, colMeta map[string][]InMeta) TableManifest {
	cm := map[string]any{}
	for _, c := range columns {
		if len(colMeta[c]) > 0 {
			cm[c] = colMeta[c]
		} else {
			cm[c] = []any{}
		}
	}
	if meta == nil {
		meta = []InMeta{}
	}
	return TableManifest{
		ID: id, URI: uri, Name: name, PrimaryKey: nonNil(primaryKey), DistributionKey: []string{},
		Created: TS(created), LastChangeDate: TS(changed), LastImportDate: TS(changed),
		Columns: nonNil(columns), Metadata: meta, ColumnMetadata: cm,
		RowsCount: rows, DataSizeBytes: size, IndexedColumns: nonNil(primaryKey), Attributes: []any{},
	}
}

// InMeta is a metadata entry of an input manifest.
type InMeta struct {
	ID        string `json:"id"`
	Key       string `json:"key"`
	Value     any    `json:"value"`
	Provider  string `json:"provider"`
	Timestamp string `json:"timestamp"`
}

// FileManifest is in/files/<id>_<name>.manifest, keys in the order Keboola writes them.
type FileManifest struct {
	ID          int64    `json:"id"`
	Name        string   `json:"name"`
	Created     string   `json:"created"`
	IsPublic    bool     `json:"is_public"`
	IsEncrypted bool     `json:"is_encrypted"`
	IsSliced    bool     `json:"is_sliced"`
	Tags        []string `json:"tags"`
	MaxAgeDays  int      `json:"max_age_days"`
	SizeBytes   int64    `json:"size_bytes"`
}

// MergeTable resolves one output table from its manifest and its output mapping entry (nil
// when the mapping does not name it), as Keboola's output mapping merges them: the mapping
// wins, but a mapping value equal to the runner's default (incremental false, delimiter ",",
// enclosure '"', delete_where_operator eq) or empty does not override the manifest; metadata
// is merged by key and column metadata per column.
func MergeTable(source string, man OutTableManifest, mt *OutputTable) OutTable {
	o := man
	if mt != nil {
		m := *mt
		if m.Destination != "" {
			o.Destination = m.Destination
		}
		o.Incremental = o.Incremental || m.Incremental
		if m.Delimiter != "" && m.Delimiter != "," {
			o.Delimiter = m.Delimiter
		}
		if m.Enclosure != "" && m.Enclosure != `"` {
			o.Enclosure = m.Enclosure
		}
		if m.DeleteWhereOperator != "" && m.DeleteWhereOperator != "eq" {
			o.DeleteWhereOperator = m.DeleteWhereOperator
		}
		if len(m.PrimaryKey) > 0 {
			o.PrimaryKey = m.PrimaryKey
		}
		if len(m.Columns) > 0 {
			o.Columns = m.Columns
		}
		if len(m.DistributionKey) > 0 {
			o.DistributionKey = m.DistributionKey
		}
		if m.DeleteWhereColumn != "" {
			o.DeleteWhereColumn, o.DeleteWhereValues = m.DeleteWhereColumn, m.DeleteWhereValues
		}
		o.WriteAlways = o.WriteAlways || m.WriteAlways
		if len(m.Tags) > 0 {
			o.Tags = m.Tags
		}
		if len(m.Schema) > 0 {
			o.Schema = m.Schema
		}
		if m.HasHeader != nil {
			o.HasHeader = m.HasHeader
		}
		if m.Description != "" {
			o.Description = m.Description
		}
		if m.ManifestType != "" {
			o.ManifestType = m.ManifestType
		}
		o.Metadata = mergeMeta(o.Metadata, m.Metadata)
		if len(m.ColumnMetadata) > 0 {
			cm := ColumnMetadata{}
			for c, kv := range o.ColumnMetadata {
				cm[c] = kv
			}
			for c, kv := range m.ColumnMetadata {
				cm[c] = mergeMeta(cm[c], kv)
			}
			o.ColumnMetadata = cm
		}
		for k, v := range m.TableMetadata {
			if o.TableMetadata == nil {
				o.TableMetadata = map[string]any{}
			}
			o.TableMetadata[k] = v
		}
	}
	t := OutTable{Source: source, Destination: o.Destination, Incremental: o.Incremental,
		PrimaryKey: o.PrimaryKey, Columns: o.Columns, DeleteWhere: o.DeleteWhereColumn,
		DeleteVals: o.DeleteWhereValues, DeleteOp: o.DeleteWhereOperator, WriteAlways: o.WriteAlways}
	// The newer format: the schema names the columns (and the primary key); the CSV has a
	// header row only when has_header says so.
	if len(o.Schema) > 0 {
		var cols, pk []string
		for _, c := range o.Schema {
			cols = append(cols, c.Name)
			if c.PrimaryKey {
				pk = append(pk, c.Name)
			}
		}
		if o.HasHeader == nil || !*o.HasHeader {
			t.Columns = cols
		} else {
			t.Columns = nil
		}
		if len(t.PrimaryKey) == 0 {
			t.PrimaryKey = pk
		}
	} else if o.HasHeader != nil && *o.HasHeader {
		t.Columns = nil
	}
	// Metadata is kept as Keboola keeps it: the table's entries (with the description as
	// KBC.description) and each column's.
	t.Metadata = map[string]string{}
	for _, kv := range o.Metadata {
		t.Metadata[kv.Key] = fmt.Sprint(kv.Value)
	}
	for k, v := range o.TableMetadata {
		t.Metadata[k] = fmt.Sprint(v)
	}
	if o.Description != "" {
		t.Metadata["KBC.description"] = o.Description
	}
	t.ColumnMetadata = map[string]map[string]string{}
	for c, kvs := range o.ColumnMetadata {
		for _, kv := range kvs {
			if t.ColumnMetadata[c] == nil {
				t.ColumnMetadata[c] = map[string]string{}
			}
			t.ColumnMetadata[c][kv.Key] = fmt.Sprint(kv.Value)
		}
	}
	for _, c := range o.Schema {
		for k, v := range c.Metadata {
			if t.ColumnMetadata[c.Name] == nil {
				t.ColumnMetadata[c.Name] = map[string]string{}
			}
			t.ColumnMetadata[c.Name][k] = fmt.Sprint(v)
		}
		if c.Description != "" {
			if t.ColumnMetadata[c.Name] == nil {
				t.ColumnMetadata[c.Name] = map[string]string{}
			}
			t.ColumnMetadata[c.Name]["KBC.description"] = c.Description
		}
	}
	if len(t.Metadata) == 0 {
		t.Metadata = nil
	}
	if len(t.ColumnMetadata) == 0 {
		t.ColumnMetadata = nil
	}
	return t
}

func mergeMeta(base, over []MetaKV) []MetaKV {
	if len(over) == 0 {
		return base
	}
	out := append([]MetaKV(nil), base...)
	for _, kv := range over {
		replaced := false
		for i := range out {
			if out[i].Key == kv.Key {
				out[i].Value, replaced = kv.Value, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// MissingSources lists the sources the output mapping names that the component did not
// write, in mapping order, formatted as Keboola's message: Table sources not found: "a.csv", "b.csv".
func MissingSources(m OutputMapping, written map[string]bool) (string, []string) {
	var miss []string
	for _, t := range m.Tables {
		if !written[t.Source] {
			miss = append(miss, t.Source)
		}
	}
	if len(miss) == 0 {
		return "", nil
	}
	q := make([]string, len(miss))
	for i, s := range miss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "Table sources not found: " + strings.Join(q, ", "), miss
}
