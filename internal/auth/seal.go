package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Sealer encrypts secrets kept at rest (a configuration's stored credentials) with AES-256-GCM
// under a key of the data dir's own. Safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// sealPrefix marks a sealed value's format, so a later key scheme can be told apart.
const sealPrefix = "berth-sealed-v1:"

// LoadOrCreateKey reads the 32-byte key at path, creating it (mode 0600, written beside the
// path and renamed into place) when it does not exist. A key of the wrong size is an error,
// never replaced: that would make every sealed value unreadable.
func LoadOrCreateKey(path string) (*Sealer, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
		if err != nil {
			return nil, fmt.Errorf("create secret key %s: %w", path, err)
		}
		defer os.Remove(tmp.Name())
		if _, err := tmp.Write(key); err != nil {
			tmp.Close()
			return nil, err
		}
		if err := tmp.Close(); err != nil {
			return nil, err
		}
		if err := os.Link(tmp.Name(), path); err != nil {
			if !errors.Is(err, os.ErrExist) {
				return nil, fmt.Errorf("create secret key %s: %w", path, err)
			}
		}
		// Another start may have won the race: whatever is at path now is the key.
		if key, err = os.ReadFile(path); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("read secret key %s: %w", path, err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("secret key %s: %d bytes, want 32 (restore the original file: values sealed with it cannot be read otherwise)", path, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain.
func (s *Sealer) Seal(plain []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append([]byte(sealPrefix), nonce...)
	return s.aead.Seal(out, nonce, plain, []byte(sealPrefix)), nil
}

// Open decrypts what Seal made.
func (s *Sealer) Open(sealed []byte) ([]byte, error) {
	if len(sealed) < len(sealPrefix) || string(sealed[:len(sealPrefix)]) != sealPrefix {
		return nil, errors.New("sealed value: unknown format")
	}
	rest := sealed[len(sealPrefix):]
	n := s.aead.NonceSize()
	if len(rest) < n {
		return nil, errors.New("sealed value: too short")
	}
	plain, err := s.aead.Open(nil, rest[:n], rest[n:], []byte(sealPrefix))
	if err != nil {
		return nil, errors.New("sealed value: cannot be opened with this data dir's key")
	}
	return plain, nil
}
