package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// LoadOptions say how a CSV is loaded into a table.
type LoadOptions struct {
	// Project is the project the load is for ("" is the default project): a bucket it creates
	// is that project's, and a bucket of another project is refused (*ForeignBucketError).
	Project string
	// Incremental upserts rows by the primary key (appends without one); otherwise the table's
	// rows are replaced.
	Incremental bool
	// PrimaryKey sets the table's primary key (kept when empty and the table exists).
	PrimaryKey []string
	// Columns name the columns of a CSV without a header row.
	Columns []string
	// DeleteWhereColumn/Values delete matching rows before an incremental load.
	DeleteWhereColumn string
	DeleteWhereValues []string
	// DeleteWhereOperator is eq (default: delete the rows whose column is one of the values)
	// or ne (delete the rows whose column is none of them).
	DeleteWhereOperator string
	// Metadata and ColumnMetadata are set on the table and its columns (the same keys are
	// replaced, others kept), recorded as set by MetadataProvider.
	Metadata         map[string]string
	ColumnMetadata   map[string]map[string]string
	MetadataProvider string
}

// rowSource fills a load's staging table, temp."#stage" (the file's columns, VARCHAR), in
// the file's order.
type rowSource interface {
	stage(ctx context.Context, c *sql.Conn, columns []string) error
}

// rowIter yields rows one at a time (io.EOF at the end); a row is only valid until the next
// call.
type rowIter interface {
	next() ([]string, error)
}

// appendRows stages rows through DuckDB's appender.
func appendRows(ctx context.Context, c *sql.Conn, columns []string, it rowIter) error {
	var ddl []string
	for _, col := range columns {
		ddl = append(ddl, ident(col)+` VARCHAR`)
	}
	if _, err := c.ExecContext(ctx, `CREATE OR REPLACE TEMP TABLE "#stage" (`+strings.Join(ddl, ", ")+`)`); err != nil {
		return err
	}
	return c.Raw(func(dc any) error {
		a, err := duckdb.NewAppender(dc.(driver.Conn), "temp", "", "#stage")
		if err != nil {
			return err
		}
		row := make([]driver.Value, len(columns))
		for {
			rec, err := it.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				a.Close()
				return err
			}
			for i, v := range rec {
				row[i] = v
			}
			if err := a.AppendRow(row...); err != nil {
				a.Close()
				return err
			}
		}
		return a.Close()
	})
}

// csvRows streams an RFC 4180 CSV (',' delimiter, '"' enclosure, no escape character).
type csvRows struct {
	r    *csv.Reader
	n    int // columns
	line int
}

func (c *csvRows) stage(ctx context.Context, conn *sql.Conn, columns []string) error {
	return appendRows(ctx, conn, columns, c)
}

func (c *csvRows) next() ([]string, error) {
	rec, err := c.r.Read()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("%w: csv: %v", ErrInvalid, err)
	}
	c.line++
	if len(rec) != c.n {
		return nil, fmt.Errorf("%w: csv: row %d has %d fields, the header has %d", ErrInvalid, c.line, len(rec), c.n)
	}
	return rec, nil
}

// openCSV reads a CSV's header (unless columns are given) and returns its rows as a stream.
func openCSV(r io.Reader, columns []string) ([]string, *csvRows, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	if columns == nil {
		h, err := cr.Read()
		if err == io.EOF {
			return nil, nil, fmt.Errorf("%w: csv: empty (no header row and no columns given)", ErrInvalid)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: csv: %v", ErrInvalid, err)
		}
		columns = append([]string(nil), h...)
	}
	if err := checkColumns(columns); err != nil {
		return nil, nil, err
	}
	return columns, &csvRows{r: cr, n: len(columns)}, nil
}

// ReadCSV reads a whole RFC 4180 CSV into memory (for small tables; loads stream with
// LoadCSV). Without columns the first row is the header.
func ReadCSV(r io.Reader, columns []string) ([]string, [][]string, error) {
	cols, src, err := openCSV(r, columns)
	if err != nil {
		return nil, nil, err
	}
	src.r.ReuseRecord = false
	var recs [][]string
	for {
		rec, err := src.next()
		if err == io.EOF {
			return cols, recs, nil
		}
		if err != nil {
			return nil, nil, err
		}
		recs = append(recs, rec)
	}
}

