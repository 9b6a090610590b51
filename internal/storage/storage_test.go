package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/store"
)

func newStorage(t testing.TB) *Storage {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := New(st, filepath.Join(dir, "storage"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func load(t *testing.T, s *Storage, id, text string, o LoadOptions) {
	t.Helper()
	cols, rows, err := ReadCSV(strings.NewReader(text), o.Columns)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(context.Background(), s.DB(), id, cols, rows, o); err != nil {
		t.Fatal(err)
	}
}

func export(t *testing.T, s *Storage, id string, o ExportOptions) string {
	t.Helper()
	var b bytes.Buffer
	if _, _, err := s.Export(context.Background(), id, &b, o); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestFullAndIncrementalLoads(t *testing.T) {
	s := newStorage(t)
	load(t, s, "in.c-m.t", "id,name\n1,ann\n2,bob\n", LoadOptions{PrimaryKey: []string{"id"}})
	// Incremental: upsert by the key, new columns added, old rows padded.
	load(t, s, "in.c-m.t", "id,name,team\n2,BOB,blue\n3,cid,red\n", LoadOptions{Incremental: true})
	if got := export(t, s, "in.c-m.t", ExportOptions{}); got != "id,name,team\n1,ann,\n2,BOB,blue\n3,cid,red\n" {
		t.Fatalf("after upsert:\n%s", got)
	}
	// delete_where before an incremental load.
	load(t, s, "in.c-m.t", "id,name,team\n4,dan,red\n", LoadOptions{Incremental: true, DeleteWhereColumn: "team", DeleteWhereValues: []string{"red"}})
	if got := export(t, s, "in.c-m.t", ExportOptions{}); got != "id,name,team\n1,ann,\n2,BOB,blue\n4,dan,red\n" {
		t.Fatalf("after delete_where:\n%s", got)
	}
	// delete_where_operator ne deletes the rows whose column is none of the values.
	load(t, s, "in.c-m.t", "id,name,team\n5,eve,green\n", LoadOptions{Incremental: true, DeleteWhereColumn: "team", DeleteWhereValues: []string{"red"}, DeleteWhereOperator: "ne"})
	if got := export(t, s, "in.c-m.t", ExportOptions{}); got != "id,name,team\n4,dan,red\n5,eve,green\n" {
		t.Fatalf("after delete_where ne:\n%s", got)
	}
	// A full load replaces the rows.
	load(t, s, "in.c-m.t", "id,name\n9,zed\n", LoadOptions{})
	tbl, _ := s.GetTable(context.Background(), s.DB(), "in.c-m.t")
	if got := export(t, s, "in.c-m.t", ExportOptions{}); got != "id,name\n9,zed\n" || tbl.RowsCount != 1 || strings.Join(tbl.PrimaryKey, ",") != "id" {
		t.Fatalf("after full load: %s %+v", got, tbl)
	}
	// Without a key, an incremental load appends.
	load(t, s, "in.c-m.log", "a\n1\n", LoadOptions{})
	load(t, s, "in.c-m.log", "a\n1\n", LoadOptions{Incremental: true})
	if got := export(t, s, "in.c-m.log", ExportOptions{}); got != "a\n1\n1\n" {
		t.Fatalf("append: %q", got)
	}
}

func TestExportFilters(t *testing.T) {
	s := newStorage(t)
	load(t, s, "in.c-m.t", "id,team\n1,red\n2,blue\n3,red\n4,green\n", LoadOptions{PrimaryKey: []string{"id"}})
	if got := export(t, s, "in.c-m.t", ExportOptions{WhereColumn: "team", WhereOperator: "ne", WhereValues: []string{"red"}, Columns: []string{"id"}}); got != "id\n2\n4\n" {
		t.Errorf("where ne + columns: %q", got)
	}
	if got := export(t, s, "in.c-m.t", ExportOptions{WhereColumn: "team", WhereValues: []string{"red"}, Limit: 1}); got != "id,team\n1,red\n" {
		t.Errorf("where eq + limit: %q", got)
	}
	cut := time.Now()
	time.Sleep(5 * time.Millisecond)
	load(t, s, "in.c-m.t", "id,team\n2,violet\n", LoadOptions{Incremental: true})
	if got := export(t, s, "in.c-m.t", ExportOptions{ChangedSince: cut}); got != "id,team\n2,violet\n" {
		t.Errorf("changed_since: %q", got)
	}
	var b bytes.Buffer
	if _, _, err := s.Export(context.Background(), "in.c-m.t", &b, ExportOptions{Columns: []string{"nope"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown column: %v", err)
	}
}

func TestCSVRules(t *testing.T) {
	cols, rows, err := ReadCSV(strings.NewReader("a,b\n\"x, \"\"quoted\"\"\",2\n"), nil)
	if err != nil || rows[0][0] != `x, "quoted"` || len(cols) != 2 {
		t.Fatalf("RFC 4180 quoting: %v %v", rows, err)
	}
	for name, in := range map[string]string{"field count": "a,b\n1\n", "bad column": "a b\n1\n", "duplicate column": "a,a\n1,2\n", "empty": ""} {
		if _, _, err := ReadCSV(strings.NewReader(in), nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, err := SplitTableID("nodot"); err == nil {
		t.Error("a table id without a bucket was accepted")
	}
}

func TestFiles(t *testing.T) {
	s := newStorage(t)
	ctx := context.Background()
	f, err := s.UploadFile(ctx, "a.txt", strings.NewReader("hello"), []string{"x", "y"})
	if err != nil || f.Size != 5 {
		t.Fatalf("%+v %v", f, err)
	}
	s.UploadFile(ctx, "b.txt", strings.NewReader("bye"), []string{"y"})
	if l, _ := s.ListFiles(ctx, []string{"x", "y"}, 0); len(l) != 1 || l[0].Name != "a.txt" {
		t.Fatalf("by tags: %+v", l)
	}
	if l, _ := s.ListFiles(ctx, nil, 1); len(l) != 1 || l[0].Name != "b.txt" {
		t.Fatalf("newest first with a limit: %+v", l)
	}
	if f, _ = s.TagFile(ctx, f.ID, []string{"z"}); strings.Join(f.Tags, ",") != "x,y,z" {
		t.Fatalf("tags %v", f.Tags)
	}
	rc, _, err := s.OpenFile(ctx, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "hello" {
		t.Fatalf("content %q", b)
	}
	// A staged file rolled back leaves nothing.
	sf, _ := s.Stage("c.txt", strings.NewReader("c"), nil)
	tx, _ := s.DB().Begin()
	sf.Commit(ctx, tx)
	tx.Rollback()
	sf.Discard()
	if l, _ := s.ListFiles(ctx, nil, 0); len(l) != 2 {
		t.Fatalf("a rolled back file was kept: %+v", l)
	}
}

// TestMetadataKeptPerTableAndColumn: a load sets table and column metadata; a later load
// replaces the same keys and keeps the others.
func TestMetadataKeptPerTableAndColumn(t *testing.T) {
	s := newStorage(t)
	load(t, s, "in.c-m.meta", "id,v\n1,a\n", LoadOptions{Metadata: map[string]string{"KBC.description": "first", "owner": "x"},
		ColumnMetadata: map[string]map[string]string{"v": {"KBC.datatype.basetype": "STRING"}}, MetadataProvider: "comp-a"})
	load(t, s, "in.c-m.meta", "id,v\n2,b\n", LoadOptions{Incremental: true, Metadata: map[string]string{"KBC.description": "second"}, MetadataProvider: "comp-b"})
	tbl, err := s.GetTable(context.Background(), s.DB(), "in.c-m.meta")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range tbl.Metadata {
		got[m.Key] = m.Value + "/" + m.Provider
	}
	if got["KBC.description"] != "second/comp-b" || got["owner"] != "x/comp-a" || len(got) != 2 {
		t.Fatalf("table metadata %+v", tbl.Metadata)
	}
	if cm := tbl.ColumnMetadata["v"]; len(cm) != 1 || cm[0].Key != "KBC.datatype.basetype" || cm[0].Value != "STRING" {
		t.Fatalf("column metadata %+v", tbl.ColumnMetadata)
	}
}

// TestFileAttributesAndExpiry: a file staged with a manifest's attributes keeps them; one that
// is not permanent expires after FileRetention, as on Keboola, and is then neither listed nor
// found, and its content is removed; an upload is permanent.
func TestFileAttributesAndExpiry(t *testing.T) {
	s := newStorage(t)
	ctx := context.Background()
	up, err := s.UploadFile(ctx, "kept.txt", strings.NewReader("kept"), []string{"t"})
	if err != nil {
		t.Fatal(err)
	}
	if !up.IsPermanent || up.Expires != nil {
		t.Fatalf("an upload is not permanent: %+v", up)
	}
	sf, err := s.Stage("temp.txt", strings.NewReader("temp"), []string{"t"})
	if err != nil {
		t.Fatal(err)
	}
	sf.SetAttributes(FileAttributes{IsPermanent: false, IsPublic: true, Notify: true})
	f, err := sf.Commit(ctx, s.DB())
	if err != nil {
		t.Fatal(err)
	}
	if err := sf.Finish(); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetFile(ctx, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.IsPermanent || !got.IsPublic || !got.Notify || got.Expires == nil {
		t.Fatalf("attributes not kept: %+v", got)
	}
	if d := got.Expires.Sub(got.Created); d != FileRetention {
		t.Errorf("expires %s after it was stored, want %s", d, FileRetention)
	}
	if n, err := s.PurgeExpired(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("purged %d (%v) before anything expired", n, err)
	}
	n, err := s.PurgeExpired(ctx, time.Now().Add(FileRetention+time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("purged %d (%v) after the retention, want 1", n, err)
	}
	if _, err := s.GetFile(ctx, f.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("an expired file is still found: %v", err)
	}
	if _, err := os.Stat(s.filePath(f.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an expired file's content is still there: %v", err)
	}
	list, err := s.ListFiles(ctx, []string{"t"}, 0)
	if err != nil || len(list) != 1 || list[0].ID != up.ID {
		t.Errorf("listed %+v (%v), want only the upload", list, err)
	}
}
