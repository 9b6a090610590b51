package auth

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Sealer encrypts secrets kept at rest (a configuration's stored credentials, entities, jobs'
// secret env values) with AES-256-GCM under one key: the data dir's key file or BERTH_SECRET_KEY,
// never the database. Safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// sealPrefix marks a sealed value's format, so a later key scheme can be told apart.
const sealPrefix = "berth-sealed-v1:"

// SecretKeyEnv is the environment variable that may hold the key (base64 of 32 bytes) instead
// of the data dir's key file.
const SecretKeyEnv = "BERTH_SECRET_KEY"

// LoadKey is the sealer of the key in the environment (SecretKeyEnv, when it is set) or else of
// the key file at path (LoadOrCreateKey). When both exist they must be the same key: values
// sealed with the file's key could not be opened otherwise.
func LoadKey(path string) (*Sealer, error) {
	v, ok := os.LookupEnv(SecretKeyEnv)
	if !ok || strings.TrimSpace(v) == "" {
		return LoadOrCreateKey(path)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil {
		return nil, fmt.Errorf("%s: not base64 (make one with: head -c 32 /dev/urandom | base64): %w", SecretKeyEnv, err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("%s: %d bytes, want 32 (base64 of 32 random bytes: head -c 32 /dev/urandom | base64)", SecretKeyEnv, len(key))
	}
	if file, err := readKeyFile(path); err == nil {
		if !bytes.Equal(file, key) {
			return nil, fmt.Errorf("%s and the key file %s are different keys: values sealed with the file's key could not be opened; keep one (remove the file once %s holds its key)", SecretKeyEnv, path, SecretKeyEnv)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return NewSealer(key)
}

// NewSealer is the sealer of a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret key: %d bytes, want 32", len(key))
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

// LoadOrCreateKey reads the 32-byte key at path, creating it (mode 0600, written beside the
// path and renamed into place) when it does not exist. A key of the wrong size is an error,
// never replaced: that would make every sealed value unreadable. So is a key file others than
// its owner may read or write (mode looser than 0600).
func LoadOrCreateKey(path string) (*Sealer, error) {
	key, err := readKeyFile(path)
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
		if key, err = readKeyFile(path); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("secret key %s: %d bytes, want 32 (restore the original file: values sealed with it cannot be read otherwise)", path, len(key))
	}
	return NewSealer(key)
}

// readKeyFile reads the key file at path, refusing one whose mode lets others than its owner
// read or write it.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read secret key %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read secret key %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret key %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secret key %s: mode %#o is looser than 0600 (others than its owner may read it); run: chmod 600 %s", path, perm, path)
	}
	key, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, fmt.Errorf("read secret key %s: %w", path, err)
	}
	return key, nil
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