type sliceRows struct {
	rows [][]string
	n    int
	i    int
}

func (s *sliceRows) stage(ctx context.Context, conn *sql.Conn, columns []string) error {
	return appendRows(ctx, conn, columns, s)
}

func (s *sliceRows) next() ([]string, error) {
	if s.i >= len(s.rows) {
		return nil, io.EOF
	}
	s.i++
	if len(s.rows[s.i-1]) != s.n {
		return nil, fmt.Errorf("%w: row %d has %d fields, the header has %d", ErrInvalid, s.i, len(s.rows[s.i-1]), s.n)
	}
	return s.rows[s.i-1], nil
}

func checkColumns(cols []string) error {
	seen := map[string]string{}
	for _, c := range cols {
		if !reColumn.MatchString(c) {
			return fmt.Errorf("%w: column %q: letters, digits and '_' only", ErrInvalid, c)
		}
		if o, ok := seen[strings.ToLower(c)]; ok {
			return fmt.Errorf("%w: column %q appears twice (as %q; column names are case-insensitive)", ErrInvalid, c, o)
		}
		seen[strings.ToLower(c)] = c
	}
	if len(cols) == 0 {
		return fmt.Errorf("%w: no columns", ErrInvalid)
	}
	return nil
}

// Load loads rows held in memory into a table (see LoadCSV, which streams).
func (s *Storage) Load(ctx context.Context, q Q, id string, columns []string, rows [][]string, o LoadOptions) error {
	if err := checkColumns(columns); err != nil {
		return err
	}
	_, err := s.load(ctx, q, id, columns, &sliceRows{rows: rows, n: len(columns)}, o)
	return err
}

// LoadCSV streams a CSV into a table (its first row is the header unless o.Columns name the
// columns) and returns how many rows it read. q is a *Tx (the load commits with it) or the
// store's *sql.DB (the load commits at once). The CSV is spooled to a file under the storage
// dir and read by DuckDB's own CSV reader, never held in memory.
func (s *Storage) LoadCSV(ctx context.Context, q Q, id string, r io.Reader, o LoadOptions) (int, error) {
	c, err := s.PrepareCSV(ctx, r, o.Columns)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return s.LoadPrepared(ctx, q, id, c, o)
}

// PreparedCSV is a CSV spooled and checked for a load (PrepareCSV), to load with
// LoadPrepared and Close.
type PreparedCSV struct {
	path string
	cols []string
	src  rowSource
}

// Columns are the CSV's columns (its header, or the columns given).
func (c *PreparedCSV) Columns() []string { return c.cols }

// Close removes the spooled file.
func (c *PreparedCSV) Close() error {
	if cr, ok := c.src.(*closingRows); ok {
		cr.f.Close()
	}
	return os.Remove(c.path)
}

// PrepareCSV spools a CSV (its header first unless columns are given) to a file beside the
// table databases and checks it, outside any transaction: callers prepare before they begin
// one, so a slow upload or a large output holds no transaction open while it is read.
func (s *Storage) PrepareCSV(ctx context.Context, r io.Reader, columns []string) (*PreparedCSV, error) {
	f, err := os.CreateTemp(s.eng.dir, "load-*.csv")
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, fmt.Errorf("%w: csv: larger than %d bytes", ErrInvalid, mb.Limit)
		}
		if errors.Is(err, ErrInvalid) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: csv: %v", ErrInvalid, err)
	}
	src, cols, err := s.csvFile(ctx, f.Name(), columns)
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	return &PreparedCSV{path: f.Name(), cols: cols, src: src}, nil
}

// LoadPrepared loads a prepared CSV into a table (see LoadCSV), once.
func (s *Storage) LoadPrepared(ctx context.Context, q Q, id string, c *PreparedCSV, o LoadOptions) (int, error) {
	return s.load(ctx, q, id, c.cols, c.src, o)
}

