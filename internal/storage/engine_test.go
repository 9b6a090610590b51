package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/store"
)

// TestLoadCSVStreamsAndDedups: LoadCSV streams a CSV into the engine; with a primary key the
// last row of a key wins, at the position of the key's first row (dedup on load), and an
// incremental load keeps an existing key's position.
func TestLoadCSVStreamsAndDedups(t *testing.T) {
	s := newStorage(t)
	ctx := context.Background()
	n, err := s.LoadCSV(ctx, s.DB(), "in.c-m.t", strings.NewReader("id,v\n1,a\n2,b\n1,c\n3,d\n"), LoadOptions{PrimaryKey: []string{"id"}})
	if err != nil || n != 4 {
		t.Fatalf("load: %d rows, %v", n, err)
	}
	if got := export(t, s, "in.c-m.t", ExportOptions{}); got != "id,v\n1,c\n2,b\n3,d\n" {
		t.Fatalf("after a full load with duplicate keys:\n%s", got)
	}
	if _, err := s.LoadCSV(ctx, s.DB(), "in.c-m.t", strings.NewReader("id,v\n4,e\n2,B\n"), LoadOptions{Incremental: true}); err != nil {
		t.Fatal(err)
	}
	if got := export(t, s, "in.c-m.t", ExportOptions{}); got != "id,v\n1,c\n2,B\n3,d\n4,e\n" {
		t.Fatalf("after an incremental load:\n%s", got)
	}
	tb, _ := s.GetTable(ctx, s.DB(), "in.c-m.t")
	if tb.RowsCount != 4 {
		t.Fatalf("rows_count %d", tb.RowsCount)
	}
	// The rows are in the project's DuckDB file, not in the control-plane store.
	if _, err := os.Stat(filepath.Join(s.dir, "tables", "default.duckdb")); err != nil {
		t.Fatal(err)
	}
	var rows int
	s.DB().QueryRow(`SELECT COUNT(*) FROM storage_rows`).Scan(&rows)
	if rows != 0 {
		t.Fatalf("%d rows in storage_rows", rows)
	}
	// Column names are case-insensitive in the engine: a second "ID" is refused.
	if _, err := s.LoadCSV(ctx, s.DB(), "in.c-m.t", strings.NewReader("ID,x\n1,2\n"), LoadOptions{Incremental: true}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a column differing only in case: %v", err)
	}
}

