package datadir

import (
	"bufio"
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
		fh, err := f.Open(rel)
		if err != nil {
			return nil, err
		}
		return &partsReader{files: []*os.File{fh}, names: []string{""}}, nil
	}
	if len(columns) == 0 {
		return nil, errString("a sliced table (a folder of parts) needs columns in its manifest")
	}
	parts, err := f.ReadDir(rel)
	if err != nil {
		return nil, err
	}
	pr := &partsReader{sliced: true}
	for _, p := range parts {
		if p.IsDir() {
			continue
		}
		fh, err := f.Open(rel + "/" + p.Name())
		if err != nil {
			pr.close()
			var de *Error
			if errors.As(err, &de) {
				return nil, err
			}
			return nil, errString(p.Name() + ": " + err.Error())
		}
		pr.files = append(pr.files, fh)
		pr.names = append(pr.names, p.Name()+": ")
	}
	return pr, nil
}

// partsReader streams a table's file, or a sliced table's parts one after the other (a part
// not ending in a newline gets one), gunzipping the gzipped ones: a table is never held in
// memory whole. Its files are opened (and checked) when the outputs are read; each is closed
// at its end (one never read is closed when collected).
type partsReader struct {
	files  []*os.File
	names  []string // error prefixes: the part's name, "" for a single file
	sliced bool
	cur    io.Reader
	gz     bool
	name   string
	last   byte
	nl     bool  // a newline is owed between parts
	err    error // sticky
}

func (p *partsReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n, err := p.read(b)
	if err != nil && err != io.EOF {
		p.err = err
		p.close()
	}
	return n, err
}

func (p *partsReader) read(b []byte) (int, error) {
	for {
		if len(b) == 0 {
			return 0, nil
		}
		if p.nl {
			p.nl = false
			b[0] = '\n'
			return 1, nil
		}
		if p.cur == nil {
			if len(p.files) == 0 {
				return 0, io.EOF
			}
			br := bufio.NewReaderSize(p.files[0], 64<<10)
			p.name, p.last, p.gz = p.names[0], '\n', false
			if m, _ := br.Peek(2); len(m) == 2 && m[0] == 0x1f && m[1] == 0x8b {
				zr, err := gzip.NewReader(br)
				if err != nil {
					return 0, errString(p.name + "bad gzip: " + err.Error())
				}
				p.cur, p.gz = zr, true
			} else {
				p.cur = br
			}
		}
		n, err := p.cur.Read(b)
		if n > 0 {
			p.last = b[n-1]
			return n, nil
		}
		if err == io.EOF {
			p.files[0].Close()
			p.files, p.names, p.cur = p.files[1:], p.names[1:], nil
			p.nl = p.sliced && p.last != '\n'
			continue
		}
		if err != nil {
			if p.gz {
				return 0, errString(p.name + "bad gzip: " + err.Error())
			}
			return 0, err
		}
	}
}

func (p *partsReader) close() {
	for _, f := range p.files {
		f.Close()
	}
	p.files, p.names = nil, nil
}

type errString string

func (e errString) Error() string { return string(e) }