// csvFile checks a spooled CSV and returns how to stage it: by DuckDB's CSV reader when it
// reads the file as berth's RFC 4180 reader does (',' delimiter, '"' enclosure and escape,
// every row as many fields as the header), checked first by a dry run of DuckDB's reader
// outside any transaction (a failing statement would abort one). Should that fail, berth's
// reader reads the file: its error (row and field counts) is the load's, and a file it
// reads where DuckDB's did not (say, bytes that are not UTF-8) is loaded through the
// appender.
func (s *Storage) csvFile(ctx context.Context, path string, columns []string) (rowSource, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	cols, it, err := openCSV(f, columns)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	src := &csvFileRows{path: path, header: columns == nil}
	// One column: DuckDB reads a blank line as an empty value, berth's reader skips it.
	err = errors.New("one column")
	if len(cols) > 1 {
		var p *projectDB
		if p, err = s.eng.open(""); err == nil {
			// Every column is read (COUNT(*) alone would not check that values are UTF-8).
			var sum []string
			for _, c := range cols {
				sum = append(sum, `SUM(STRLEN(`+ident(c)+`))`)
			}
			_, err = p.db.ExecContext(ctx, `SELECT COUNT(*), `+strings.Join(sum, ", ")+` FROM `+src.reader(cols))
		}
	}
	if err == nil {
		f.Close()
		return src, cols, nil
	}
	// Berth's reader finds the error, or reads the file through the appender.
	for {
		_, err := it.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return nil, nil, err
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, err
	}
	_, it, err = openCSV(f, columns)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return &closingRows{it, f}, cols, nil
}

// csvFileRows stages a CSV file with DuckDB's CSV reader.
type csvFileRows struct {
	path   string
	header bool
}

func (c *csvFileRows) reader(columns []string) string {
	var cs []string
	for _, col := range columns {
		cs = append(cs, quoteString(col)+`: 'VARCHAR'`)
	}
	return `read_csv(` + quoteString(c.path) + fmt.Sprintf(`, header = %t`, c.header) + `, auto_detect = false, delim = ',', quote = '"',
		escape = '"', strict_mode = true, null_padding = false, all_varchar = true, skip = 0,
		columns = {` + strings.Join(cs, ", ") + `})`
}

func (c *csvFileRows) stage(ctx context.Context, conn *sql.Conn, columns []string) error {
	_, err := conn.ExecContext(ctx, `CREATE OR REPLACE TEMP TABLE "#stage" AS SELECT * FROM `+c.reader(columns))
	return err
}

// closingRows stages a file through berth's reader, closing it at the end.
type closingRows struct {
	*csvRows
	f *os.File
}

func (c *closingRows) stage(ctx context.Context, conn *sql.Conn, columns []string) error {
	defer c.f.Close()
	return appendRows(ctx, conn, columns, c.csvRows)
}

