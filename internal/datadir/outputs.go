package datadir

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
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
	DeleteOp    string // eq | ne
	WriteAlways bool
	// Metadata and ColumnMetadata are kept as the table's and its columns' metadata.
	Metadata       map[string]string
	ColumnMetadata map[string]map[string]string
}

// OutFile is a file the component wrote.
type OutFile struct {
	Name string
	Tags []string
	// IsPermanent, IsPublic and Notify are kept as the file's attributes.
	IsPermanent bool
	IsPublic    bool
	Notify      bool
	dir         string // the /data folder it is read from
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
// Everything is read below dir without following links: out/ must hold only real folders and
// regular files with a single name, at most lim.MaxOutputFiles of them, and each manifest at
// most lim.MaxManifestBytes. A link, a malformed manifest or a table without a destination is
// an *Error naming the file: nothing should be loaded then.
func ReadOutputs(dir string, m OutputMapping, lim Limits) (Outputs, error) {
	var res Outputs
	lim = lim.orDefaults()
	f, err := OpenFolder(dir, "")
	if err != nil {
		return res, err
	}
	defer f.Close()
	if err := f.Walk("out", lim.MaxOutputFiles, nil); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, err
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
		return res, err
	}
	written := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		rel := "out/tables/" + name
		if strings.HasSuffix(name, ".manifest") {
			base := strings.TrimSuffix(name, ".manifest")
			if _, err := f.Lstat("out/tables/" + base); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return res, &Error{File: rel, Message: fmt.Sprintf("Found orphaned table manifest: %q (no table %s beside it)", name, base)}
				}
				return res, err
			}
			continue
		}
		written[name] = true
		var man OutTableManifest
		b, found, err := manifest(rel + ".manifest")
		if err != nil {
			return res, err
		}
		if found {
			var unknown []string
			if man, unknown, err = ParseTableManifest(b); err != nil {
				return res, &Error{File: rel + ".manifest", Message: err.Error()}
			}
			if len(unknown) > 0 {
				res.Warnings = append(res.Warnings, UnknownKeysWarning(rel+".manifest", unknown))
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
				return res, &Error{File: rel, Message: fmt.Sprintf("Failed to resolve destination for output table %q: name the file <bucket>.<table>.csv, or give a destination in its manifest or the output mapping", name)}
			}
		}
		data, err := readTableData(f, rel, e.IsDir(), t.Columns)
		if err != nil {
			var de *Error
			if errors.As(err, &de) {
				return res, err
			}
			return res, &Error{File: rel, Message: err.Error()}
		}
		t.Data = data
		res.Tables = append(res.Tables, t)
	}
	res.Missing, _ = MissingSources(m, written)
	fentries, err := f.ReadDir("out/files")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, err
	}
	for _, e := range fentries {
		name := e.Name()
		rel := "out/files/" + name
		if strings.HasSuffix(name, ".manifest") {
			if _, err := f.Lstat(strings.TrimSuffix(rel, ".manifest")); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return res, &Error{File: rel, Message: fmt.Sprintf("Found orphaned file manifest: '%s'", name)}
				}
				return res, err
			}
			continue
		}
		if e.IsDir() {
			continue
		}
		of := OutFile{Name: name, dir: dir}
		var mf *OutputFile
		for i := range m.Files {
			if m.Files[i].Source == name {
				mf = &m.Files[i]
			}
		}
		// A mapping entry for the file replaces its manifest entirely, as on Keboola.
		var opts OutputFile
		if mf != nil {
			opts = *mf
		} else {
			b, found, err := manifest(rel + ".manifest")
			if err != nil {
				return res, err
			}
			if found {
				var unknown []string
				if opts, unknown, err = ParseFileManifest(b); err != nil {
					return res, &Error{File: rel + ".manifest", Message: err.Error()}
				}
				if len(unknown) > 0 {
					res.Warnings = append(res.Warnings, UnknownKeysWarning(rel+".manifest", unknown))
				}
			}
		}
		of.Tags, of.IsPermanent, of.IsPublic, of.Notify = opts.Tags, opts.IsPermanent, opts.IsPublic, opts.Notify
		res.Files = append(res.Files, of)
	}
	for _, mf := range m.Files {
		found := false
		for _, of := range res.Files {
			found = found || of.Name == mf.Source
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
