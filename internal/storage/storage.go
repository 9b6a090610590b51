// Package storage is berth's embedded storage for components: buckets of tables (CSV in and
// out, RFC 4180, streamed) and files with tags. Metadata lives in the store; table rows live in
// DuckDB (one database per project, see engine.go) and file contents under the data dir. Every
// load can run inside one transaction (Tx), so a job's outputs are loaded all or nothing.
package storage

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/store"
)

// Errors.
var (
	ErrNotFound = errors.New("storage: not found")
	ErrInvalid  = errors.New("storage: invalid")
)

// Q is what storage runs SQL on: the database or a transaction.
type Q interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Storage holds tables and files.
type Storage struct {
	st  *store.Store
	dir string // file contents (files/) and table databases (tables/)
	eng *engine
	// OnLoad, if set, is told how long each table load took (metrics).
	OnLoad func(d time.Duration, err error)
}

// New opens storage on a store, keeping file contents under dir.
func New(st *store.Store, dir string) (*Storage, error) {
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
		return nil, err
	}
	eng, err := newEngine(filepath.Join(dir, "tables"))
	if err != nil {
		return nil, err
	}
	s := &Storage{st: st, dir: dir, eng: eng}
	if err := s.moveOldRows(context.Background(), slog.Default()); err != nil {
		eng.close()
		return nil, err
	}
	return s, nil
}

// DB is the store's handle (for transactions spanning storage and other tables).
func (s *Storage) DB() *sql.DB { return s.st.DB }

// Table is a table's metadata.
type Table struct {
	ID     string `json:"id"`
	Bucket string `json:"bucket"`
	// Project owns the table: its bucket's project.
	Project      string    `json:"project"`
	Name         string    `json:"name"`
	Columns      []string  `json:"columns"`
	PrimaryKey   []string  `json:"primary_key"`
	RowsCount    int       `json:"rows_count"`
	Created      time.Time `json:"created"`
	LastChangeAt time.Time `json:"last_change_date"`
	// Metadata and ColumnMetadata are what loads set (a component's manifest metadata).
	Metadata       []Meta            `json:"metadata"`
	ColumnMetadata map[string][]Meta `json:"column_metadata"`
}

// Meta is one metadata entry of a table or a column.
type Meta struct {
	Key       string    `json:"key"`
	Value     string    `json:"value"`
	Provider  string    `json:"provider"`
	Timestamp time.Time `json:"timestamp"`
}

// File is a stored file's metadata.
type File struct {
	ID      int64     `json:"id"`
	Project string    `json:"project"`
	Name    string    `json:"name"`
	Size    int64     `json:"size_bytes"`
	Tags    []string  `json:"tags"`
	SHA256  string    `json:"sha256"`
	Created time.Time `json:"created"`
	// IsPermanent, IsPublic and Notify are the file's attributes, as a component's file
	// manifest sets them; uploads are permanent. A file that is not permanent expires at
	// Expires (FileRetention after it was stored) and is then gone from listings and mappings.
	IsPermanent bool       `json:"is_permanent"`
	IsPublic    bool       `json:"is_public"`
	Notify      bool       `json:"notify"`
	Expires     *time.Time `json:"expires,omitempty"`
}

// FileAttributes are what a component's file manifest says of a file besides its tags.
type FileAttributes struct {
	IsPermanent, IsPublic, Notify bool
}

// FileRetention is how long a file that is not permanent is kept: 15 days, as on Keboola,
// where files a component writes without is_permanent are deleted after 15 days.
const FileRetention = 15 * 24 * time.Hour

// fileColumns are the columns scanFile reads, in its order.
const fileColumns = `id, project, name, size, tags, sha256, created_at, is_permanent, is_public, notify, expires_at`

type scanner interface{ Scan(dest ...any) error }

func scanFile(r scanner) (File, error) {
	var f File
	var tj, created string
	var expires sql.NullString
	if err := r.Scan(&f.ID, &f.Project, &f.Name, &f.Size, &tj, &f.SHA256, &created, &f.IsPermanent, &f.IsPublic, &f.Notify, &expires); err != nil {
		return f, err
	}
	json.Unmarshal([]byte(tj), &f.Tags)
	f.Created = parseTS(created)
	if expires.Valid {
		t := parseTS(expires.String)
		f.Expires = &t
	}
	return f, nil
}

