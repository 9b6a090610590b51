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

// ComponentRow is a stored component: its definition and the project it is private to ("":
// shared, usable by every project).
type ComponentRow struct {
	ID, Project, Body string
}

// Shared reports whether every project may use the component.
func (c ComponentRow) Shared() bool { return c.Project == "" }

// PutComponent stores (or replaces) a shared component definition.
func (s *Store) PutComponent(ctx context.Context, id, body string) error {
	return s.RegisterComponent(ctx, "", id, body)
}

// RegisterComponent stores (or replaces) a component private to project ("": shared). A
// component id is server-wide: an id another project's component (or a shared one, for a
// private registration, and the reverse) holds is ErrConflict.
func (s *Store) RegisterComponent(ctx context.Context, project, id, body string) error {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("register component %s: %w", id, err)
	}
	defer tx.Rollback()
	var owner string
	err = tx.QueryRowContext(ctx, `SELECT project FROM components WHERE id = ?`, id).Scan(&owner)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, `INSERT INTO components (id, body, created_at, project) VALUES (?, ?, ?, ?)`,
			id, body, jobTS(time.Now()), project)
	case err == nil && owner != project:
		return fmt.Errorf("component id %s is taken (%s): %w", id, componentOwner(owner), ErrConflict)
	case err == nil:
		_, err = tx.ExecContext(ctx, `UPDATE components SET body = ? WHERE id = ?`, body, id)
	}
	if err != nil {
		return fmt.Errorf("register component %s: %w", id, err)
	}
	return tx.Commit()
}

func componentOwner(project string) string {
	if project == "" {
		return "by a shared component"
	}
	return "in another project"
}

// GetComponent returns a component's definition.
func (s *Store) GetComponent(ctx context.Context, id string) (string, error) {
	c, err := s.GetComponentRow(ctx, id)
	return c.Body, err
}

// GetComponentRow returns a component with its project.
func (s *Store) GetComponentRow(ctx context.Context, id string) (ComponentRow, error) {
	c := ComponentRow{ID: id}
	err := s.DB.QueryRowContext(ctx, `SELECT project, body FROM components WHERE id = ?`, id).Scan(&c.Project, &c.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("component %s: %w", id, ErrNotFound)
	}
	return c, err
}

// ListComponents returns every component's definition.
func (s *Store) ListComponents(ctx context.Context) ([]string, error) {
	rows, err := s.ListComponentRows(ctx)
	var out []string
	for _, r := range rows {
		out = append(out, r.Body)
	}
	return out, err
}

// ListComponentRows returns every component with its project, by id.
func (s *Store) ListComponentRows(ctx context.Context) ([]ComponentRow, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, project, body FROM components ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list components: %w", err)
	}
	defer rows.Close()
	var out []ComponentRow
	for rows.Next() {
		var c ComponentRow
		if err := rows.Scan(&c.ID, &c.Project, &c.Body); err != nil {
			return nil, fmt.Errorf("list components: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ConfigRow is a stored configuration.
type ConfigRow struct {
	ID, ComponentID string
	Project         string // the project it belongs to
	Version         int
	Body            string
	State           string
	StateVersion    int
	UpdatedAt       time.Time
}

// PutConfig stores a new version of a configuration of the default project (its state is kept).
func (s *Store) PutConfig(ctx context.Context, id, componentID, body string) (int, error) {
	return s.SaveConfig(ctx, DefaultProject, id, componentID, body)
}

// SaveConfig stores a new version of a configuration of project (its state is kept). A
// configuration id is server-wide: an id another project's configuration holds is ErrConflict.
func (s *Store) SaveConfig(ctx context.Context, project, id, componentID, body string) (int, error) {
	body, err := s.SealHashParams(body)
	if err != nil {
		return 0, err
	}
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var version int
	var owner string
	err = tx.QueryRowContext(ctx, `SELECT version, project FROM configs WHERE id = ?`, id).Scan(&version, &owner)
	now := jobTS(time.Now())
	switch {
	case errors.Is(err, sql.ErrNoRows):
		version = 1
		_, err = tx.ExecContext(ctx, `INSERT INTO configs (id, component_id, version, body, updated_at, project) VALUES (?, ?, 1, ?, ?, ?)`,
			id, componentID, body, now, projectOr(project))
	case err == nil && owner != projectOr(project):
		return 0, fmt.Errorf("configuration id %s is taken in another project: %w", id, ErrConflict)
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
	err := s.DB.QueryRowContext(ctx, `SELECT id, component_id, project, version, body, state, state_version, updated_at FROM configs WHERE id = ?`, id).
		Scan(&c.ID, &c.ComponentID, &c.Project, &c.Version, &c.Body, &c.State, &c.StateVersion, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("config %s: %w", id, ErrNotFound)
	}
	c.UpdatedAt = jobParseTS(updated)
	return c, err
}

// ListConfigs returns the configurations of a project ("" for every project's) of a
// component ("" for every component's).
func (s *Store) ListConfigs(ctx context.Context, project, componentID string) ([]ConfigRow, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id FROM configs WHERE (? = '' OR project = ?) AND (? = '' OR component_id = ?) ORDER BY id`,
		project, project, componentID, componentID)
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
