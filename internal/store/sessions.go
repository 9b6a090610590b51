package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Session is a browser session as stored: the hash of its cookie value, never the value.
type Session struct {
	ID, Hash, TokenID    string
	CreatedAt, ExpiresAt time.Time
	LastUsedAt           *time.Time
}

// SigninCode is a one-time sign-in code as stored: its hash, the token whose rights the
// session it makes will carry, and where the browser goes after.
type SigninCode struct {
	Hash, TokenID, Next  string
	CreatedAt, ExpiresAt time.Time
	UsedAt               *time.Time
}

const sessionColumns = `id, hash, token_id, created_at, expires_at, last_used_at`

// CreateSession stores a session.
func (s *Store) CreateSession(ctx context.Context, se Session) error {
	_, err := s.DB.ExecContext(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, NULL)`,
		se.ID, se.Hash, se.TokenID, jobTS(se.CreatedAt), jobTS(se.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// SessionByHash finds a session and the token it was made from. Expiry and revocation are
// the caller's to check.
func (s *Store) SessionByHash(ctx context.Context, hash string) (Session, Token, error) {
	var se Session
	var created, expires string
	var used sql.NullString
	err := s.DB.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE hash = ?`, hash).
		Scan(&se.ID, &se.Hash, &se.TokenID, &created, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return se, Token{}, ErrNotFound
	}
	if err != nil {
		return se, Token{}, fmt.Errorf("find session: %w", err)
	}
	se.CreatedAt, se.ExpiresAt, se.LastUsedAt = jobParseTS(created), jobParseTS(expires), jobParseTSPtr(used)
	t, err := s.TokenByID(ctx, se.TokenID)
	if errors.Is(err, ErrNotFound) {
		return se, t, ErrNotFound
	}
	if err != nil {
		return se, t, fmt.Errorf("find session's token: %w", err)
	}
	return se, t, nil
}

// DeleteSession removes a session by its hash (signing out); a missing one is not an error.
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, hash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteTokenSessions removes every session and unused code made from a token (on revoke).
func (s *Store) DeleteTokenSessions(ctx context.Context, tokenID string) error {
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM sessions WHERE token_id = ?`, tokenID); err != nil {
		return fmt.Errorf("delete the token's sessions: %w", err)
	}
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM signin_codes WHERE token_id = ?`, tokenID); err != nil {
		return fmt.Errorf("delete the token's sign-in codes: %w", err)
	}
	return nil
}

// TouchSession records a session's use.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	_, err := s.DB.ExecContext(ctx, `UPDATE sessions SET last_used_at = ? WHERE id = ?`, jobTS(at), id)
	return err
}

// PurgeExpired removes sessions and sign-in codes that expired before a time. Timestamps
// compare as text here, which is exact to the second, so the cut is a second early: good
// enough for clean-up; validity is always checked on the parsed time.
func (s *Store) PurgeExpired(ctx context.Context, before time.Time) error {
	cut := before.UTC().Add(-time.Second).Truncate(time.Second).Format(time.RFC3339)
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ?`, cut); err != nil {
		return fmt.Errorf("purge sessions: %w", err)
	}
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM signin_codes WHERE expires_at < ?`, cut); err != nil {
		return fmt.Errorf("purge sign-in codes: %w", err)
	}
	return nil
}

// CreateSigninCode stores a one-time sign-in code.
func (s *Store) CreateSigninCode(ctx context.Context, c SigninCode) error {
	_, err := s.DB.ExecContext(ctx, `INSERT INTO signin_codes (hash, token_id, next, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, NULL)`,
		c.Hash, c.TokenID, c.Next, jobTS(c.CreatedAt), jobTS(c.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create sign-in code: %w", err)
	}
	return nil
}

// ConsumeSigninCode marks a code used and returns it; only the first of any number of
// concurrent callers gets it, the others (and every later one) get ErrNotFound. Expiry is the
// caller's to check.
func (s *Store) ConsumeSigninCode(ctx context.Context, hash string, at time.Time) (SigninCode, error) {
	var c SigninCode
	res, err := s.DB.ExecContext(ctx, `UPDATE signin_codes SET used_at = ? WHERE hash = ? AND used_at IS NULL`, jobTS(at), hash)
	if err != nil {
		return c, fmt.Errorf("use sign-in code: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return c, ErrNotFound
	}
	var created, expires string
	var used sql.NullString
	err = s.DB.QueryRowContext(ctx, `SELECT hash, token_id, next, created_at, expires_at, used_at FROM signin_codes WHERE hash = ?`, hash).
		Scan(&c.Hash, &c.TokenID, &c.Next, &created, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrNotFound
	}
	if err != nil {
		return c, fmt.Errorf("read sign-in code: %w", err)
	}
	c.CreatedAt, c.ExpiresAt, c.UsedAt = jobParseTS(created), jobParseTS(expires), jobParseTSPtr(used)
	return c, nil
}
