package datadir

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, p, s string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDestinationPrecedenceAndSlices(t *testing.T) {
	dir := t.TempDir()
	Layout(dir)
	tables := filepath.Join(dir, "out", "tables")
	write(t, filepath.Join(tables, "a.csv"), "x\n1\n")
	write(t, filepath.Join(tables, "a.csv.manifest"), `{"destination": "out.c-m.from_manifest"}`)
	write(t, filepath.Join(tables, "out.c-m.by_name.csv"), "x\n1\n")
	write(t, filepath.Join(tables, "b.csv"), "x\n1\n")
	write(t, filepath.Join(tables, "b.csv.manifest"), `{"destination": "out.c-m.ignored", "primary_key": ["x"]}`)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("1,2\n"))
	zw.Close()
	write(t, filepath.Join(tables, "s.csv", "part-0.gz"), gz.String())
	write(t, filepath.Join(tables, "s.csv", "part-1"), "3,4")
	write(t, filepath.Join(tables, "s.csv.manifest"), `{"destination": "out.c-m.sliced", "columns": ["p", "q"]}`)
	write(t, filepath.Join(dir, "out", "files", "r.txt"), "r")
	write(t, filepath.Join(dir, "out", "files", "r.txt.manifest"), `{"tags": ["m"]}`)

	res, err := ReadOutputs(dir, OutputMapping{
		Tables: []OutputTable{{Source: "b.csv", Destination: "out.c-m.from_mapping", Incremental: true}},
		Files:  []OutputFile{{Source: "r.txt", Tags: []string{"n"}}},
	}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	got, files := res.Tables, res.Files
	dest := map[string]OutTable{}
	for _, o := range got {
		dest[o.Destination] = o
	}
	for _, d := range []string{"out.c-m.from_manifest", "out.c-m.by_name", "out.c-m.from_mapping", "out.c-m.sliced"} {
		if _, ok := dest[d]; !ok {
			t.Errorf("no table for %s: %+v", d, dest)
		}
	}
	if b := dest["out.c-m.from_mapping"]; !b.Incremental || strings.Join(b.PrimaryKey, ",") != "x" {
		t.Errorf("mapping + manifest merge: %+v", b)
	}
	data, _ := io.ReadAll(dest["out.c-m.sliced"].Data)
	if string(data) != "1,2\n3,4\n" {
		t.Errorf("sliced data %q", data)
	}
	// A mapping entry for a file replaces its manifest entirely (output-mapping's FileWriter).
	if len(files) != 1 || strings.Join(files[0].Tags, ",") != "n" {
		t.Errorf("files %+v", files)
	}
}

func TestOutputErrorsNameTheFile(t *testing.T) {
	cases := map[string]func(dir string){
		"out/tables/t.csv.manifest": func(d string) {
			write(t, filepath.Join(d, "out/tables/t.csv"), "a\n1\n")
			write(t, filepath.Join(d, "out/tables/t.csv.manifest"), `{"destination": 3}`)
		},
		"out/tables/nodest.csv": func(d string) { write(t, filepath.Join(d, "out/tables/nodest.csv"), "a\n1\n") },
		"out/tables/sl":         func(d string) { write(t, filepath.Join(d, "out/tables/sl/part"), "1\n") },
		"out/tables/orphan.csv.manifest": func(d string) {
			write(t, filepath.Join(d, "out/tables/orphan.csv.manifest"), `{}`)
		},
		"out/files/f.manifest": func(d string) {
			write(t, filepath.Join(d, "out/files/f"), "x")
			write(t, filepath.Join(d, "out/files/f.manifest"), `{"tags": "x"}`)
		},
		"out/state.json": func(d string) { write(t, filepath.Join(d, "out/state.json"), `[1`) },
	}
	for file, setup := range cases {
		dir := t.TempDir()
		Layout(dir)
		setup(dir)
		_, err := ReadOutputs(dir, OutputMapping{}, Limits{})
		if err == nil {
			_, _, err = ReadState(dir, Limits{})
		}
		var de *Error
		if !errors.As(err, &de) || de.File != file {
			t.Errorf("%s: err %v", file, err)
		}
	}
}

func FuzzManifest(f *testing.F) {
	for _, s := range []string{`{"destination": "out.c-a.b", "incremental": true, "primary_key": ["id"]}`,
		`{"columns": ["a", "b"], "delimiter": ",", "enclosure": "\""}`, `{"delete_where_column": "x", "delete_where_values": ["1"]}`,
		`{}`, `[]`, `{"destination": 1}`, `{"columns": [""]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, _, err := ParseTableManifest(b)
		if err != nil {
			return
		}
		for _, c := range m.Columns {
			if c == "" {
				t.Fatal("an empty column name was accepted")
			}
		}
		if m.Delimiter != "" && m.Delimiter != "," {
			t.Fatalf("delimiter %q accepted", m.Delimiter)
		}
	})
}
