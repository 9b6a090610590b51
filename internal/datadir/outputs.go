package datadir

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
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
	Tags []string
	dir  string // the /data folder it is read from
}

// Open opens the file's content, below the job's folder and without following links.
func (o OutFile) Open() (*os.File, error) {
	f, err := OpenFolder(o.dir, "")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Open("out/files/" + o.Name)
}

// ReadOutputs reads every table and file under out/, with manifests and the mapping applied.
// Everything is read below dir without following links: out/ must hold only real folders and
// regular files with a single name, at most lim.MaxOutputFiles of them, and each manifest at
// most lim.MaxManifestBytes. A link, a malformed manifest or a table without a destination is
// an *Error naming the file: nothing should be loaded then.
func ReadOutputs(dir string, m OutputMapping, lim Limits) ([]OutTable, []OutFile, error) {
	lim = lim.orDefaults()
	f, err := OpenFolder(dir, "")
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if err := f.Walk("out", lim.MaxOutputFiles, nil); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	manifest := func(rel string) ([]byte, bool, error) {
		b, err := f.ReadFile(rel, lim.MaxManifestBytes, "the cap on a manifest")
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
		return b, err == nil, err
	}
	entries, err := f.ReadDir("out/tables")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	var tables []OutTable
	for _, e := range entries {
		name := e.Name()
		rel := "out/tables/" + name
		if strings.HasSuffix(name, ".manifest") {
			base := strings.TrimSuffix(name, ".manifest")
			if _, err := f.Lstat("out/tables/" + base); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil, nil, &Error{File: rel, Message: "a manifest without its table " + base}
				}
				return nil, nil, err
			}
			continue
		}
		var man OutTableManifest
		b, found, err := manifest(rel + ".manifest")
		if err != nil {
			return nil, nil, err
		}
		if found {
			if man, err = ParseTableManifest(b); err != nil {
				return nil, nil, &Error{File: rel + ".manifest", Message: err.Error()}
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
				return nil, nil, &Error{File: rel, Message: "no destination: name the file <bucket>.<table>.csv, or give one in its manifest or the output mapping"}
			}
		}
		data, err := readTableData(f, rel, e.IsDir(), t.Columns)
		if err != nil {
			var de *Error
			if errors.As(err, &de) {
				return nil, nil, err
			}
			return nil, nil, &Error{File: rel, Message: err.Error()}
		}
		t.Data = data
		tables = append(tables, t)
	}
	fentries, err := f.ReadDir("out/files")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	var files []OutFile
	for _, e := range fentries {
		name := e.Name()
		if e.IsDir() || strings.HasSuffix(name, ".manifest") {
			continue
		}
		of := OutFile{Name: name, dir: dir}
		b, found, err := manifest("out/files/" + name + ".manifest")
		if err != nil {
			return nil, nil, err
		}
		if found {
			var man OutFileManifest
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&man); err != nil {
				return nil, nil, &Error{File: "out/files/" + name + ".manifest", Message: "malformed manifest: " + err.Error()}
			}
			of.Tags = man.Tags
		}
		for _, mf := range m.Files {
			if mf.Source == name {
				of.Tags = append(of.Tags, mf.Tags...)
			}
		}
		files = append(files, of)
	}
	return tables, files, nil
}

// readTableData returns a table's CSV: one file (gzip allowed), or a sliced table (a folder of
// parts, gzip allowed, no header: the columns come from the manifest).
func readTableData(f *Folder, rel string, dir bool, columns []string) (io.Reader, error) {
	if !dir {
		return readMaybeGzip(f, rel)
	}
	if len(columns) == 0 {
		return nil, errString("a sliced table (a folder of parts) needs columns in its manifest")
	}
	parts, err := f.ReadDir(rel)
	if err != nil {
		return nil, err
	}
	var all bytes.Buffer
	for _, p := range parts {
		if p.IsDir() {
			continue
		}
		r, err := readMaybeGzip(f, rel+"/"+p.Name())
		if err != nil {
			var de *Error
			if errors.As(err, &de) {
				return nil, err
			}
			return nil, errString(p.Name() + ": " + err.Error())
		}
		b, _ := io.ReadAll(r)
		all.Write(b)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			all.WriteByte('\n')
		}
	}
	return &all, nil
}

func readMaybeGzip(f *Folder, rel string) (io.Reader, error) {
	fh, err := f.Open(rel)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(fh)
	fh.Close()
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
