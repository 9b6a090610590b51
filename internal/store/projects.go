package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// DefaultProject owns everything made without naming a project: single-team use needs no
// set-up.
const DefaultProject = "default"

// Project is a team's space: it owns jobs, configurations, storage, services, entities and
// tokens. Zero quotas mean no limit.
type Project struct {
	ID                string    `json:"id"`
	CreatedAt         time.Time `json:"created_at"`
	MaxConcurrentJobs int       `json:"max_concurrent_jobs"`
	MaxStorageBytes   int64     `json:"max_storage_bytes"`
}

var projectIDRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidProjectID reports whether id may name a project: lowercase letters, digits and '-',
// starting with a letter or digit, at most 63 characters.
func ValidProjectID(id string) error {
	if !projectIDRe.MatchString(id) {
		return fmt.Errorf("project %q: use 1-63 lowercase letters, digits or '-', starting with a letter or digit", id)
	}
	return nil
}

const projectColumns = `id, created_at, max_concurrent_jobs, max_storage_bytes`

// CreateProject stores a new project; a taken id is ErrConflict.
func (s *Store) CreateProject(ctx context.Context, p Project) error {
	if err := ValidProjectID(p.ID); err != nil {
		return err
	}
	if p.MaxConcurrentJobs < 0 || p.MaxStorageBytes < 0 {
		return errors.New("project quotas cannot be negative")
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Now()
	}
	_, err := s.DB.ExecContext(ctx, `INSERT INTO projects (`+projectColumns+`) VALUES (?, ?, ?, ?)`,
		p.ID, jobTS(p.CreatedAt), p.MaxConcurrentJobs, p.MaxStorageBytes)
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "unique") || strings.Contains(strings.ToLower(err.Error()), "primary key") {
			return fmt.Errorf("project %q: %w", p.ID, ErrConflict)
		}
		return fmt.Errorf("create project: %w", err)
	}
	return nil
}

// GetProject returns a project.
func (s *Store) GetProject(ctx context.Context, id string) (Project, error) {
	p, err := scanProject(s.DB.QueryRowContext(ctx, `SELECT `+projectColumns+` FROM projects WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("project %q: %w", id, ErrNotFound)
	}
	return p, err
}

// ListProjects returns every project by id.
func (s *Store) ListProjects(ctx context.Context) ([]Project, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+projectColumns+` FROM projects ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	defer rows.Close()
	var out []Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// SetProjectQuotas changes a project's quotas (nil: unchanged).
func (s *Store) SetProjectQuotas(ctx context.Context, id string, maxJobs *int, maxBytes *int64) error {
	if (maxJobs != nil && *maxJobs < 0) || (maxBytes != nil && *maxBytes < 0) {
		return errors.New("project quotas cannot be negative")
	}
	res, err := s.DB.ExecContext(ctx, `UPDATE projects SET
		max_concurrent_jobs = COALESCE(?, max_concurrent_jobs),
		max_storage_bytes = COALESCE(?, max_storage_bytes) WHERE id = ?`, maxJobs, maxBytes, id)
	if err != nil {
		return fmt.Errorf("set project quotas: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("project %q: %w", id, ErrNotFound)
	}
	return nil
}

func scanProject(r jobScanner) (Project, error) {
	var p Project
	var created string
	if err := r.Scan(&p.ID, &created, &p.MaxConcurrentJobs, &p.MaxStorageBytes); err != nil {
		return p, err
	}
	p.CreatedAt = jobParseTS(created)
	return p, nil
}
