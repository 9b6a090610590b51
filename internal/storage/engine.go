package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	_ "github.com/duckdb/duckdb-go/v2" // the "duckdb" database/sql driver
)

// Table rows live in DuckDB, one database file per project under <dir>/tables/<project>.duckdb;
// the control-plane store keeps only metadata (tables, buckets, metadata, files).
//
// Per project, not per bucket: a job writes into one project, so one DuckDB transaction covers
// every table of its output mapping, and all-or-nothing needs no commit across files.
//
// Each berth table is a DuckDB table named by its id ("in.c-main.sales", quoted), with its
// columns as VARCHAR (typed columns are to come) and two hidden columns whose names no berth
// column can take ('#' is not allowed in column names): "#seq", the row's position (exports
// are ordered by it; an upsert keeps a row's position), and "#changed", when the row was last
// loaded (changed_since).
//
// Writes to a project's database are serialized (one writing transaction at a time, held from
// a load's first write to the control-plane commit or rollback): DuckDB's optimistic
// concurrency would otherwise abort one of two loads racing on a table.

// duckMemoryLimit caps each project database's buffer pool (it spills to disk beyond).
const duckMemoryLimit = "256MB"

var reProjectFile = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// projectDB is one project's table database.
type projectDB struct {
	db    *sql.DB
	write chan struct{} // a one-slot semaphore: the writing transaction
}

// engine opens the project databases on demand and keeps them open.
type engine struct {
	dir string
	mu  sync.Mutex
	dbs map[string]*projectDB
}

func newEngine(dir string) (*engine, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// CSVs spooled for loads a crash interrupted (PrepareCSV).
	if left, err := filepath.Glob(filepath.Join(dir, "load-*.csv")); err == nil {
		for _, f := range left {
			os.Remove(f)
		}
	}
	return &engine{dir: dir, dbs: map[string]*projectDB{}}, nil
}

func (e *engine) open(project string) (*projectDB, error) {
	project = orDefault(project)
	if !reProjectFile.MatchString(project) {
		return nil, fmt.Errorf("%w: project id %q", ErrInvalid, project)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if p, ok := e.dbs[project]; ok {
		return p, nil
	}
	path := filepath.Join(e.dir, project+".duckdb")
	db, err := sql.Open("duckdb", path+"?memory_limit="+duckMemoryLimit)
	if err != nil {
		return nil, fmt.Errorf("open table database %s: %w", path, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open table database %s: %w", path, err)
	}
	p := &projectDB{db: db, write: make(chan struct{}, 1)}
	e.dbs[project] = p
	return p, nil
}

func (e *engine) close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	for k, p := range e.dbs {
		errs = append(errs, p.db.Close())
		delete(e.dbs, k)
	}
	return errors.Join(errs...)
}

// lock takes the project's write slot, or gives up when ctx ends.
func (p *projectDB) lock(ctx context.Context) error {
	select {
	case p.write <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *projectDB) unlock() { <-p.write }

// duckTx is a writing transaction on one project database, on one connection.
type duckTx struct {
	p    *projectDB
	conn *sql.Conn
}

func (p *projectDB) begin(ctx context.Context) (*duckTx, error) {
	if err := p.lock(ctx); err != nil {
		return nil, err
	}
	conn, err := p.db.Conn(ctx)
	if err == nil {
		if _, err = conn.ExecContext(ctx, `BEGIN TRANSACTION`); err != nil {
			conn.Close()
		}
	}
	if err != nil {
		p.unlock()
		return nil, fmt.Errorf("begin table transaction: %w", err)
	}
	return &duckTx{p: p, conn: conn}, nil
}

// end commits or rolls back, then frees the connection and the write slot.
func (d *duckTx) end(commit bool) error {
	defer d.p.unlock()
	defer d.conn.Close()
	stmt := `ROLLBACK`
	if commit {
		stmt = `COMMIT`
	}
	// Not the caller's context: a cancelled request must still end the transaction.
	if _, err := d.conn.ExecContext(context.Background(), stmt); err != nil {
		return fmt.Errorf("%s table transaction: %w", strings.ToLower(stmt), err)
	}
	return nil
}

// Tx is a control-plane transaction together with the table-engine transactions its loads
// opened. Commit commits the control plane first, then the table data: a failure before the
// control-plane commit leaves both as they were. Only a failure of the engine's own commit
// after the control plane committed (disk full, the process killed in between) can leave
// metadata ahead of the rows; that error says so.
type Tx struct {
	*sql.Tx
	s    *Storage
	duck map[string]*duckTx
	done bool
}

// Begin starts a transaction for loads and other storage writes (and any other control-plane
// writes to commit with them, e.g. a job's state).
func (s *Storage) Begin(ctx context.Context) (*Tx, error) {
	tx, err := s.st.DB.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &Tx{Tx: tx, s: s, duck: map[string]*duckTx{}}, nil
}

// tables returns the transaction's engine transaction on project's database, opening it.
func (t *Tx) tables(ctx context.Context, project string) (*duckTx, error) {
	project = orDefault(project)
	if d, ok := t.duck[project]; ok {
		return d, nil
	}
	p, err := t.s.eng.open(project)
	if err != nil {
		return nil, err
	}
	d, err := p.begin(ctx)
	if err != nil {
		return nil, err
	}
	t.duck[project] = d
	return d, nil
}

// Commit commits the control plane, then the table data.
func (t *Tx) Commit() error {
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	if err := t.Tx.Commit(); err != nil {
		t.endTables(false)
		return err
	}
	if err := t.endTables(true); err != nil {
		return fmt.Errorf("storage: table data not committed after its metadata was (a restart does not repair this; reload the tables): %w", err)
	}
	return nil
}

// Rollback rolls both back; after Commit it does nothing.
func (t *Tx) Rollback() error {
	if t.done {
		return nil
	}
	t.done = true
	err := t.Tx.Rollback()
	return errors.Join(err, t.endTables(false))
}

func (t *Tx) endTables(commit bool) error {
	var errs []error
	for k, d := range t.duck {
		errs = append(errs, d.end(commit))
		delete(t.duck, k)
	}
	return errors.Join(errs...)
}

// dropTables removes tables' rows from a project's database, after their metadata is gone.
func (s *Storage) dropTables(ctx context.Context, project string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	p, err := s.eng.open(project)
	if err != nil {
		return err
	}
	if err := p.lock(ctx); err != nil {
		return err
	}
	defer p.unlock()
	for _, id := range ids {
		if _, err := p.db.ExecContext(ctx, `DROP TABLE IF EXISTS `+ident(id)); err != nil {
			return fmt.Errorf("drop table %s's rows: %w", id, err)
		}
	}
	return nil
}

// ident quotes an SQL identifier.
func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Close closes the table databases.
func (s *Storage) Close() error { return s.eng.close() }