func quoteString(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

func (s *Storage) load(ctx context.Context, q Q, id string, columns []string, src rowSource, o LoadOptions) (n int, err error) {
	switch q := q.(type) {
	case *Tx:
	case *sql.DB:
		tx, err := s.Begin(ctx)
		if err != nil {
			return 0, err
		}
		defer tx.Rollback()
		if n, err = s.load(ctx, tx, id, columns, src, o); err != nil {
			return 0, err
		}
		return n, tx.Commit()
	default:
		return 0, fmt.Errorf("storage: load %s: run it on a storage.Tx (Storage.Begin), not a %T", id, q)
	}
	tx := q.(*Tx)
	if s.OnLoad != nil {
		defer func(t0 time.Time) { s.OnLoad(time.Since(t0), err) }(time.Now())
	}
	bucket, name, err := SplitTableID(id)
	if err != nil {
		return 0, err
	}
	if err := s.CreateBucket(ctx, q, o.Project, bucket); err != nil {
		return 0, err
	}
	now := time.Now().UTC()
	t, err := s.GetTable(ctx, q, id)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return 0, err
	}
	pk := o.PrimaryKey
	if len(pk) == 0 && exists {
		pk = t.PrimaryKey
	}
	if pk == nil {
		pk = []string{}
	}
	// The table's columns: a full load takes the CSV's; an incremental load adds new ones.
	cols := columns
	var added []string
	if exists && o.Incremental {
		cols = append([]string(nil), t.Columns...)
		for _, c := range columns {
			if indexOf(cols, c) < 0 {
				cols = append(cols, c)
				added = append(added, c)
			}
		}
		if err := checkColumns(cols); err != nil {
			return 0, fmt.Errorf("load %s: %w", id, err)
		}
	}
	for _, k := range pk {
		if indexOf(cols, k) < 0 {
			return 0, fmt.Errorf("%w: primary key column %q is not a column of %s (columns: %s)", ErrInvalid, k, id, strings.Join(cols, ", "))
		}
	}
	delCol := ""
	if o.Incremental && o.DeleteWhereColumn != "" {
		if indexOf(cols, o.DeleteWhereColumn) < 0 {
			return 0, fmt.Errorf("%w: delete_where_column %q is not a column of %s", ErrInvalid, o.DeleteWhereColumn, id)
		}
		delCol = o.DeleteWhereColumn
	}
	colsJSON, _ := json.Marshal(cols)
	pkJSON, _ := json.Marshal(pk)
	if !exists {
		if _, err := q.ExecContext(ctx, `INSERT INTO storage_tables (id, bucket, name, columns, primary_key, rows_count, data_bytes, created_at, last_change_at)
			VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?)`, id, bucket, name, string(colsJSON), string(pkJSON), ts(now), ts(now)); err != nil {
			return 0, err
		}
	} else if _, err := q.ExecContext(ctx, `UPDATE storage_tables SET columns = ?, primary_key = ? WHERE id = ?`, string(colsJSON), string(pkJSON), id); err != nil {
		return 0, err
	}
	if err := s.setMetadata(ctx, q, id, o.MetadataProvider, o.Metadata, o.ColumnMetadata); err != nil {
		return 0, err
	}

	d, err := tx.tables(ctx, orDefault(o.Project))
	if err != nil {
		return 0, err
	}
	c := d.conn
	exec := func(stmt string, args ...any) error {
		if _, err := c.ExecContext(ctx, stmt, args...); err != nil {
			return fmt.Errorf("load %s: %w", id, err)
		}
		return nil
	}
	tbl := ident(id)
	if !exists || !o.Incremental {
		if err := exec(`CREATE OR REPLACE TABLE ` + tbl + ` (` + tableDDL(cols) + `)`); err != nil {
			return 0, err
		}
	}
	for _, a := range added {
		// Existing rows get empty values for the new columns.
		if err := exec(`ALTER TABLE ` + tbl + ` ADD COLUMN ` + ident(a) + ` VARCHAR DEFAULT ''`); err != nil {
			return 0, err
		}
	}
	if delCol != "" {
		if err := exec(`DELETE FROM `+tbl+` WHERE `+inList(delCol, len(o.DeleteWhereValues), o.DeleteWhereOperator == "ne"), strArgs(o.DeleteWhereValues)...); err != nil {
			return 0, err
		}
	}
	var seq int64
	if err := c.QueryRowContext(ctx, `SELECT COALESCE(MAX("#seq"), 0) FROM `+tbl).Scan(&seq); err != nil {
		return 0, fmt.Errorf("load %s: %w", id, err)
	}
	// The rows go into a staging table first (in file order: its rowid is the row's place in
	// the file), by DuckDB's CSV reader or its appender, then into the table in one statement:
	// appended, or with a primary key merged (dedup on load: the last row of a key wins, at
	// the position of the key's first row; an existing row of the key keeps its position and
	// gets the new values, '' for the columns the file lacks).
	defer func() {
		c.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS temp."#stage"`)
		c.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS temp."#merged"`)
	}()
	if err := src.stage(ctx, c, columns); err != nil {
		if errors.Is(err, ErrInvalid) {
			return 0, err
		}
		return 0, fmt.Errorf("load %s: %w", id, err)
	}
	if err := c.QueryRowContext(ctx, `SELECT COUNT(*) FROM temp."#stage"`).Scan(&n); err != nil {
		return 0, fmt.Errorf("load %s: %w", id, err)
	}
	// staged is the staged rows as the table's columns, NULLs as ''.
	var staged []string
	for _, col := range cols {
		if indexOf(columns, col) >= 0 {
			staged = append(staged, `COALESCE(`+ident(col)+`, '') AS `+ident(col))
		} else {
			staged = append(staged, `'' AS `+ident(col))
		}
	}
	stagedSQL := `(SELECT rowid AS "#r", ` + strings.Join(staged, ", ") + ` FROM temp."#stage")`
	if len(pk) == 0 {
		if err := exec(`INSERT INTO `+tbl+` SELECT ? + "#r" + 1, ?::TIMESTAMP, `+identList(cols)+` FROM `+stagedSQL, seq, duckTS(now)); err != nil {
			return 0, err
		}
	} else {
		// Without duplicate keys in the file (the usual case) there is nothing to dedup: the
		// check groups the keys alone, cheaper than grouping the rows.
		var dups int
		if err := c.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM `+stagedSQL+` GROUP BY `+identList(pk)+` HAVING COUNT(*) > 1)`).Scan(&dups); err != nil {
			return 0, fmt.Errorf("load %s: %w", id, err)
		}
		if err := exec(mergeSQL(tbl, stagedSQL, cols, pk, dups > 0), seq, duckTS(now)); err != nil {
			return 0, err
		}
		var on []string
		for _, k := range pk {
			on = append(on, `t.`+ident(k)+` = m.`+ident(k))
		}
		if err := exec(`DELETE FROM ` + tbl + ` t USING temp."#merged" m WHERE ` + strings.Join(on, " AND ")); err != nil {
			return 0, err
		}
		if err := exec(`INSERT INTO ` + tbl + ` SELECT * FROM temp."#merged"`); err != nil {
			return 0, err
		}
	}
	var rowsCount, bytes int64
	if err := c.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(`+rowBytes(cols)+`), 0) FROM `+tbl).Scan(&rowsCount, &bytes); err != nil {
		return 0, fmt.Errorf("load %s: %w", id, err)
	}
	_, err = q.ExecContext(ctx, `UPDATE storage_tables SET rows_count = ?, data_bytes = ?, last_change_at = ? WHERE id = ?`, rowsCount, bytes, ts(now), id)
	return n, err
}