// TestTxAllOrNothing: loads of several tables in one Tx fail together. A malformed CSV in the
// second table, found mid-stream after the first table's rows and some of its own were in the
// engine, leaves both tables (metadata and rows) as they were; so does a quota refusal after
// all the rows were written.
func TestTxAllOrNothing(t *testing.T) {
	s := newStorage(t)
	ctx := context.Background()
	load(t, s, "out.c-m.a", "id\n1\n", LoadOptions{})
	load(t, s, "out.c-m.b", "id\n1\n", LoadOptions{})
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadCSV(ctx, tx, "out.c-m.a", strings.NewReader("id\n2\n3\n"), LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadCSV(ctx, tx, "out.c-m.new", strings.NewReader("id\n9\n"), LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = s.LoadCSV(ctx, tx, "out.c-m.b", strings.NewReader("id\n2\n3\n4,5\n"), LoadOptions{Incremental: true})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "row 3 has 2 fields") {
		t.Fatalf("malformed row: %v", err)
	}
	tx.Rollback()
	check := func(when string) {
		t.Helper()
		if got := export(t, s, "out.c-m.a", ExportOptions{}); got != "id\n1\n" {
			t.Fatalf("%s: table a:\n%s", when, got)
		}
		if got := export(t, s, "out.c-m.b", ExportOptions{}); got != "id\n1\n" {
			t.Fatalf("%s: table b:\n%s", when, got)
		}
		if _, err := s.GetTable(ctx, s.DB(), "out.c-m.new"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: the new table is kept: %v", when, err)
		}
		if tb, _ := s.GetTable(ctx, s.DB(), "out.c-m.a"); tb.RowsCount != 1 {
			t.Fatalf("%s: rows_count %d", when, tb.RowsCount)
		}
	}
	check("after a failed load")
	// The write slot was freed: the next load goes through.
	limit := int64(10)
	if err := s.st.SetProjectQuotas(ctx, store.DefaultProject, nil, &limit); err != nil {
		t.Fatal(err)
	}
	err = s.InQuota(ctx, "", func(q Q) error {
		_, err := s.LoadCSV(ctx, q, "out.c-m.a", strings.NewReader("id\n1\n2\n3\n4\n5\n"), LoadOptions{})
		return err
	})
	var qe *QuotaError
	if !errors.As(err, &qe) {
		t.Fatalf("over the quota: %v", err)
	}
	check("after a quota refusal")
}

// TestDeleteTableDropsRows: deleting a table drops its rows from the engine; a new table of
// the same id starts empty.
func TestDeleteTableDropsRows(t *testing.T) {
	s := newStorage(t)
	ctx := context.Background()
	load(t, s, "in.c-m.t", "id\n1\n2\n", LoadOptions{})
	if _, err := s.DeleteTable(ctx, "in.c-m.t"); err != nil {
		t.Fatal(err)
	}
	p, _ := s.eng.open("")
	var n int
	p.db.QueryRow(`SELECT COUNT(*) FROM duckdb_tables() WHERE table_name = 'in.c-m.t'`).Scan(&n)
	if n != 0 {
		t.Fatal("the table's rows are still in the engine")
	}
	load(t, s, "in.c-m.t", "id\n3\n", LoadOptions{Incremental: true})
	if got := export(t, s, "in.c-m.t", ExportOptions{}); got != "id\n3\n" {
		t.Fatalf("a new table of the same id:\n%s", got)
	}
}

// TestMoveOldRows: a table in the old format (rows as JSON arrays in storage_rows, written
// here by SQL as berth wrote them) is moved into the engine when storage opens: same rows in
// the same order, change times kept (changed_since), padded short rows, its counted size and
// its primary key; storage_rows is emptied, and opening again moves nothing.
func TestMoveOldRows(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateProject(ctx, store.Project{ID: "p1"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO storage_buckets (id, created_at, project) VALUES ('in.c-old', '2024-01-01T00:00:00Z', 'p1')`,
		`INSERT INTO storage_tables (id, bucket, name, columns, primary_key, rows_count, created_at, last_change_at, data_bytes)
			VALUES ('in.c-old.t', 'in.c-old', 't', '["id","name","team"]', '["id"]', 3, '2024-01-01T00:00:00Z', '2024-02-01T00:00:00Z', -1)`,
		`INSERT INTO storage_tables (id, bucket, name, columns, primary_key, rows_count, created_at, last_change_at, data_bytes)
			VALUES ('in.c-old.empty', 'in.c-old', 'empty', '["x"]', '[]', 0, '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z', -1)`,
		`INSERT INTO storage_rows (table_id, seq, pk, data, changed_at) VALUES
			('in.c-old.t', 5, '["2"]', '["2","bob","blue"]', '2024-01-01T00:00:00Z'),
			('in.c-old.t', 1, '["1"]', '["1","ann"]', '2024-01-01T00:00:00Z'),
			('in.c-old.t', 7, '["3"]', '["3","cid","red"]', '2024-02-01T00:00:00Z')`,
	} {
		if _, err := st.DB.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s, err := New(st, filepath.Join(dir, "storage"))
	if err != nil {
		t.Fatal(err)
	}
	if got := export(t, s, "in.c-old.t", ExportOptions{}); got != "id,name,team\n1,ann,\n2,bob,blue\n3,cid,red\n" {
		t.Fatalf("moved table:\n%s", got)
	}
	since, _ := time.Parse(time.RFC3339, "2024-01-15T00:00:00Z")
	if got := export(t, s, "in.c-old.t", ExportOptions{ChangedSince: since}); got != "id,name,team\n3,cid,red\n" {
		t.Fatalf("changed_since on a moved table:\n%s", got)
	}
	if got := export(t, s, "in.c-old.empty", ExportOptions{}); got != "x\n" {
		t.Fatalf("moved empty table:\n%s", got)
	}
	// ["1","ann",""] 14 + ["2","bob","blue"] 18 + ["3","cid","red"] 17 bytes
	if u, _ := s.ProjectUsage(ctx, s.DB(), "p1"); u != 49 {
		t.Fatalf("usage %d", u)
	}
	var rows int
	st.DB.QueryRow(`SELECT COUNT(*) FROM storage_rows`).Scan(&rows)
	if rows != 0 {
		t.Fatalf("%d rows left in storage_rows", rows)
	}
	// An incremental load on the moved table upserts by its key.
	load(t, s, "in.c-old.t", "id,name\n1,ANN\n", LoadOptions{Project: "p1", Incremental: true})
	if got := export(t, s, "in.c-old.t", ExportOptions{Columns: []string{"name"}}); got != "name\nANN\nbob\ncid\n" {
		t.Fatalf("after an upsert:\n%s", got)
	}
	s.Close()
	if _, err := New(st, filepath.Join(dir, "storage")); err != nil {
		t.Fatal(err)
	}
}

// TestLoadCSVReadsAsBerthsReader: DuckDB's CSV reader (LoadCSV's fast path) reads a file as
// berth's RFC 4180 reader does (ReadCSV + Load): quoted newlines, doubled quotes, spaces,
// CRLF, empty and quoted-empty fields, blank lines; a file DuckDB's reader refuses is read by
// berth's (bytes that are not UTF-8), and a malformed one gets berth's error. One-column files
// are read by berth's reader (DuckDB's reads a blank line as a row).
func TestLoadCSVReadsAsBerthsReader(t *testing.T) {
	s := newStorage(t)
	ctx := context.Background()
	for i, text := range []string{
		"a,b\n1,\"x\ny\"\n2,\"say \"\"hi\"\"\"\n3, lead\n",
		"a,b\r\n1,2\r\n,\r\n\"\",\"\"\r\n",
		"a,b\n1,2\n\n3,4\n",
		"a\n1\n\n2\n",
		"a,b\n1,\xff\xfe\n",
		"a,b\n",
		"a,b\n1,2",
	} {
		cols, rows, err := ReadCSV(strings.NewReader(text), nil)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if err := s.Load(ctx, s.DB(), "in.c-m.want", cols, rows, LoadOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LoadCSV(ctx, s.DB(), "in.c-m.got", strings.NewReader(text), LoadOptions{}); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		want, got := export(t, s, "in.c-m.want", ExportOptions{}), export(t, s, "in.c-m.got", ExportOptions{})
		if got != want {
			t.Errorf("%d: %q: DuckDB's reader read\n%q\nberth's\n%q", i, text, got, want)
		}
	}
	for _, text := range []string{"a,b\n1,2\n3\n", "a,b\n1,\"2\n", "a\n1\n\"x\n"} {
		_, _, wantErr := ReadCSV(strings.NewReader(text), nil)
		_, err := s.LoadCSV(ctx, s.DB(), "in.c-m.bad", strings.NewReader(text), LoadOptions{})
		if err == nil || wantErr == nil || err.Error() != wantErr.Error() {
			t.Errorf("%q: %v, want %v", text, err, wantErr)
		}
	}
	// The one difference: a bare quote inside an unquoted value, which berth's reader refuses,
	// DuckDB's keeps as it is.
	if _, err := s.LoadCSV(ctx, s.DB(), "in.c-m.bare", strings.NewReader("a,b\n1,x\"y\n"), LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := export(t, s, "in.c-m.bare", ExportOptions{}); got != "a,b\n1,\"x\"\"y\"\n" {
		t.Fatalf("bare quote: %q", got)
	}
}

// TestLoadCSVKeepsFileOrder: a file large enough for DuckDB to read in parallel (several row
// groups) is exported in the file's order, before and after an upsert of every other key.
func TestLoadCSVKeepsFileOrder(t *testing.T) {
	s := newStorage(t)
	ctx := context.Background()
	var in, upd, want strings.Builder
	in.WriteString("id,v\n")
	upd.WriteString("id,v\n")
	want.WriteString("id,v\n")
	const n = 300_000
	for i := 0; i < n; i++ {
		k := (i * 7919) % n // not sorted: order must come from the file
		fmt.Fprintf(&in, "%d,a%d\n", k, i)
		if i%2 == 0 {
			fmt.Fprintf(&upd, "%d,b%d\n", k, i)
			fmt.Fprintf(&want, "%d,b%d\n", k, i)
		} else {
			fmt.Fprintf(&want, "%d,a%d\n", k, i)
		}
	}
	if _, err := s.LoadCSV(ctx, s.DB(), "in.c-m.big", strings.NewReader(in.String()), LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	if export(t, s, "in.c-m.big", ExportOptions{}) != in.String() {
		t.Fatal("a full load does not keep the file's order")
	}
	if _, err := s.LoadCSV(ctx, s.DB(), "in.c-m.big", strings.NewReader(upd.String()), LoadOptions{Incremental: true, PrimaryKey: []string{"id"}}); err != nil {
		t.Fatal(err)
	}
	if export(t, s, "in.c-m.big", ExportOptions{}) != want.String() {
		t.Fatal("an upsert moved rows")
	}
}
