package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// ImageRecord is an image as berth last saw it, and when it was last used. ImageID, Kind,
// Size, Labels and Created are empty when only a use was noted (a container start).
type ImageRecord struct {
	Ref      string
	ImageID  string
	Kind     string
	Size     int64
	Labels   map[string]string
	Created  time.Time
	LastUsed time.Time
}

const imageColumns = `ref, image_id, kind, size, labels, created_at, last_used_at`

// PutImageRecord notes a use of an image: last_used_at becomes r.LastUsed, and the fields r
// carries (a non-empty ImageID, Kind, ...) replace the stored ones; empty ones keep them.
func (s *Store) PutImageRecord(ctx context.Context, r ImageRecord) error {
	labels := ""
	if r.Labels != nil {
		b, err := json.Marshal(r.Labels)
		if err != nil {
			return fmt.Errorf("record image %s: %w", r.Ref, err)
		}
		labels = string(b)
	}
	created := ""
	if !r.Created.IsZero() {
		created = jobTS(r.Created)
	}
	_, err := s.DB.ExecContext(ctx, `INSERT INTO images (`+imageColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (ref) DO UPDATE SET last_used_at = excluded.last_used_at,
			image_id = CASE WHEN excluded.image_id <> '' THEN excluded.image_id ELSE images.image_id END,
			kind = CASE WHEN excluded.kind <> '' THEN excluded.kind ELSE images.kind END,
			size = CASE WHEN excluded.size > 0 THEN excluded.size ELSE images.size END,
			labels = CASE WHEN excluded.labels <> '' THEN excluded.labels ELSE images.labels END,
			created_at = CASE WHEN excluded.created_at <> '' THEN excluded.created_at ELSE images.created_at END`,
		r.Ref, r.ImageID, r.Kind, r.Size, labels, created, jobTS(r.LastUsed))
	if err != nil {
		return fmt.Errorf("record image %s: %w", r.Ref, err)
	}
	return nil
}

// ImageRecords lists every image record, least recently used first.
func (s *Store) ImageRecords(ctx context.Context) ([]ImageRecord, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+imageColumns+` FROM images ORDER BY last_used_at, ref`)
	if err != nil {
		return nil, fmt.Errorf("list image records: %w", err)
	}
	defer rows.Close()
	var out []ImageRecord
	for rows.Next() {
		var r ImageRecord
		var labels, created, used string
		if err := rows.Scan(&r.Ref, &r.ImageID, &r.Kind, &r.Size, &labels, &created, &used); err != nil {
			return nil, fmt.Errorf("list image records: %w", err)
		}
		if labels != "" {
			json.Unmarshal([]byte(labels), &r.Labels) // written by PutImageRecord only
		}
		if created != "" {
			r.Created = jobParseTS(created)
		}
		r.LastUsed = jobParseTS(used)
		out = append(out, r)
	}
	return out, rows.Err()
}

// DeleteImageRecord forgets an image (removed, or gone from the engine); a missing record is
// not an error.
func (s *Store) DeleteImageRecord(ctx context.Context, ref string) error {
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM images WHERE ref = ?`, ref); err != nil {
		return fmt.Errorf("forget image %s: %w", ref, err)
	}
	return nil
}

// ComponentImages are the images registered components run, by component id.
func (s *Store) ComponentImages(ctx context.Context) (map[string]string, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, body FROM components`)
	if err != nil {
		return nil, fmt.Errorf("list component images: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			return nil, fmt.Errorf("list component images: %w", err)
		}
		var c struct {
			Image string `json:"image"`
		}
		if json.Unmarshal([]byte(body), &c) == nil && c.Image != "" {
			out[id] = c.Image
		}
	}
	return out, rows.Err()
}
