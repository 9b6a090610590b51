package storage

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// moveOldRows moves the tables berth kept in the old format (rows as JSON arrays in
// storage_rows, data_bytes -1) into the table engine, one table per transaction, with a
// progress line per table; it runs at start-up and does nothing once every table is moved.
// A table moved is committed in both places before the next starts, so an interrupted move
// resumes where it stopped.
func (s *Storage) moveOldRows(ctx context.Context, log *slog.Logger) error {
	rows, err := s.st.DB.QueryContext(ctx, `SELECT id FROM storage_tables WHERE data_bytes < 0 ORDER BY id`)
	if err != nil {
		return fmt.Errorf("storage: find old-format tables: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	log.Info("storage: moving tables to the table engine (once, on upgrade)", "tables", len(ids))
	t0 := time.Now()
	for i, id := range ids {
		n, err := s.moveTable(ctx, id)
		if err != nil {
			return fmt.Errorf("storage: move table %s to the table engine: %w", id, err)
		}
		log.Info("storage: moved table", "table", id, "rows", n, "progress", fmt.Sprintf("%d/%d", i+1, len(ids)))
	}
	// Rows of tables that no longer exist are left-overs of the old format too.
	if _, err := s.st.DB.ExecContext(ctx, `DELETE FROM storage_rows`); err != nil {
		return err
	}
	log.Info("storage: tables moved", "tables", len(ids), "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

func (s *Storage) moveTable(ctx context.Context, id string) (int64, error) {
	tx, err := s.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	t, err := s.GetTable(ctx, tx, id)
	if err != nil {
		return 0, err
	}
	d, err := tx.tables(ctx, t.Project)
	if err != nil {
		return 0, err
	}
	tbl := ident(id)
	if _, err := d.conn.ExecContext(ctx, `CREATE OR REPLACE TABLE `+tbl+` (`+tableDDL(t.Columns)+`)`); err != nil {
		return 0, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, data, changed_at FROM storage_rows WHERE table_id = ? ORDER BY seq`, id)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	err = d.conn.Raw(func(dc any) error {
		a, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", id)
		if err != nil {
			return err
		}
		row := make([]driver.Value, len(t.Columns)+2)
		for rows.Next() {
			var seq int64
			var data, changed string
			if err := rows.Scan(&seq, &data, &changed); err != nil {
				a.Close()
				return err
			}
			var vals []string
			if err := json.Unmarshal([]byte(data), &vals); err != nil {
				a.Close()
				return fmt.Errorf("row %d: %w", seq, err)
			}
			row[0], row[1] = seq, parseTS(changed)
			for i := range t.Columns {
				row[i+2] = ""
				if i < len(vals) {
					row[i+2] = vals[i]
				}
			}
			if err := a.AppendRow(row...); err != nil {
				a.Close()
				return err
			}
		}
		if err := rows.Err(); err != nil {
			a.Close()
			return err
		}
		return a.Close()
	})
	rows.Close()
	if err != nil {
		return 0, err
	}
	var n, bytes int64
	if err := d.conn.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(`+rowBytes(t.Columns)+`), 0) FROM `+tbl).Scan(&n, &bytes); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE storage_tables SET rows_count = ?, data_bytes = ? WHERE id = ?`, n, bytes, id); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM storage_rows WHERE table_id = ?`, id); err != nil {
		return 0, err
	}
	return n, tx.Commit()
}