var (
	reBucket = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)
	reName   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	reColumn = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
)

// SplitTableID splits "in.c-main.sales" into bucket "in.c-main" and table "sales".
func SplitTableID(id string) (bucket, name string, err error) {
	i := strings.LastIndex(id, ".")
	if i <= 0 || i == len(id)-1 {
		return "", "", fmt.Errorf("%w: table id %q: want <bucket>.<table>, e.g. in.c-main.sales", ErrInvalid, id)
	}
	bucket, name = id[:i], id[i+1:]
	if !reBucket.MatchString(bucket) || !reName.MatchString(name) {
		return "", "", fmt.Errorf("%w: table id %q: bucket and table names use letters, digits, '_' and '-'", ErrInvalid, id)
	}
	return bucket, name, nil
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// tsSortable is a time of fixed width, so times compare in SQL as text (expires_at).
func tsSortable(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

func parseTS(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// Usage is the bytes storage keeps: table rows (their counted size, see ProjectUsage) and files.
func (s *Storage) Usage(ctx context.Context) (tables, files int64, err error) {
	err = s.st.DB.QueryRowContext(ctx, `SELECT COALESCE((SELECT SUM(data_bytes) FROM storage_tables), 0),
		COALESCE((SELECT SUM(size) FROM storage_files), 0)`).Scan(&tables, &files)
	if err != nil {
		return 0, 0, fmt.Errorf("storage usage: %w", err)
	}
	return tables, files, nil
}

// GetTable returns a table's metadata.
func (s *Storage) GetTable(ctx context.Context, q Q, id string) (Table, error) {
	var t Table
	var cols, pk, created, changed string
	err := q.QueryRowContext(ctx, `SELECT t.id, t.bucket, b.project, t.name, t.columns, t.primary_key, t.rows_count, t.created_at, t.last_change_at
		FROM storage_tables t JOIN storage_buckets b ON b.id = t.bucket WHERE t.id = ?`, id).Scan(&t.ID, &t.Bucket, &t.Project, &t.Name, &cols, &pk, &t.RowsCount, &created, &changed)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("table %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return t, err
	}
	json.Unmarshal([]byte(cols), &t.Columns)
	json.Unmarshal([]byte(pk), &t.PrimaryKey)
	t.Created, t.LastChangeAt = parseTS(created), parseTS(changed)
	t.Metadata, t.ColumnMetadata = []Meta{}, map[string][]Meta{}
	rows, err := q.QueryContext(ctx, `SELECT column_name, key, value, provider, updated_at FROM storage_metadata
		WHERE table_id = ? ORDER BY column_name, key`, id)
	if err != nil {
		return t, err
	}
	defer rows.Close()
	for rows.Next() {
		var col, at string
		var m Meta
		if err := rows.Scan(&col, &m.Key, &m.Value, &m.Provider, &at); err != nil {
			return t, err
		}
		m.Timestamp = parseTS(at)
		if col == "" {
			t.Metadata = append(t.Metadata, m)
		} else {
			t.ColumnMetadata[col] = append(t.ColumnMetadata[col], m)
		}
	}
	return t, rows.Err()
}

// setMetadata stores metadata of a table ("" column) or its columns, replacing the same keys.
func (s *Storage) setMetadata(ctx context.Context, q Q, id, provider string, table map[string]string, columns map[string]map[string]string) error {
	now := ts(time.Now().UTC())
	put := func(col, k, v string) error {
		_, err := q.ExecContext(ctx, `INSERT INTO storage_metadata (table_id, column_name, key, value, provider, updated_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (table_id, column_name, key) DO UPDATE SET
			value = excluded.value, provider = excluded.provider, updated_at = excluded.updated_at`, id, col, k, v, provider, now)
		return err
	}
	for k, v := range table {
		if err := put("", k, v); err != nil {
			return err
		}
	}
	for col, kv := range columns {
		for k, v := range kv {
			if err := put(col, k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// ListTables returns the tables of a bucket ("" for all).
func (s *Storage) ListTables(ctx context.Context, bucket string) ([]Table, error) {
	rows, err := s.st.DB.QueryContext(ctx, `SELECT id FROM storage_tables WHERE ? = '' OR bucket = ? ORDER BY id`, bucket, bucket)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	var out []Table
	for _, id := range ids {
		t, err := s.GetTable(ctx, s.st.DB, id)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// PutFile stores a file's content (before its row exists: see AddFile), returning its temp path.
func (s *Storage) stageFile(r io.Reader) (string, int64, string, error) {
	f, err := os.CreateTemp(filepath.Join(s.dir, "files"), "staged-")
	if err != nil {
		return "", 0, "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", 0, "", err
	}
	return f.Name(), n, hex.EncodeToString(h.Sum(nil)), nil
}

// StagedFile is a file whose content is on disk but not yet committed.
type StagedFile struct {
	path   string
	name   string
	size   int64
	sha    string
	tags   []string
	attrs  FileAttributes
	s      *Storage
	fileID int64
	// project owns the file once committed ("" is the default project).
	project string
}

// SetProject gives the file to a project (before Commit); a staged file is the default
// project's unless this says otherwise.
func (f *StagedFile) SetProject(project string) { f.project = project }

// Size is the staged content's size in bytes.
func (f *StagedFile) Size() int64 { return f.size }

// SetAttributes gives the file a manifest's attributes (before Commit). A staged file is
// permanent unless this says otherwise.
func (f *StagedFile) SetAttributes(a FileAttributes) { f.attrs = a }

// Stage copies a file's content into storage, to be committed with Commit in a transaction.
func (s *Storage) Stage(name string, r io.Reader, tags []string) (*StagedFile, error) {
	if name == "" || strings.ContainsAny(name, "/\\") {
		return nil, fmt.Errorf("%w: file name %q", ErrInvalid, name)
	}
	p, n, sum, err := s.stageFile(r)
	if err != nil {
		return nil, err
	}
	return &StagedFile{path: p, name: name, size: n, sha: sum, tags: tags, attrs: FileAttributes{IsPermanent: true}, s: s}, nil
}

// Commit records the file in q (a transaction) and returns its metadata. Finish must follow
// the transaction's commit (Discard after a rollback).
func (f *StagedFile) Commit(ctx context.Context, q Q) (File, error) {
	tags := f.tags
	if tags == nil {
		tags = []string{}
	}
	sort.Strings(tags)
	tj, _ := json.Marshal(tags)
	now := time.Now().UTC()
	var expires *time.Time
	var expiresCol any
	if !f.attrs.IsPermanent {
		e := now.Add(FileRetention)
		expires, expiresCol = &e, tsSortable(e)
	}
	project := orDefault(f.project)
	res, err := q.ExecContext(ctx, `INSERT INTO storage_files (project, name, size, tags, sha256, created_at, is_permanent, is_public, notify, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		project, f.name, f.size, string(tj), f.sha, ts(now), f.attrs.IsPermanent, f.attrs.IsPublic, f.attrs.Notify, expiresCol)
	if err != nil {
		return File{}, err
	}
	f.fileID, _ = res.LastInsertId()
	return File{ID: f.fileID, Project: project, Name: f.name, Size: f.size, Tags: tags, SHA256: f.sha, Created: now,
		IsPermanent: f.attrs.IsPermanent, IsPublic: f.attrs.IsPublic, Notify: f.attrs.Notify, Expires: expires}, nil
}

// Finish moves the committed content into place.
func (f *StagedFile) Finish() error {
	return os.Rename(f.path, f.s.filePath(f.fileID))
}

// Discard removes staged content.
func (f *StagedFile) Discard() { os.Remove(f.path) }

func (s *Storage) filePath(id int64) string {
	return filepath.Join(s.dir, "files", strconv.FormatInt(id, 10))
}

// UploadFile stores a file at once in the default project.
func (s *Storage) UploadFile(ctx context.Context, name string, r io.Reader, tags []string) (File, error) {
	return s.Upload(ctx, store.DefaultProject, name, r, tags)
}

// Upload stores a file at once in project, unless it would take the project's storage over
// its quota (a *QuotaError; nothing is kept).
func (s *Storage) Upload(ctx context.Context, project, name string, r io.Reader, tags []string) (File, error) {
	sf, err := s.Stage(name, r, tags)
	if err != nil {
		return File{}, err
	}
	sf.SetProject(project)
	var f File
	err = s.InQuota(ctx, orDefault(project), func(q Q) error {
		f, err = sf.Commit(ctx, q)
		return err
	})
	if err != nil {
		sf.Discard()
		return File{}, err
	}
	return f, sf.Finish()
}

// PurgeExpired removes the files whose time ran out (their rows, then their content) and
// returns how many went.
func (s *Storage) PurgeExpired(ctx context.Context, now time.Time) (int, error) {
	rows, err := s.st.DB.QueryContext(ctx, `SELECT id FROM storage_files WHERE expires_at IS NOT NULL AND expires_at <= ?`, tsSortable(now))
	if err != nil {
		return 0, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, id := range ids {
		if _, err := s.st.DB.ExecContext(ctx, `DELETE FROM storage_files WHERE id = ?`, id); err != nil {
			return 0, err
		}
		if err := os.Remove(s.filePath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
	}
	return len(ids), nil
}

// live is the condition of files whose time has not run out.
const live = `(expires_at IS NULL OR expires_at > ?)`

// ListFiles returns the files of every project carrying every tag, newest first; expired
// files are not listed.
func (s *Storage) ListFiles(ctx context.Context, tags []string, limit int) ([]File, error) {
	return s.Files(ctx, FileQuery{Tags: tags, Limit: limit})
}

// FileQuery selects files: of Project ("" for every project), carrying every one of Tags, at
// most Limit (0: no limit).
type FileQuery struct {
	Project string
	Tags    []string
	Limit   int
}

// Files returns the files a query selects, newest first; expired files are not listed.
func (s *Storage) Files(ctx context.Context, fq FileQuery) ([]File, error) {
	rows, err := s.st.DB.QueryContext(ctx, `SELECT `+fileColumns+` FROM storage_files WHERE `+live+`
		AND (? = '' OR project = ?) ORDER BY id DESC`, tsSortable(time.Now()), fq.Project, fq.Project)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []File
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, err
		}
		ok := true
		for _, t := range fq.Tags {
			ok = ok && indexOf(f.Tags, t) >= 0
		}
		if ok {
			out = append(out, f)
			if fq.Limit > 0 && len(out) >= fq.Limit {
				break
			}
		}
	}
	return out, rows.Err()
}

// GetFile returns a file's metadata; an expired file is not found.
func (s *Storage) GetFile(ctx context.Context, id int64) (File, error) {
	f, err := scanFile(s.st.DB.QueryRowContext(ctx, `SELECT `+fileColumns+` FROM storage_files WHERE id = ? AND `+live, id, tsSortable(time.Now())))
	if errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("file %d: %w", id, ErrNotFound)
	}
	return f, err
}

// OpenFile opens a file's content.
func (s *Storage) OpenFile(ctx context.Context, id int64) (io.ReadCloser, File, error) {
	f, err := s.GetFile(ctx, id)
	if err != nil {
		return nil, f, err
	}
	rc, err := os.Open(s.filePath(id))
	return rc, f, err
}

// TagFile adds tags to a file.
func (s *Storage) TagFile(ctx context.Context, id int64, tags []string) (File, error) {
	f, err := s.GetFile(ctx, id)
	if err != nil {
		return f, err
	}
	for _, t := range tags {
		if indexOf(f.Tags, t) < 0 {
			f.Tags = append(f.Tags, t)
		}
	}
	sort.Strings(f.Tags)
	tj, _ := json.Marshal(f.Tags)
	_, err = s.st.DB.ExecContext(ctx, `UPDATE storage_files SET tags = ? WHERE id = ?`, string(tj), id)
	return f, err
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
