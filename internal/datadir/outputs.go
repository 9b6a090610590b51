package datadir

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// OutTableManifest is out/tables/<name>.manifest.
type OutTableManifest struct {
	Destination       string   `json:"destination"`
	Incremental       bool     `json:"incremental"`
	PrimaryKey        []string `json:"primary_key"`
	Columns           []string `json:"columns"`
	DeleteWhereColumn string   `json:"delete_where_column"`
	DeleteWhereValues []string `json:"delete_where_values"`
	Delimiter         string   `json:"delimiter"`
	Enclosure         string   `json:"enclosure"`
}

// OutFileManifest is out/files/<name>.manifest.
type OutFileManifest struct {
	Tags     []string `json:"tags"`
	IsPublic bool     `json:"is_public"`
}

// OutTable is a table the component wrote, ready to load.
type OutTable struct {
	Source      string   // file or folder name under out/tables
	Destination string   // table id
	Columns     []string // from the manifest or mapping (header-less / sliced); nil: the CSV has a header
	Data        io.Reader
	Incremental bool
	PrimaryKey  []string
	DeleteWhere string
	DeleteVals  []string
	WriteAlways bool
}

// OutFile is a file the component wrote.
type OutFile struct {
	Name string
	Path string
	Tags []string
}

// ReadOutputs reads every table and file under out/, with manifests and the mapping applied.
// Any malformed manifest or a table without a destination is an *Error naming the file:
// nothing should be loaded then.
func ReadOutputs(dir string, m OutputMapping) ([]OutTable, []OutFile, error) {
	tdir := filepath.Join(dir, "out", "tables")
	entries, err := os.ReadDir(tdir)
	if err != nil && !os.IsNotExist(err) {
		return nil, nil, err
	}
	var tables []OutTable
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".manifest") {
			base := strings.TrimSuffix(name, ".manifest")
			if _, err := os.Stat(filepath.Join(tdir, base)); err != nil {
				return nil, nil, &Error{File: "out/tables/" + name, Message: "a manifest without its table " + base}
			}
			continue
		}
		var man OutTableManifest
		if b, err := os.ReadFile(filepath.Join(tdir, name+".manifest")); err == nil {
			if man, err = ParseTableManifest(b); err != nil {
				return nil, nil, &Error{File: "out/tables/" + name + ".manifest", Message: err.Error()}
			}
		}
		t := OutTable{Source: name, Incremental: man.Incremental, PrimaryKey: man.PrimaryKey, Columns: man.Columns,
			DeleteWhere: man.DeleteWhereColumn, DeleteVals: man.DeleteWhereValues}
		// Destination: mapping → manifest → file name.
		t.Destination = man.Destination
		for _, mt := range m.Tables {
			if mt.Source == name {
				t.Destination = mt.Destination
				t.Incremental = t.Incremental || mt.Incremental
				if len(mt.PrimaryKey) > 0 {
					t.PrimaryKey = mt.PrimaryKey
				}
				if len(mt.Columns) > 0 {
					t.Columns = mt.Columns
				}
				if mt.DeleteWhereColumn != "" {
					t.DeleteWhere, t.DeleteVals = mt.DeleteWhereColumn, mt.DeleteWhereValues
				}
				t.WriteAlways = mt.WriteAlways
			}
		}
		if t.Destination == "" {
			t.Destination = strings.TrimSuffix(strings.TrimSuffix(name, ".gz"), ".csv")
			if strings.Count(t.Destination, ".") < 1 {
				return nil, nil, &Error{File: "out/tables/" + name, Message: "no destination: name the file <bucket>.<table>.csv, or give one in its manifest or the output mapping"}
			}
		}
		data, err := readTableData(filepath.Join(tdir, name), e.IsDir(), t.Columns)
		if err != nil {
			return nil, nil, &Error{File: "out/tables/" + name, Message: err.Error()}
		}
		t.Data = data
		tables = append(tables, t)
	}
	fdir := filepath.Join(dir, "out", "files")
	fentries, err := os.ReadDir(fdir)
	if err != nil && !os.IsNotExist(err) {
		return nil, nil, err
	}
	var files []OutFile
	for _, e := range fentries {
		name := e.Name()
		if e.IsDir() || strings.HasSuffix(name, ".manifest") {
			continue
		}
		f := OutFile{Name: name, Path: filepath.Join(fdir, name)}
		if b, err := os.ReadFile(f.Path + ".manifest"); err == nil {
			var man OutFileManifest
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&man); err != nil {
				return nil, nil, &Error{File: "out/files/" + name + ".manifest", Message: "malformed manifest: " + err.Error()}
			}
			f.Tags = man.Tags
		}
		for _, mf := range m.Files {
			if mf.Source == name {
				f.Tags = append(f.Tags, mf.Tags...)
			}
		}
		files = append(files, f)
	}
	return tables, files, nil
}

// readTableData returns a table's CSV: one file (gzip allowed), or a sliced table (a folder of
// parts, gzip allowed, no header: the columns come from the manifest).
func readTableData(path string, dir bool, columns []string) (io.Reader, error) {
	if !dir {
		return readMaybeGzip(path)
	}
	if len(columns) == 0 {
		return nil, errString("a sliced table (a folder of parts) needs columns in its manifest")
	}
	parts, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(parts))
	for _, p := range parts {
		if !p.IsDir() {
			names = append(names, p.Name())
		}
	}
	sort.Strings(names)
	var all bytes.Buffer
	for _, n := range names {
		r, err := readMaybeGzip(filepath.Join(path, n))
		if err != nil {
			return nil, errString(n + ": " + err.Error())
		}
		b, _ := io.ReadAll(r)
		all.Write(b)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			all.WriteByte('\n')
		}
	}
	return &all, nil
}

func readMaybeGzip(path string) (io.Reader, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			return nil, errString("bad gzip: " + err.Error())
		}
		return bytes.NewReader(out), nil
	}
	return bytes.NewReader(b), nil
}

type errString string

func (e errString) Error() string { return string(e) }

// ParseTableManifest reads an output table manifest strictly: unknown fields, wrong types and
// delimiters other than RFC 4180's are errors.
func ParseTableManifest(b []byte) (OutTableManifest, error) {
	var man OutTableManifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&man); err != nil {
		return man, errString("malformed manifest: " + err.Error())
	}
	if dec.More() {
		return man, errString("malformed manifest: more than one JSON value")
	}
	if (man.Delimiter != "" && man.Delimiter != ",") || (man.Enclosure != "" && man.Enclosure != `"`) {
		return man, errString(`only delimiter "," and enclosure '"' are supported`)
	}
	for _, c := range man.Columns {
		if c == "" {
			return man, errString("malformed manifest: an empty column name")
		}
	}
	return man, nil
}
