package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrConflict is returned when a unique name is taken.
var ErrConflict = errors.New("store: conflict")

// Token is an API token as stored: its hash, never its value.
type Token struct {
	ID, Name, Hash, Role, Scope string
	// Project is the project the token belongs to ("default" when none was named).
	Project                          string
	CreatedAt                        time.Time
	LastUsedAt, RevokedAt, ExpiresAt *time.Time
}

const tokenColumns = `id, name, hash, role, scope, created_at, last_used_at, revoked_at, project, expires_at`

// CreateToken stores a token; a taken name is ErrConflict.
func (s *Store) CreateToken(ctx context.Context, t Token) error {
	if t.Project == "" {
		t.Project = DefaultProject
	}
	_, err := s.DB.ExecContext(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?)`,
		t.ID, t.Name, t.Hash, t.Role, t.Scope, jobTS(t.CreatedAt), t.Project, jobTSPtr(t.ExpiresAt))
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "unique") {
			return fmt.Errorf("token %q: %w", t.Name, ErrConflict)
		}
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// TokenByHash finds a token by its hash.
func (s *Store) TokenByHash(ctx context.Context, hash string) (Token, error) {
	t, err := scanToken(s.DB.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, ErrNotFound
	}
	return t, err
}

// ListTokens returns every token, oldest first.
func (s *Store) ListTokens(ctx context.Context) ([]Token, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at, name`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken revokes a token by ID or name.
func (s *Store) RevokeToken(ctx context.Context, idOrName string) error {
	res, err := s.DB.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE (id = ? OR name = ?) AND revoked_at IS NULL`,
		jobTS(time.Now()), idOrName, idOrName)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("token %q: %w", idOrName, ErrNotFound)
	}
	return nil
}

// TouchToken records a token's use.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	_, err := s.DB.ExecContext(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, jobTS(at), id)
	return err
}

// CountTokens counts the tokens not revoked.
func (s *Store) CountTokens(ctx context.Context) (int, error) {
	var n int
	err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens WHERE revoked_at IS NULL`).Scan(&n)
	return n, err
}

func scanToken(r jobScanner) (Token, error) {
	var t Token
	var created string
	var used, revoked, expires sql.NullString
	if err := r.Scan(&t.ID, &t.Name, &t.Hash, &t.Role, &t.Scope, &created, &used, &revoked, &t.Project, &expires); err != nil {
		return t, err
	}
	t.ExpiresAt = jobParseTSPtr(expires)
	t.CreatedAt = jobParseTS(created)
	t.LastUsedAt = jobParseTSPtr(used)
	t.RevokedAt = jobParseTSPtr(revoked)
	return t, nil
}

// TokenByID finds a token by its ID.
func (s *Store) TokenByID(ctx context.Context, id string) (Token, error) {
	t, err := scanToken(s.DB.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, ErrNotFound
	}
	return t, err
}
