package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/berthproject/berth/internal/store"
)

// Buckets and files belong to a project; tables belong to their bucket's project. Bucket ids
// stay server-wide: a bucket id another project uses is refused, not shadowed. A bucket may
// be shared with other projects, read-only there (Keboola's bucket sharing). Who may do what
// is authz's to decide: this file gives the facts (owner, shares, usage) it decides on.

// ErrConflict: a bucket id is taken by another project.
var ErrConflict = errors.New("storage: conflict")

// Bucket is a bucket with its owner and the projects it is shared with.
type Bucket struct {
	ID         string    `json:"id"`
	Project    string    `json:"project"`
	SharedWith []string  `json:"shared_with"`
	Created    time.Time `json:"created"`
}

// ForeignBucketError: a write meant for project Project reached a bucket of project Owner.
// Shared says the bucket is shared with Project (readable there, not writable).
type ForeignBucketError struct {
	Bucket, Owner, Project string
	Shared                 bool
}

func (e *ForeignBucketError) Error() string {
	if e.Shared {
		return fmt.Sprintf("bucket %s is shared with project %s by project %s: read-only here", e.Bucket, e.Project, e.Owner)
	}
	return fmt.Sprintf("bucket id %s is in use by another project", e.Bucket)
}

// Is makes a ForeignBucketError match ErrConflict.
func (e *ForeignBucketError) Is(target error) bool { return target == ErrConflict }

// QuotaError: a write would take a project's storage over its max_storage_bytes.
type QuotaError struct {
	Project string
	// Usage is what the project used before the write, Would what it would use after it.
	Usage, Would, Limit int64
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("storage quota exceeded: project %s uses %d bytes of its %d-byte quota (max_storage_bytes); this would make it %d bytes",
		e.Project, e.Usage, e.Limit, e.Would)
}

func orDefault(project string) string {
	if project == "" {
		return store.DefaultProject
	}
	return project
}

