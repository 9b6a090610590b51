package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ServiceRow is a stored service.
type ServiceRow struct {
	Name, Package      string
	Project            string // the owning project; fixed when the service is first created
	Port               int
	HealthPath         string
	ContainerJSON      string
	ImageRef           string
	ImageState         string
	ImageReason        string
	ImageChangedAt     time.Time
	ContainerState     string
	ContainerID        string
	ContainerReason    string
	ContainerChangedAt time.Time
	CreatedAt          time.Time
}

// ServiceEvent is one state transition.
type ServiceEvent struct {
	Kind   string    `json:"kind"` // image | container
	State  string    `json:"state"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

const serviceColumns = `name, package, port, health_path, container_json, image_ref, image_state, image_reason,
	image_changed_at, container_state, container_id, container_reason, container_changed_at, created_at, project`

// PutService creates or replaces a service definition. A service's project and package are
// fixed when it is first stored: replacing one of another project or package is ErrConflict
// and changes nothing.
func (s *Store) PutService(ctx context.Context, r ServiceRow) error {
	res, err := s.DB.ExecContext(ctx, `INSERT INTO services (`+serviceColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET port = excluded.port, health_path = excluded.health_path,
		container_json = excluded.container_json, image_ref = excluded.image_ref, image_state = excluded.image_state,
		image_reason = excluded.image_reason, image_changed_at = excluded.image_changed_at
		WHERE services.project = excluded.project AND services.package = excluded.package`,
		r.Name, r.Package, r.Port, r.HealthPath, r.ContainerJSON, r.ImageRef, r.ImageState, r.ImageReason,
		jobTS(r.ImageChangedAt), r.ContainerState, r.ContainerID, r.ContainerReason, jobTS(r.ContainerChangedAt), jobTS(r.CreatedAt), projectOr(r.Project))
	if err != nil {
		return fmt.Errorf("save service %s: %w", r.Name, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("save service %s: it belongs to another project or package: %w", r.Name, ErrConflict)
	}
	return nil
}

// GetService returns a service.
func (s *Store) GetService(ctx context.Context, name string) (ServiceRow, error) {
	r, err := scanService(s.DB.QueryRowContext(ctx, `SELECT `+serviceColumns+` FROM services WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("service %s: %w", name, ErrNotFound)
	}
	return r, err
}

// ListServices returns every service.
func (s *Store) ListServices(ctx context.Context) ([]ServiceRow, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+serviceColumns+` FROM services ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ServiceRow
	for rows.Next() {
		r, err := scanService(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func scanService(r jobScanner) (ServiceRow, error) {
	var s ServiceRow
	var ic, cc, cr string
	err := r.Scan(&s.Name, &s.Package, &s.Port, &s.HealthPath, &s.ContainerJSON, &s.ImageRef, &s.ImageState, &s.ImageReason,
		&ic, &s.ContainerState, &s.ContainerID, &s.ContainerReason, &cc, &cr, &s.Project)
	s.ImageChangedAt, s.ContainerChangedAt, s.CreatedAt = jobParseTS(ic), jobParseTS(cc), jobParseTS(cr)
	return s, err
}

// SetImageState records an image state transition.
func (s *Store) SetImageState(ctx context.Context, name, state, ref, reason string) error {
	now := time.Now().UTC()
	if _, err := s.DB.ExecContext(ctx, `UPDATE services SET image_state = ?, image_ref = CASE WHEN ? = '' THEN image_ref ELSE ? END,
		image_reason = ?, image_changed_at = ? WHERE name = ?`, state, ref, ref, reason, jobTS(now), name); err != nil {
		return err
	}
	return s.addServiceEvent(ctx, name, "image", state, reason, now)
}

// SetContainerState records a container state transition.
func (s *Store) SetContainerState(ctx context.Context, name, state, id, reason string) error {
	now := time.Now().UTC()
	if _, err := s.DB.ExecContext(ctx, `UPDATE services SET container_state = ?, container_id = ?, container_reason = ?,
		container_changed_at = ? WHERE name = ?`, state, id, reason, jobTS(now), name); err != nil {
		return err
	}
	return s.addServiceEvent(ctx, name, "container", state, reason, now)
}

func (s *Store) addServiceEvent(ctx context.Context, name, kind, state, reason string, at time.Time) error {
	_, err := s.DB.ExecContext(ctx, `INSERT INTO service_events (name, kind, state, reason, at) VALUES (?, ?, ?, ?, ?)`,
		name, kind, state, reason, jobTS(at))
	return err
}

// ServiceEvents returns a service's transitions, oldest first.
func (s *Store) ServiceEvents(ctx context.Context, name string) ([]ServiceEvent, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT kind, state, reason, at FROM service_events WHERE name = ? ORDER BY at, rowid`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ServiceEvent
	for rows.Next() {
		var e ServiceEvent
		var at string
		rows.Scan(&e.Kind, &e.State, &e.Reason, &at)
		e.At = jobParseTS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// PutEntity stores an entity (a connection or secret, as JSON) owned by a project's package.
func (s *Store) PutEntity(ctx context.Context, project, pkg, name, value string) error {
	sealed, err := s.SealString(value)
	if err != nil {
		return fmt.Errorf("store entity %s.%s: %w", pkg, name, err)
	}
	_, err = s.DB.ExecContext(ctx, `INSERT INTO entities (project, package, name, value) VALUES (?, ?, ?, ?)
		ON CONFLICT (project, package, name) DO UPDATE SET value = excluded.value`, projectOr(project), pkg, name, sealed)
	return err
}

// GetEntity returns an entity's JSON, looked up only in the project given.
func (s *Store) GetEntity(ctx context.Context, project, pkg, name string) (string, error) {
	var v string
	err := s.DB.QueryRowContext(ctx, `SELECT value FROM entities WHERE project = ? AND package = ? AND name = ?`,
		projectOr(project), pkg, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("package %s has no entity %s: %w", pkg, name, ErrNotFound)
	}
	if err != nil {
		return "", err
	}
	if !IsSealed(v) {
		return v, nil // stored before entities were sealed; sealed at the next start (SealExisting)
	}
	plain, err := s.OpenString(v)
	if err != nil {
		return "", fmt.Errorf("entity %s.%s: %w", pkg, name, err)
	}
	return plain, nil
}

// projectOr is the project stored for p: the default project when none is named.
func projectOr(p string) string {
	if p == "" {
		return DefaultProject
	}
	return p
}
