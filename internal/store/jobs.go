package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// JobRow is a job as stored. The job package owns its meaning; the store only keeps it.
// Block, Files and Timings are JSON documents.
type JobRow struct {
	ID            string
	Name          string
	Owner         string
	State         string
	Reason        string
	Message       string
	Block         string
	Files         string
	BaseDir       string
	SpecHash      string
	Image         string
	ImageCacheHit bool
	ExitCode      *int
	ContainerID   string
	Timings       string
	CreatedAt     time.Time
	StartedAt     *time.Time
	FinishedAt    *time.Time
	OutputDir     string
	Kind          string // block (default) | component
	Payload       string // what a non-block job runs, as JSON
	Attempts      string // the job's attempts, as a JSON array
	Project       string // the owning project
}

const jobColumns = `id, name, owner, state, reason, message, block, files, base_dir, spec_hash, image,
	image_cache_hit, exit_code, container_id, timings, created_at, started_at, finished_at, output_dir, kind, payload, attempts, project`

// InsertJob stores a new job.
func (s *Store) InsertJob(ctx context.Context, j JobRow) error {
	_, err := s.DB.ExecContext(ctx, `INSERT INTO jobs (`+jobColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.ID, j.Name, j.Owner, j.State, j.Reason, j.Message, j.Block, jobOrJSON(j.Files, "{}"), j.BaseDir, j.SpecHash,
		j.Image, j.ImageCacheHit, j.ExitCode, j.ContainerID, jobOrJSON(j.Timings, "[]"), jobTS(j.CreatedAt),
		jobTSPtr(j.StartedAt), jobTSPtr(j.FinishedAt), j.OutputDir, jobOrJSON(j.Kind, "block"), jobOrJSON(j.Payload, "{}"), jobOrJSON(j.Attempts, "[]"),
		projectOr(j.Project))
	if err != nil {
		return fmt.Errorf("insert job %s: %w", j.ID, err)
	}
	return nil
}

