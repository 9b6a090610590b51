package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Sealer encrypts the secrets the store keeps (auth.Sealer: AES-256-GCM under a key that is
// never in the database). Safe for concurrent use.
type Sealer interface {
	Seal(plain []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
}

// ErrNoSealer is returned when a secret would be stored without a sealer: the store never keeps
// one in plain text.
var ErrNoSealer = errors.New("store: no secret key is set, so secrets cannot be stored")

// sealedPrefix marks a sealed string value: "sealed:v1:" and the base64 of what Sealer.Seal made.
const sealedPrefix = "sealed:v1:"

// SetSealer sets the sealer of the store's secrets: entities' values and jobs' secret env
// values. Set it once, at wiring, before the store is used.
func (s *Store) SetSealer(x Sealer) { s.sealer = x }

// IsSealed reports whether v is a value SealString made.
func IsSealed(v string) bool { return strings.HasPrefix(v, sealedPrefix) }

// SealString seals a secret for a text column or a JSON string.
func (s *Store) SealString(plain string) (string, error) {
	if s.sealer == nil {
		return "", ErrNoSealer
	}
	b, err := s.sealer.Seal([]byte(plain))
	if err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	return sealedPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// OpenString opens what SealString made. A value that is not sealed is an error: it would be a
// secret the store kept in plain text.
func (s *Store) OpenString(sealed string) (string, error) {
	if !IsSealed(sealed) {
		return "", errors.New("store: the value is not sealed")
	}
	if s.sealer == nil {
		return "", ErrNoSealer
	}
	b, err := base64.StdEncoding.DecodeString(sealed[len(sealedPrefix):])
	if err != nil {
		return "", errors.New("store: sealed value: not base64")
	}
	plain, err := s.sealer.Open(b)
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// SealBlockSecrets is a block's JSON as the store keeps it: each secret env value
// ({"value": …, "secret": true}) sealed. Values already sealed stay as they are, so it is
// idempotent. A block without secret values comes back unchanged and needs no sealer.
func (s *Store) SealBlockSecrets(blockJSON string) (string, error) {
	out, _, err := s.mapBlockSecrets(blockJSON, func(v string) (string, error) {
		if IsSealed(v) {
			return v, nil
		}
		return s.SealString(v)
	})
	return out, err
}

// OpenBlockSecrets is the block's JSON with its secret env values opened, for the job's run.
func (s *Store) OpenBlockSecrets(blockJSON string) (string, error) {
	out, _, err := s.mapBlockSecrets(blockJSON, func(v string) (string, error) {
		if !IsSealed(v) {
			return v, nil // kept before secrets were sealed, and not yet sealed at start-up
		}
		return s.OpenString(v)
	})
	return out, err
}

// mapBlockSecrets applies f to the value of each secret env entry of a block's JSON and says
// whether any changed.
func (s *Store) mapBlockSecrets(blockJSON string, f func(string) (string, error)) (string, bool, error) {
	var b map[string]json.RawMessage
	if err := json.Unmarshal([]byte(blockJSON), &b); err != nil || len(b["env"]) == 0 {
		return blockJSON, false, nil // not a block berth can run anyway: nothing to seal
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(b["env"], &env); err != nil {
		return blockJSON, false, nil
	}
	changed := false
	for k, raw := range env {
		var e map[string]any
		if json.Unmarshal(raw, &e) != nil {
			continue // a plain value: not a secret
		}
		v, isString := e["value"].(string)
		if secret, _ := e["secret"].(bool); !secret || !isString || v == "" {
			continue
		}
		nv, err := f(v)
		if err != nil {
			return "", false, fmt.Errorf("env %s: %w", k, err)
		}
		if nv == v {
			continue
		}
		e["value"] = nv
		if env[k], err = json.Marshal(e); err != nil {
			return "", false, err
		}
		changed = true
	}
	if !changed {
		return blockJSON, false, nil
	}
	var err error
	if b["env"], err = json.Marshal(env); err != nil {
		return "", false, err
	}
	out, err := json.Marshal(b)
	if err != nil {
		return "", false, err
	}
	return string(out), true, nil
}

// SealExisting seals the secrets stored in plain text before they were sealed: jobs' secret
// env values, entities' values, and the "#" values of configurations (every version) and of
// component jobs. It changes nothing the second time (idempotent). When it
// sealed anything, the space the plain values took is zeroed (secure_delete) and the
// write-ahead log truncated, so the plain text is left neither in the database file nor
// beside it.
func (s *Store) SealExisting(ctx context.Context) (int, error) {
	if s.sealer == nil {
		return 0, ErrNoSealer
	}
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("seal stored secrets: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return 0, fmt.Errorf("seal stored secrets: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA secure_delete = OFF`)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("seal stored secrets: %w", err)
	}
	defer tx.Rollback()
	n := 0
	type upd struct{ key, value string }
	var jobs []upd
	rows, err := tx.QueryContext(ctx, `SELECT id, block FROM jobs WHERE block LIKE '%"secret"%'`)
	if err != nil {
		return 0, fmt.Errorf("seal stored secrets: %w", err)
	}
	for rows.Next() {
		var id, block string
		if err := rows.Scan(&id, &block); err != nil {
			rows.Close()
			return 0, fmt.Errorf("seal stored secrets: %w", err)
		}
		out, changed, err := s.mapBlockSecrets(block, func(v string) (string, error) {
			if IsSealed(v) {
				return v, nil
			}
			return s.SealString(v)
		})
		if err != nil {
			rows.Close()
			return 0, fmt.Errorf("seal job %s: %w", id, err)
		}
		if changed {
			jobs = append(jobs, upd{id, out})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("seal stored secrets: %w", err)
	}
	for _, u := range jobs {
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET block = ? WHERE id = ?`, u.value, u.key); err != nil {
			return 0, fmt.Errorf("seal job %s: %w", u.key, err)
		}
		n++
	}
	type entity struct{ project, pkg, name, value string }
	var ents []entity
	rows, err = tx.QueryContext(ctx, `SELECT project, package, name, value FROM entities WHERE value NOT LIKE ?`, sealedPrefix+"%")
	if err != nil {
		return 0, fmt.Errorf("seal stored secrets: %w", err)
	}
	for rows.Next() {
		var e entity
		if err := rows.Scan(&e.project, &e.pkg, &e.name, &e.value); err != nil {
			rows.Close()
			return 0, fmt.Errorf("seal stored secrets: %w", err)
		}
		ents = append(ents, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("seal stored secrets: %w", err)
	}
	for _, e := range ents {
		sealed, err := s.SealString(e.value)
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE entities SET value = ? WHERE project = ? AND package = ? AND name = ?`,
			sealed, e.project, e.pkg, e.name); err != nil {
			return 0, fmt.Errorf("seal entity %s.%s: %w", e.pkg, e.name, err)
		}
		n++
	}
	// "#" values of configurations, their versions, and component jobs' payloads.
	for _, c := range []struct{ table, column string }{{"configs", "body"}, {"config_versions", "body"}, {"jobs", "payload"}} {
		var docs []upd
		rows, err := tx.QueryContext(ctx, `SELECT rowid, `+c.column+` FROM `+c.table+` WHERE `+c.column+` LIKE '%"#%'`)
		if err != nil {
			return 0, fmt.Errorf("seal stored secrets: %w", err)
		}
		for rows.Next() {
			var id, doc string
			if err := rows.Scan(&id, &doc); err != nil {
				rows.Close()
				return 0, fmt.Errorf("seal stored secrets: %w", err)
			}
			out, changed, err := mapHashParams(doc, func(v string) (string, error) {
				if IsSealed(v) {
					return v, nil
				}
				return s.SealString(v)
			})
			if err != nil {
				rows.Close()
				return 0, fmt.Errorf("seal # values in %s: %w", c.table, err)
			}
			if changed {
				docs = append(docs, upd{id, out})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("seal stored secrets: %w", err)
		}
		for _, u := range docs {
			if _, err := tx.ExecContext(ctx, `UPDATE `+c.table+` SET `+c.column+` = ? WHERE rowid = ?`, u.value, u.key); err != nil {
				return 0, fmt.Errorf("seal # values in %s: %w", c.table, err)
			}
			n++
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("seal stored secrets: %w", err)
	}
	if n > 0 {
		// The old pages of the plain values may still be in the log: copy it back and empty it.
		if _, err := conn.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			return n, fmt.Errorf("seal stored secrets: checkpoint: %w", err)
		}
	}
	return n, nil
}
