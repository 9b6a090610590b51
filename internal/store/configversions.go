package store

import (
	"context"
	"fmt"
	"time"
)

// ConfigVersion is one saved version of a configuration (its body as stored: "#" values sealed).
type ConfigVersion struct {
	Version   int
	Body      string
	CreatedAt time.Time
}

// ListConfigVersions returns a configuration's saved versions, newest first.
func (s *Store) ListConfigVersions(ctx context.Context, configID string) ([]ConfigVersion, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT version, body, created_at FROM config_versions WHERE config_id = ? ORDER BY version DESC`, configID)
	if err != nil {
		return nil, fmt.Errorf("list versions of config %s: %w", configID, err)
	}
	defer rows.Close()
	var out []ConfigVersion
	for rows.Next() {
		var v ConfigVersion
		var created string
		if err := rows.Scan(&v.Version, &v.Body, &created); err != nil {
			return nil, fmt.Errorf("list versions of config %s: %w", configID, err)
		}
		v.CreatedAt = jobParseTS(created)
		out = append(out, v)
	}
	return out, rows.Err()
}