// UpdateJob writes every mutable column of a job.
func (s *Store) UpdateJob(ctx context.Context, j JobRow) error {
	res, err := s.DB.ExecContext(ctx, `UPDATE jobs SET state = ?, reason = ?, message = ?, spec_hash = ?, image = ?,
		image_cache_hit = ?, exit_code = ?, container_id = ?, timings = ?, started_at = ?, finished_at = ?, output_dir = ?,
		attempts = ? WHERE id = ?`,
		j.State, j.Reason, j.Message, j.SpecHash, j.Image, j.ImageCacheHit, j.ExitCode, j.ContainerID,
		jobOrJSON(j.Timings, "[]"), jobTSPtr(j.StartedAt), jobTSPtr(j.FinishedAt), j.OutputDir, jobOrJSON(j.Attempts, "[]"), j.ID)
	if err != nil {
		return fmt.Errorf("update job %s: %w", j.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("update job %s: %w", j.ID, ErrNotFound)
	}
	return nil
}

// TransitionJob moves a job to state `to` only if it is in one of `from`, and reports whether
// it did. It is how two parties (a worker claiming a job, a user cancelling it) never both win.
func (s *Store) TransitionJob(ctx context.Context, id string, from []string, to, reason, message string, finished *time.Time) (bool, error) {
	if len(from) == 0 {
		return false, errors.New("transition job: no source states")
	}
	args := []any{to, reason, message, jobTSPtr(finished), id}
	for _, f := range from {
		args = append(args, f)
	}
	q := `UPDATE jobs SET state = ?, reason = ?, message = ?, finished_at = COALESCE(?, finished_at)
		WHERE id = ? AND state IN (?` + strings.Repeat(", ?", len(from)-1) + `)`
	res, err := s.DB.ExecContext(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("transition job %s to %s: %w", id, to, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("transition job %s to %s: %w", id, to, err)
	}
	return n == 1, nil
}

// GetJob returns one job, or ErrNotFound.
func (s *Store) GetJob(ctx context.Context, id string) (JobRow, error) {
	row := s.DB.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id)
	j, err := scanJob(row)
	if errors.Is(err, sql.ErrNoRows) {
		return j, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return j, fmt.Errorf("get job %s: %w", id, err)
	}
	return j, nil
}

// JobFilter selects jobs: any of States, and Owner, Project and Kind when set; Text, when set,
// keeps jobs whose id, name or owner contains it (case-insensitive); Offset skips that many of
// the newest; at most Limit (0: all).
type JobFilter struct {
	States         []string
	Owner, Project string
	Kind           string
	Text           string
	Offset, Limit  int
}

// ListJobs returns the jobs f selects, newest first.
func (s *Store) ListJobs(ctx context.Context, f JobFilter) ([]JobRow, error) {
	states, owner, limit := f.States, f.Owner, f.Limit
	q := `SELECT ` + jobColumns + ` FROM jobs WHERE 1 = 1`
	var args []any
	if f.Project != "" {
		q += ` AND project = ?`
		args = append(args, f.Project)
	}
	if len(states) > 0 {
		q += ` AND state IN (?` + strings.Repeat(", ?", len(states)-1) + `)`
		for _, st := range states {
			args = append(args, st)
		}
	}
	if owner != "" {
		q += ` AND owner = ?`
		args = append(args, owner)
	}
	if f.Kind != "" {
		q += ` AND kind = ?`
		args = append(args, f.Kind)
	}
	if f.Text != "" {
		like := "%" + likeEscaper.Replace(strings.ToLower(f.Text)) + "%"
		q += ` AND (LOWER(id) LIKE ? ESCAPE '\' OR LOWER(name) LIKE ? ESCAPE '\' OR LOWER(owner) LIKE ? ESCAPE '\')`
		args = append(args, like, like, like)
	}
	q += ` ORDER BY created_at DESC, id DESC`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
		if f.Offset > 0 {
			q += ` OFFSET ?`
			args = append(args, f.Offset)
		}
	}
	rows, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var out []JobRow
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// likeEscaper makes a text match itself literally in a LIKE pattern (ESCAPE '\').
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// CountJobsByState returns how many jobs are in each state.
func (s *Store) CountJobsByState(ctx context.Context) (map[string]int, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT state, COUNT(*) FROM jobs GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count jobs: %w", err)
		}
		out[st] = n
	}
	return out, rows.Err()
}

type jobScanner interface{ Scan(dest ...any) error }

func scanJob(r jobScanner) (JobRow, error) {
	var j JobRow
	var created string
	var started, finished sql.NullString
	var exit sql.NullInt64
	err := r.Scan(&j.ID, &j.Name, &j.Owner, &j.State, &j.Reason, &j.Message, &j.Block, &j.Files, &j.BaseDir,
		&j.SpecHash, &j.Image, &j.ImageCacheHit, &exit, &j.ContainerID, &j.Timings, &created, &started, &finished, &j.OutputDir,
		&j.Kind, &j.Payload, &j.Attempts, &j.Project)
	if err != nil {
		return j, err
	}
	if exit.Valid {
		c := int(exit.Int64)
		j.ExitCode = &c
	}
	j.CreatedAt = jobParseTS(created)
	j.StartedAt = jobParseTSPtr(started)
	j.FinishedAt = jobParseTSPtr(finished)
	return j, nil
}

func jobOrJSON(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func jobTS(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func jobTSPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return jobTS(*t)
}

func jobParseTS(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func jobParseTSPtr(s sql.NullString) *time.Time {
	if !s.Valid || s.String == "" {
		return nil
	}
	t := jobParseTS(s.String)
	return &t
}

// ProjectUsedImage reports whether a job of project ran in (or tried to build) the generated
// image whose hash is given: a job's spec_hash names it. An image's build log is readable by
// the projects whose jobs used it.
func (s *Store) ProjectUsedImage(ctx context.Context, project, hash string) (bool, error) {
	if hash == "" {
		return false, nil
	}
	var one int
	err := s.DB.QueryRowContext(ctx, `SELECT 1 FROM jobs WHERE project = ? AND spec_hash = ? LIMIT 1`, project, hash).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("jobs of project %s with image %s: %w", project, hash, err)
	}
	return true, nil
}
