package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Outcomes of an audited action.
const (
	AuditOK     = "ok"     // served (2xx, or a sign-in's redirect)
	AuditDenied = "denied" // refused for who asked: 401, 403, 404
	AuditError  = "error"  // anything else: a bad request, a conflict, a server error
)

// AuditEntry is one line of the audit log: who did what to which resource, from where, and
// how it ended. It never holds a request body, a token or a secret.
type AuditEntry struct {
	ID int64     `json:"id"`
	At time.Time `json:"at"`
	// ActorID and ActorName are the token that acted ("" when the request had no valid
	// credentials); Project is the actor's project, or the job's for job.finished.
	ActorID   string `json:"actor_id"`
	ActorName string `json:"actor_name"`
	Project   string `json:"project"`
	// Action is the route pattern ("POST /api/v1/jobs") or an event ("job.finished").
	Action   string `json:"action"`
	Resource string `json:"resource"`
	Remote   string `json:"remote"`
	Outcome  string `json:"outcome"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
}

// AuditFilter narrows ListAudit. Zero fields do not filter; Actor matches a token id or name;
// Since is inclusive, Until exclusive; Limit 0 means 100.
type AuditFilter struct {
	Project      string
	Actor        string
	Since, Until time.Time
	Action       string
	Limit        int
}

// auditTS is fixed-width so that text order is time order (RFC3339Nano drops trailing zeros).
func auditTS(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

const auditColumns = `id, at, actor_id, actor_name, project, action, resource, remote, outcome, status, detail`

// AppendAudit adds an entry. The log is append-only: nothing changes an entry, and only
// PurgeAudit (retention) removes them.
func (s *Store) AppendAudit(ctx context.Context, e AuditEntry) error {
	switch e.Outcome {
	case AuditOK, AuditDenied, AuditError:
	default:
		return fmt.Errorf("audit outcome %q: use ok, denied or error", e.Outcome)
	}
	if strings.TrimSpace(e.Action) == "" {
		return errors.New("an audit entry needs an action")
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	_, err := s.DB.ExecContext(ctx, `INSERT INTO audit (at, actor_id, actor_name, project, action, resource, remote, outcome, status, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		auditTS(e.At), e.ActorID, e.ActorName, e.Project, e.Action, e.Resource, e.Remote, e.Outcome, e.Status, e.Detail)
	if err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	return nil
}

// ListAudit returns the entries matching f, newest first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	var where []string
	var args []any
	if f.Project != "" {
		where, args = append(where, "project = ?"), append(args, f.Project)
	}
	if f.Actor != "" {
		where, args = append(where, "(actor_id = ? OR actor_name = ?)"), append(args, f.Actor, f.Actor)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "at >= ?"), append(args, auditTS(f.Since))
	}
	if !f.Until.IsZero() {
		where, args = append(where, "at < ?"), append(args, auditTS(f.Until))
	}
	if f.Action != "" {
		where, args = append(where, "action = ?"), append(args, f.Action)
	}
	q := `SELECT ` + auditColumns + ` FROM audit`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += ` ORDER BY at DESC, id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var at string
		if err := rows.Scan(&e.ID, &at, &e.ActorID, &e.ActorName, &e.Project, &e.Action, &e.Resource, &e.Remote,
			&e.Outcome, &e.Status, &e.Detail); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		e.At = jobParseTS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// PurgeAudit removes the entries older than before (the server's --audit-retention) and
// reports how many.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.DB.ExecContext(ctx, `DELETE FROM audit WHERE at < ?`, auditTS(before))
	if err != nil {
		return 0, fmt.Errorf("purge audit: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