// tableDDL is the column list of a table.
func tableDDL(cols []string) string {
	parts := []string{`"#seq" BIGINT`, `"#changed" TIMESTAMP`}
	for _, c := range cols {
		parts = append(parts, ident(c)+` VARCHAR DEFAULT ''`)
	}
	return strings.Join(parts, ", ")
}

// mergeSQL builds temp."#merged" (parameters: the table's last position, the load's time):
// the staged rows, one per key (the last one's values), at the position of the table's row of
// that key, or else after the table's rows in the order of the key's first staged row.
func mergeSQL(tbl, staged string, cols, pk []string, dedup bool) string {
	var agg, sel, keys, on []string
	for _, c := range cols {
		sel = append(sel, `d.`+ident(c))
		if indexOf(pk, c) >= 0 {
			agg = append(agg, ident(c))
		} else {
			agg = append(agg, `arg_max(`+ident(c)+`, "#r") AS `+ident(c))
		}
	}
	for _, k := range pk {
		keys = append(keys, ident(k))
		on = append(on, `t.`+ident(k)+` = d.`+ident(k))
	}
	d := staged
	if dedup {
		d = `(SELECT MIN("#r") AS "#r", ` + strings.Join(agg, ", ") + ` FROM ` + staged + ` GROUP BY ` + strings.Join(keys, ", ") + `)`
	}
	return `CREATE OR REPLACE TEMP TABLE "#merged" AS
		WITH d AS ` + d + `
		SELECT COALESCE(t."#seq", ? + d."#r" + 1) AS "#seq", ?::TIMESTAMP AS "#changed", ` + strings.Join(sel, ", ") + `
		FROM d LEFT JOIN ` + tbl + ` t ON ` + strings.Join(on, " AND ")
}

