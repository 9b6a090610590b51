package store

import (
	"encoding/json"
	"fmt"
	"strings"
)

// SealHashParams is a JSON document (a configuration's body, a sync action's parameters) as the
// store keeps it: the string value of every object key starting with "#" sealed, as Keboola
// encrypts "#password". Values already sealed stay as they are, so it is idempotent. A
// document with no such value comes back unchanged and needs no sealer.
func (s *Store) SealHashParams(doc string) (string, error) {
	out, _, err := mapHashParams(doc, func(v string) (string, error) {
		if IsSealed(v) {
			return v, nil
		}
		return s.SealString(v)
	})
	return out, err
}

// OpenHashValues opens, in a decoded JSON value, every sealed string under a "#" key, in
// place, and returns the plain values (for the caller to hide from output).
func (s *Store) OpenHashValues(v any) ([]string, error) {
	var plain []string
	err := walkHash(v, false, func(x string) (string, error) {
		if !IsSealed(x) {
			return x, nil
		}
		p, err := s.OpenString(x)
		if err == nil {
			plain = append(plain, p)
		}
		return p, err
	})
	return plain, err
}

func mapHashParams(doc string, f func(string) (string, error)) (string, bool, error) {
	if !strings.Contains(doc, `"#`) {
		return doc, false, nil
	}
	var v any
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", false, fmt.Errorf("seal # values: %w", err)
	}
	changed := false
	err := walkHash(v, false, func(x string) (string, error) {
		y, err := f(x)
		if y != x {
			changed = true
		}
		return y, err
	})
	if err != nil || !changed {
		return doc, false, err
	}
	b, err := json.Marshal(v)
	return string(b), true, err
}

// walkHash applies f to each string under a "#" key (at any depth: a "#" object's strings are
// all secret), replacing it in place.
func walkHash(v any, secret bool, f func(string) (string, error)) error {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			sec := secret || strings.HasPrefix(k, "#")
			if s, ok := e.(string); ok && sec {
				y, err := f(s)
				if err != nil {
					return fmt.Errorf("%s: %w", k, err)
				}
				x[k] = y
				continue
			}
			if err := walkHash(e, sec, f); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if s, ok := e.(string); ok && secret {
				y, err := f(s)
				if err != nil {
					return err
				}
				x[i] = y
				continue
			}
			if err := walkHash(e, secret, f); err != nil {
				return err
			}
		}
	}
	return nil
}
