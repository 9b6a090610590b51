package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrNotEmpty: a bucket still holds tables.
var ErrNotEmpty = errors.New("storage: not empty")

// DeleteTable removes a table with its rows and metadata; it returns how many rows went.
func (s *Storage) DeleteTable(ctx context.Context, id string) (int64, error) {
	tx, err := s.st.DB.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var project string
	err = tx.QueryRowContext(ctx, `SELECT b.project FROM storage_tables t JOIN storage_buckets b ON b.id = t.bucket WHERE t.id = ?`, id).Scan(&project)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("table %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("delete table %s: %w", id, err)
	}
	n, err := deleteTable(ctx, tx, id)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	// The rows go after the metadata: a failure here leaves rows no table names, which a
	// later table of that id replaces.
	return n, s.dropTables(ctx, project, []string{id})
}

func deleteTable(ctx context.Context, q Q, id string) (int64, error) {
	var rows int64
	err := q.QueryRowContext(ctx, `SELECT rows_count FROM storage_tables WHERE id = ?`, id).Scan(&rows)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("table %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("delete table %s: %w", id, err)
	}
	for _, stmt := range []string{`DELETE FROM storage_metadata WHERE table_id = ?`,
		`DELETE FROM storage_tables WHERE id = ?`} {
		if _, err := q.ExecContext(ctx, stmt, id); err != nil {
			return 0, fmt.Errorf("delete table %s: %w", id, err)
		}
	}
	return rows, nil
}

// DeleteBucket removes a bucket. One holding tables is ErrNotEmpty unless force, which
// removes its tables (their rows and metadata) with it; it returns the tables removed.
func (s *Storage) DeleteBucket(ctx context.Context, id string, force bool) ([]string, error) {
	tx, err := s.st.DB.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var project string
	if err := tx.QueryRowContext(ctx, `SELECT project FROM storage_buckets WHERE id = ?`, id).Scan(&project); errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("bucket %s: %w", id, ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("delete bucket %s: %w", id, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id FROM storage_tables WHERE bucket = ? ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("delete bucket %s: %w", id, err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(tables) > 0 && !force {
		return tables, fmt.Errorf("bucket %s holds %d table(s) %v: %w", id, len(tables), tables, ErrNotEmpty)
	}
	for _, t := range tables {
		if _, err := deleteTable(ctx, tx, t); err != nil {
			return nil, err
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM storage_buckets WHERE id = ?`, id); err != nil {
		return nil, fmt.Errorf("delete bucket %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return tables, s.dropTables(ctx, project, tables)
}

// DeleteFile removes a file: its row, then its content.
func (s *Storage) DeleteFile(ctx context.Context, id int64) (File, error) {
	var f File
	f, err := scanFile(s.st.DB.QueryRowContext(ctx, `SELECT `+fileColumns+` FROM storage_files WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("file %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return f, err
	}
	if _, err := s.st.DB.ExecContext(ctx, `DELETE FROM storage_files WHERE id = ?`, id); err != nil {
		return f, fmt.Errorf("delete file %d: %w", id, err)
	}
	if err := os.Remove(s.filePath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return f, fmt.Errorf("delete file %d's content: %w", id, err)
	}
	return f, nil
}