// rowBytes is the SQL of a row's counted size: the bytes of the JSON array of its values
// (["a","b"]: brackets, quotes and commas), as rows were counted when berth kept them as JSON
// (escapes are not counted).
func rowBytes(cols []string) string {
	parts := []string{"1"}
	for _, c := range cols {
		parts = append(parts, `STRLEN(`+ident(c)+`) + 3`)
	}
	return strings.Join(parts, " + ")
}

// inList is "col IN (?, ...)" (NOT IN with notIn); with no values, nothing is in the list.
func inList(col string, n int, notIn bool) string {
	if n == 0 {
		if notIn {
			return "TRUE"
		}
		return "FALSE"
	}
	op := " IN ("
	if notIn {
		op = " NOT IN ("
	}
	return ident(col) + op + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}

func strArgs(v []string) []any {
	out := make([]any, len(v))
	for i, s := range v {
		out[i] = s
	}
	return out
}

// ExportOptions filter an export (the input mapping's options).
type ExportOptions struct {
	Columns       []string
	WhereColumn   string
	WhereOperator string // eq (default) | ne
	WhereValues   []string
	ChangedSince  time.Time
	Limit         int
}

// Export writes a table as CSV with a header row and returns the columns and rows written.
// Rows stream from the table engine to w.
func (s *Storage) Export(ctx context.Context, id string, w io.Writer, o ExportOptions) ([]string, int, error) {
	t, err := s.GetTable(ctx, s.st.DB, id)
	if err != nil {
		return nil, 0, err
	}
	cols := t.Columns
	if len(o.Columns) > 0 {
		cols = o.Columns
		for _, c := range cols {
			if indexOf(t.Columns, c) < 0 {
				return nil, 0, fmt.Errorf("%w: column %q is not in %s (columns: %s)", ErrInvalid, c, id, strings.Join(t.Columns, ", "))
			}
		}
	}
	query := `SELECT ` + identList(cols) + ` FROM ` + ident(id) + ` WHERE TRUE`
	var args []any
	if o.WhereColumn != "" {
		if indexOf(t.Columns, o.WhereColumn) < 0 {
			return nil, 0, fmt.Errorf("%w: where_column %q is not in %s", ErrInvalid, o.WhereColumn, id)
		}
		if o.WhereOperator != "" && o.WhereOperator != "eq" && o.WhereOperator != "ne" {
			return nil, 0, fmt.Errorf("%w: where_operator %q (allowed: eq, ne)", ErrInvalid, o.WhereOperator)
		}
		query += ` AND ` + inList(o.WhereColumn, len(o.WhereValues), o.WhereOperator == "ne")
		args = append(args, strArgs(o.WhereValues)...)
	}
	if !o.ChangedSince.IsZero() {
		query += ` AND "#changed" >= ?::TIMESTAMP`
		args = append(args, duckTS(o.ChangedSince))
	}
	query += ` ORDER BY "#seq"`
	if o.Limit > 0 {
		query += fmt.Sprintf(` LIMIT %d`, o.Limit)
	}
	p, err := s.eng.open(t.Project)
	if err != nil {
		return nil, 0, err
	}
	rows, err := p.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("export %s: %w", id, err)
	}
	defer rows.Close()
	cw := csv.NewWriter(w)
	cw.Write(cols)
	rec := make([]string, len(cols))
	dest := make([]any, len(cols))
	for i := range rec {
		dest[i] = &rec[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, 0, fmt.Errorf("export %s: %w", id, err)
		}
		if err := cw.Write(rec); err != nil {
			return nil, 0, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("export %s: %w", id, err)
	}
	cw.Flush()
	return cols, n, cw.Error()
}

// duckTS is a time as DuckDB's TIMESTAMP text, in UTC: "#changed" holds UTC times, and a
// bound time.Time could be converted through the session's time zone.
func duckTS(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.999999") }

func identList(cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = ident(c)
	}
	return strings.Join(out, ", ")
}
