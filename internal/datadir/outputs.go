package datadir

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

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
	// Metadata and ColumnMetadata are kept as the table's and its columns' metadata.
	Metadata       map[string]string
	ColumnMetadata map[string]map[string]string
}

// OutFile is a file the component wrote.
type OutFile struct {
	Name string
	Path string
	Tags []string
	// IsPermanent, IsPublic and Notify are kept as the file's attributes.
	IsPermanent bool
	IsPublic    bool
	Notify      bool
}

// Outputs is what a component left in out/, with manifests and the mapping applied.
type Outputs struct {
	Tables []OutTable
	Files  []OutFile
	// Missing is Keboola's message for the tables and files the mapping names that were not
	// written ("" when none): an error for a job that succeeded, ignored for one that failed.
	Missing string
	// Warnings are lines for the job's log (manifest keys berth does not know).
	Warnings []string
}

// ReadOutputs reads every table and file under out/, with manifests and the mapping applied.
// Any malformed manifest or a table without a destination is an *Error naming the file:
// nothing should be loaded then.
func ReadOutputs(dir string, m OutputMapping) (Outputs, error) {
	var res Outputs
	tdir := filepath.Join(dir, "out", "tables")
	entries, err := os.ReadDir(tdir)
	if err != nil && !os.IsNotExist(err) {
		return res, err
	}
	written := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".manifest") {
			base := strings.TrimSuffix(name, ".manifest")
			if _, err := os.Stat(filepath.Join(tdir, base)); err != nil {
				return res, &Error{File: "out/tables/" + name, Message: fmt.Sprintf("Found orphaned table manifest: %q", name)}
			}
			continue
		}
		written[name] = true
		var man OutTableManifest
		if b, err := os.ReadFile(filepath.Join(tdir, name+".manifest")); err == nil {
			var unknown []string
			if man, unknown, err = ParseTableManifest(b); err != nil {
				return res, &Error{File: "out/tables/" + name + ".manifest", Message: err.Error()}
			}
			if len(unknown) > 0 {
				res.Warnings = append(res.Warnings, UnknownKeysWarning("out/tables/"+name+".manifest", unknown))
			}
		}
		var mt *OutputTable
		for i := range m.Tables {
			if m.Tables[i].Source == name {
				mt = &m.Tables[i]
			}
		}
		t := MergeTable(name, man, mt)
		if t.Destination == "" {
			t.Destination = strings.TrimSuffix(strings.TrimSuffix(name, ".gz"), ".csv")
			if m.DefaultBucket != "" && !strings.Contains(t.Destination, ".") {
				t.Destination = m.DefaultBucket + "." + t.Destination
			}
			if strings.Count(t.Destination, ".") < 1 {
				return res, &Error{File: "out/tables/" + name, Message: fmt.Sprintf("Failed to resolve destination for output table %q: name the file <bucket>.<table>.csv, or give a destination in its manifest or the output mapping", name)}
			}
		}
		data, err := readTableData(filepath.Join(tdir, name), e.IsDir(), t.Columns)
		if err != nil {
			return res, &Error{File: "out/tables/" + name, Message: err.Error()}
		}
		t.Data = data
		res.Tables = append(res.Tables, t)
	}
	res.Missing, _ = MissingSources(m, written)
	fdir := filepath.Join(dir, "out", "files")
	fentries, err := os.ReadDir(fdir)
	if err != nil && !os.IsNotExist(err) {
		return res, err
	}
	for _, e := range fentries {
		name := e.Name()
		if strings.HasSuffix(name, ".manifest") {
			if _, err := os.Stat(filepath.Join(fdir, strings.TrimSuffix(name, ".manifest"))); err != nil {
				return res, &Error{File: "out/files/" + name, Message: fmt.Sprintf("Found orphaned file manifest: '%s'", name)}
			}
			continue
		}
		if e.IsDir() {
			continue
		}
		f := OutFile{Name: name, Path: filepath.Join(fdir, name)}
		var mf *OutputFile
		for i := range m.Files {
			if m.Files[i].Source == name {
				mf = &m.Files[i]
			}
		}
		// A mapping entry for the file replaces its manifest entirely, as on Keboola.
		var opts OutputFileOptions
		if mf != nil {
			opts = mf.OutputFileOptions
		} else if b, err := os.ReadFile(f.Path + ".manifest"); err == nil {
			var unknown []string
			if opts, unknown, err = ParseFileManifest(b); err != nil {
				return res, &Error{File: "out/files/" + name + ".manifest", Message: err.Error()}
			}
			if len(unknown) > 0 {
				res.Warnings = append(res.Warnings, UnknownKeysWarning("out/files/"+name+".manifest", unknown))
			}
		}
		f.Tags, f.IsPermanent, f.IsPublic, f.Notify = opts.Tags, opts.IsPermanent, opts.IsPublic, opts.Notify
		res.Files = append(res.Files, f)
	}
	for _, mf := range m.Files {
		found := false
		for _, f := range res.Files {
			found = found || f.Name == mf.Source
		}
		if !found {
			if res.Missing != "" {
				res.Missing += "; "
			}
			res.Missing += fmt.Sprintf("File '%s' not found.", mf.Source)
		}
	}
	return res, nil
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
