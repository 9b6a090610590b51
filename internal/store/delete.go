package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrInUse: the row is still used by another (a component by its configurations, a bucket
// by its tables, a token not yet revoked).
var ErrInUse = errors.New("store: in use")

// deleteIn runs stmts (each taking the same args) in one transaction; the last statement
// deletes the row itself, and its affected rows decide whether anything was there
// (ErrNotFound when not).
func (s *Store) deleteIn(ctx context.Context, what string, stmts []string, args ...any) error {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete %s: %w", what, err)
	}
	defer tx.Rollback()
	for i, q := range stmts {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("delete %s: %w", what, err)
		}
		if i == len(stmts)-1 {
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("%s: %w", what, ErrNotFound)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete %s: %w", what, err)
	}
	return nil
}

// DeleteJob removes a job's row.
func (s *Store) DeleteJob(ctx context.Context, id string) error {
	return s.deleteIn(ctx, "job "+id, []string{`DELETE FROM jobs WHERE id = ?`}, id)
}

// DeleteService removes a service's row and its history of transitions.
func (s *Store) DeleteService(ctx context.Context, name string) error {
	return s.deleteIn(ctx, "service "+name, []string{
		`DELETE FROM service_events WHERE name = ?`,
		`DELETE FROM services WHERE name = ?`}, name)
}

// ConfigsUsing returns the ids of the configurations of a component.
func (s *Store) ConfigsUsing(ctx context.Context, componentID string) ([]string, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id FROM configs WHERE component_id = ? ORDER BY id`, componentID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// DeleteConfig removes a configuration with its versions, rows' state and credentials.
func (s *Store) DeleteConfig(ctx context.Context, id string) error {
	return s.deleteIn(ctx, "configuration "+id, []string{
		`DELETE FROM config_versions WHERE config_id = ?`,
		`DELETE FROM config_row_states WHERE config_id = ?`,
		`DELETE FROM config_credentials WHERE config_id = ?`,
		`DELETE FROM configs WHERE id = ?`}, id)
}

// DeleteComponent removes a component. It is ErrInUse while a configuration uses it.
func (s *Store) DeleteComponent(ctx context.Context, id string) error {
	using, err := s.ConfigsUsing(ctx, id)
	if err != nil {
		return fmt.Errorf("delete component %s: %w", id, err)
	}
	if len(using) > 0 {
		return fmt.Errorf("component %s is used by %d configuration(s) %v: %w", id, len(using), using, ErrInUse)
	}
	return s.deleteIn(ctx, "component "+id, []string{`DELETE FROM components WHERE id = ?`}, id)
}

// DeleteToken removes a revoked token (by id or name) with its sessions and sign-in codes.
// A token not yet revoked is ErrInUse: revoking first keeps the moment it stopped working.
func (s *Store) DeleteToken(ctx context.Context, idOrName string) (Token, error) {
	t, err := scanToken(s.DB.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = ? OR name = ?`, idOrName, idOrName))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("token %q: %w", idOrName, ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("delete token %q: %w", idOrName, err)
	}
	if t.RevokedAt == nil {
		return t, fmt.Errorf("token %q is not revoked (revoke it first): %w", idOrName, ErrInUse)
	}
	// Sessions and codes first: they refer to the token.
	return t, s.deleteIn(ctx, "token "+t.ID, []string{
		`DELETE FROM sessions WHERE token_id = ?`,
		`DELETE FROM signin_codes WHERE token_id = ?`,
		`DELETE FROM tokens WHERE id = ?`}, t.ID)
}
