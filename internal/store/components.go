package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrStateConflict: a configuration's state was saved by another run since this run read it.
var ErrStateConflict = errors.New("store: state conflict")

// PutComponent stores (or replaces) a component definition.
func (s *Store) PutComponent(ctx context.Context, id, body string) error {
	_, err := s.DB.ExecContext(ctx, `INSERT INTO components (id, body, created_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET body = excluded.body`, id, body, jobTS(time.Now()))
	return err
}

// GetComponent returns a component's definition.
func (s *Store) GetComponent(ctx context.Context, id string) (string, error) {
	var body string
	err := s.DB.QueryRowContext(ctx, `SELECT body FROM components WHERE id = ?`, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("component %s: %w", id, ErrNotFound)
	}
	return body, err
}

// ListComponents returns every component's definition.
func (s *Store) ListComponents(ctx context.Context) ([]string, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT body FROM components ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var b string
		rows.Scan(&b)
		out = append(out, b)
	}
	return out, rows.Err()
}

// ConfigRow is a stored configuration.
type ConfigRow struct {
	ID, ComponentID string
	Version         int
	Body            string
	State           string
	StateVersion    int
	UpdatedAt       time.Time
}

// PutConfig stores a new version of a configuration (its state is kept).
func (s *Store) PutConfig(ctx context.Context, id, componentID, body string) (int, error) {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var version int
	err = tx.QueryRowContext(ctx, `SELECT version FROM configs WHERE id = ?`, id).Scan(&version)
	now := jobTS(time.Now())
	switch {
	case errors.Is(err, sql.ErrNoRows):
		version = 1
		_, err = tx.ExecContext(ctx, `INSERT INTO configs (id, component_id, version, body, updated_at) VALUES (?, ?, 1, ?, ?)`,
			id, componentID, body, now)
	case err == nil:
		version++
		_, err = tx.ExecContext(ctx, `UPDATE configs SET component_id = ?, version = ?, body = ?, updated_at = ? WHERE id = ?`,
			componentID, version, body, now, id)
	}
	if err != nil {
		return 0, fmt.Errorf("save config %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO config_versions (config_id, version, body, created_at) VALUES (?, ?, ?, ?)`,
		id, version, body, now); err != nil {
		return 0, err
	}
	return version, tx.Commit()
}

// GetConfig returns a configuration with its state.
func (s *Store) GetConfig(ctx context.Context, id string) (ConfigRow, error) {
	var c ConfigRow
	var updated string
	err := s.DB.QueryRowContext(ctx, `SELECT id, component_id, version, body, state, state_version, updated_at FROM configs WHERE id = ?`, id).
		Scan(&c.ID, &c.ComponentID, &c.Version, &c.Body, &c.State, &c.StateVersion, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("config %s: %w", id, ErrNotFound)
	}
	c.UpdatedAt = jobParseTS(updated)
	return c, err
}

// ListConfigs returns configurations of a component ("" for all).
func (s *Store) ListConfigs(ctx context.Context, componentID string) ([]ConfigRow, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id FROM configs WHERE ? = '' OR component_id = ? ORDER BY id`, componentID, componentID)
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
	var out []ConfigRow
	for _, id := range ids {
		c, err := s.GetConfig(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Execer runs a statement (a *sql.DB or *sql.Tx).
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// SaveState writes a configuration's state if nobody saved one since the run read version
// `read`; otherwise it returns ErrStateConflict and writes nothing.
func SaveState(ctx context.Context, q Execer, id, state string, read int) error {
	if strings.TrimSpace(state) == "" {
		state = "{}"
	}
	res, err := q.ExecContext(ctx, `UPDATE configs SET state = ?, state_version = state_version + 1 WHERE id = ? AND state_version = ?`,
		state, id, read)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("config %s: %w: another run saved its state since this run started (this run's outputs and state were not saved)", id, ErrStateConflict)
	}
	return nil
}

// GetRowState returns a configuration row's state ({} when it has none) and its version.
func (s *Store) GetRowState(ctx context.Context, configID, rowID string) (string, int, error) {
	var state string
	var version int
	err := s.DB.QueryRowContext(ctx, `SELECT state, state_version FROM config_row_states WHERE config_id = ? AND row_id = ?`,
		configID, rowID).Scan(&state, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return "{}", 0, nil
	}
	return state, version, err
}

// SaveRowState is SaveState for one row of a configuration.
func SaveRowState(ctx context.Context, q Execer, configID, rowID, state string, read int) error {
	if strings.TrimSpace(state) == "" {
		state = "{}"
	}
	var res sql.Result
	var err error
	if read == 0 {
		res, err = q.ExecContext(ctx, `INSERT INTO config_row_states (config_id, row_id, state, state_version) VALUES (?, ?, ?, 1)
			ON CONFLICT (config_id, row_id) DO NOTHING`, configID, rowID, state)
	} else {
		res, err = q.ExecContext(ctx, `UPDATE config_row_states SET state = ?, state_version = state_version + 1
			WHERE config_id = ? AND row_id = ? AND state_version = ?`, state, configID, rowID, read)
	}
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("config %s row %s: %w: another run saved its state since this run started (this run's outputs and state were not saved)", configID, rowID, ErrStateConflict)
	}
	return nil
}

// PutCredentials stores a configuration's sealed credentials, replacing earlier ones.
func (s *Store) PutCredentials(ctx context.Context, configID string, sealed []byte) error {
	_, err := s.DB.ExecContext(ctx, `INSERT INTO config_credentials (config_id, sealed, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (config_id) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at`,
		configID, sealed, jobTS(time.Now()))
	return err
}

// GetCredentials returns a configuration's sealed credentials and when they were stored;
// ErrNotFound when none are.
func (s *Store) GetCredentials(ctx context.Context, configID string) ([]byte, time.Time, error) {
	var sealed []byte
	var updated string
	err := s.DB.QueryRowContext(ctx, `SELECT sealed, updated_at FROM config_credentials WHERE config_id = ?`, configID).Scan(&sealed, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, fmt.Errorf("credentials of config %s: %w", configID, ErrNotFound)
	}
	return sealed, jobParseTS(updated), err
}

// DeleteCredentials removes a configuration's stored credentials (none stored is fine).
func (s *Store) DeleteCredentials(ctx context.Context, configID string) error {
	_, err := s.DB.ExecContext(ctx, `DELETE FROM config_credentials WHERE config_id = ?`, configID)
	return err
}