// CreateBucket creates a bucket in project ("" is the default project); creating one the
// project already has does nothing, one of another project is a *ForeignBucketError.
func (s *Storage) CreateBucket(ctx context.Context, q Q, project, id string) error {
	if !reBucket.MatchString(id) {
		return fmt.Errorf("%w: bucket id %q: letters, digits, '_', '-' and '.'", ErrInvalid, id)
	}
	project = orDefault(project)
	if _, err := q.ExecContext(ctx, `INSERT INTO storage_buckets (id, created_at, project) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		id, ts(time.Now()), project); err != nil {
		return fmt.Errorf("create bucket %s: %w", id, err)
	}
	b, err := s.GetBucket(ctx, q, id)
	if err != nil {
		return err
	}
	if b.Project != project {
		return &ForeignBucketError{Bucket: id, Owner: b.Project, Project: project, Shared: slices.Contains(b.SharedWith, project)}
	}
	return nil
}

// GetBucket returns a bucket with its shares.
func (s *Storage) GetBucket(ctx context.Context, q Q, id string) (Bucket, error) {
	b := Bucket{ID: id, SharedWith: []string{}}
	var created string
	err := q.QueryRowContext(ctx, `SELECT project, created_at FROM storage_buckets WHERE id = ?`, id).Scan(&b.Project, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("bucket %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return b, fmt.Errorf("read bucket %s: %w", id, err)
	}
	b.Created = parseTS(created)
	rows, err := q.QueryContext(ctx, `SELECT project FROM storage_bucket_shares WHERE bucket = ? ORDER BY project`, id)
	if err != nil {
		return b, fmt.Errorf("read bucket %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return b, err
		}
		b.SharedWith = append(b.SharedWith, p)
	}
	return b, rows.Err()
}

// ListBuckets returns every bucket of the server with its shares, by id; callers filter
// what the caller may see (authz).
func (s *Storage) ListBuckets(ctx context.Context) ([]Bucket, error) {
	rows, err := s.st.DB.QueryContext(ctx, `SELECT id, project, created_at FROM storage_buckets ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	var out []Bucket
	byID := map[string]int{}
	for rows.Next() {
		b := Bucket{SharedWith: []string{}}
		var created string
		if err := rows.Scan(&b.ID, &b.Project, &created); err != nil {
			rows.Close()
			return nil, err
		}
		b.Created = parseTS(created)
		byID[b.ID] = len(out)
		out = append(out, b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	shares, err := s.st.DB.QueryContext(ctx, `SELECT bucket, project FROM storage_bucket_shares ORDER BY bucket, project`)
	if err != nil {
		return nil, fmt.Errorf("list bucket shares: %w", err)
	}
	defer shares.Close()
	for shares.Next() {
		var b, p string
		if err := shares.Scan(&b, &p); err != nil {
			return nil, err
		}
		if i, ok := byID[b]; ok {
			out[i].SharedWith = append(out[i].SharedWith, p)
		}
	}
	return out, shares.Err()
}

// ShareBucket makes a bucket readable in another project (again: nothing changes). Sharing
// a bucket with its own project is ErrInvalid; the project must exist (checked by the
// caller, which names the field).
func (s *Storage) ShareBucket(ctx context.Context, id, project string) (Bucket, error) {
	b, err := s.GetBucket(ctx, s.st.DB, id)
	if err != nil {
		return b, err
	}
	if b.Project == project {
		return b, fmt.Errorf("%w: bucket %s belongs to project %s; share it with another project", ErrInvalid, id, project)
	}
	if _, err := s.st.DB.ExecContext(ctx, `INSERT INTO storage_bucket_shares (bucket, project, created_at) VALUES (?, ?, ?)
		ON CONFLICT (bucket, project) DO NOTHING`, id, project, ts(time.Now())); err != nil {
		return b, fmt.Errorf("share bucket %s with %s: %w", id, project, err)
	}
	return s.GetBucket(ctx, s.st.DB, id)
}

// UnshareBucket ends a bucket's sharing with a project; a share that does not exist is
// ErrNotFound.
func (s *Storage) UnshareBucket(ctx context.Context, id, project string) (Bucket, error) {
	res, err := s.st.DB.ExecContext(ctx, `DELETE FROM storage_bucket_shares WHERE bucket = ? AND project = ?`, id, project)
	if err != nil {
		return Bucket{}, fmt.Errorf("unshare bucket %s from %s: %w", id, project, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Bucket{}, fmt.Errorf("bucket %s is not shared with project %s: %w", id, project, ErrNotFound)
	}
	return s.GetBucket(ctx, s.st.DB, id)
}

// TableBucket is a table's bucket as authz needs it: the owning project and its shares.
// A missing table (or bucket) is ErrNotFound.
func (s *Storage) TableBucket(ctx context.Context, tableID string) (Bucket, error) {
	var bucket string
	err := s.st.DB.QueryRowContext(ctx, `SELECT bucket FROM storage_tables WHERE id = ?`, tableID).Scan(&bucket)
	if errors.Is(err, sql.ErrNoRows) {
		return Bucket{}, fmt.Errorf("table %s: %w", tableID, ErrNotFound)
	}
	if err != nil {
		return Bucket{}, fmt.Errorf("read table %s: %w", tableID, err)
	}
	return s.GetBucket(ctx, s.st.DB, bucket)
}

// ProjectUsage is the bytes a project's storage keeps, read on q (so a transaction sees its
// own writes): its tables' rows plus its files. A row counts as the bytes of the JSON array
// of its values (["a","b"], how berth kept rows before the table engine; escapes are not
// counted): a little more than the CSV it came from (quotes and commas per value), and
// without the engine's compression and overhead, which is a good estimate of what the
// project asked berth to keep. Loads record each table's count (storage_tables.data_bytes).
// Files count their size. Expired files still count until they are purged.
func (s *Storage) ProjectUsage(ctx context.Context, q Q, project string) (int64, error) {
	var tables, files int64
	err := q.QueryRowContext(ctx, `SELECT
		COALESCE((SELECT SUM(t.data_bytes) FROM storage_tables t JOIN storage_buckets b ON b.id = t.bucket
			WHERE b.project = ?), 0),
		COALESCE((SELECT SUM(size) FROM storage_files WHERE project = ?), 0)`, project, project).Scan(&tables, &files)
	if err != nil {
		return 0, fmt.Errorf("storage usage of project %s: %w", project, err)
	}
	return tables + files, nil
}

// QuotaOf is a project's max_storage_bytes (0: no limit), read on q.
func (s *Storage) QuotaOf(ctx context.Context, q Q, project string) (int64, error) {
	var limit int64
	err := q.QueryRowContext(ctx, `SELECT max_storage_bytes FROM projects WHERE id = ?`, project).Scan(&limit)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("project %s: %w", project, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("storage quota of project %s: %w", project, err)
	}
	return limit, nil
}

// CheckQuota is run on a transaction after its writes: before is the project's usage the
// transaction started from. A write that grows the usage over a non-zero quota is a
// *QuotaError (the caller rolls back); one that shrinks it is let through even over the quota
// (a quota lowered under the usage still lets a project replace or trim its tables).
func (s *Storage) CheckQuota(ctx context.Context, q Q, project string, before int64) error {
	limit, err := s.QuotaOf(ctx, q, project)
	if errors.Is(err, ErrNotFound) {
		return nil // a project that is not (or no longer) recorded has no quota to keep
	}
	if err != nil || limit == 0 {
		return err
	}
	after, err := s.ProjectUsage(ctx, q, project)
	if err != nil {
		return err
	}
	if after > limit && after > before {
		return &QuotaError{Project: project, Usage: before, Would: after, Limit: limit}
	}
	return nil
}

// InQuota runs fn in a transaction and commits it unless it fails or takes project's storage
// over its quota (a *QuotaError; nothing is kept).
func (s *Storage) InQuota(ctx context.Context, project string, fn func(q Q) error) error {
	project = orDefault(project)
	tx, err := s.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	before, err := s.ProjectUsage(ctx, tx, project)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := s.CheckQuota(ctx, tx, project, before); err != nil {
		return err
	}
	return tx.Commit()
}

// StoredFile returns a file's metadata, expired or not (GetFile does not find an expired one).
func (s *Storage) StoredFile(ctx context.Context, id int64) (File, error) {
	f, err := scanFile(s.st.DB.QueryRowContext(ctx, `SELECT `+fileColumns+` FROM storage_files WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("file %d: %w", id, ErrNotFound)
	}
	return f, err
}
