package auth

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealerRoundTripAndKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret.key")
	s, err := LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	sealed, err := s.Seal([]byte(`{"#data":"token-123"}`))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("token-123")) {
		t.Fatal("the sealed value holds the plain text")
	}
	// A second start reads the same key and opens what the first sealed.
	s2, err := LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := s2.Open(sealed)
	if err != nil || string(plain) != `{"#data":"token-123"}` {
		t.Fatalf("open: %q %v", plain, err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := s2.Open(sealed); err == nil {
		t.Fatal("a tampered value opened")
	}
	other, _ := LoadOrCreateKey(filepath.Join(dir, "other.key"))
	if _, err := other.Open(plain); err == nil {
		t.Fatal("a value of an unknown format opened")
	}
	os.WriteFile(p, []byte("short"), 0o600)
	if _, err := LoadOrCreateKey(p); err == nil {
		t.Fatal("a key of the wrong size was accepted")
	}
}

func TestKeyFileLooserThan0600IsRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "secret.key")
	if _, err := LoadOrCreateKey(p); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		os.Chmod(p, mode)
		_, err := LoadOrCreateKey(p)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %#o: %v", mode, err)
		}
	}
	os.Chmod(p, 0o400)
	if _, err := LoadOrCreateKey(p); err != nil {
		t.Errorf("a read-only key (0400) is stricter than 0600: %v", err)
	}
}

func TestKeyFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret.key")
	key := bytes.Repeat([]byte{7}, 32)
	t.Setenv(SecretKeyEnv, base64.StdEncoding.EncodeToString(key))
	s, err := LoadKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("a key from the environment wrote a key file: %v", err)
	}
	sealed, _ := s.Seal([]byte("pw"))
	same, _ := NewSealer(key)
	if plain, err := same.Open(sealed); err != nil || string(plain) != "pw" {
		t.Fatalf("the environment's key did not seal: %q %v", plain, err)
	}

	for _, bad := range []string{base64.StdEncoding.EncodeToString(key[:16]), "not base64!", base64.StdEncoding.EncodeToString(append(key, 1))} {
		t.Setenv(SecretKeyEnv, bad)
		if _, err := LoadKey(p); err == nil || !strings.Contains(err.Error(), SecretKeyEnv) {
			t.Errorf("%q: %v", bad, err)
		}
	}

	// A key file of another key beside the environment's: refused, sealed values would be lost.
	t.Setenv(SecretKeyEnv, "")
	if _, err := LoadKey(p); err != nil {
		t.Fatal(err)
	}
	t.Setenv(SecretKeyEnv, base64.StdEncoding.EncodeToString(key))
	if _, err := LoadKey(p); err == nil || !strings.Contains(err.Error(), "different keys") {
		t.Errorf("two keys: %v", err)
	}
	file, _ := os.ReadFile(p)
	t.Setenv(SecretKeyEnv, base64.StdEncoding.EncodeToString(file))
	if _, err := LoadKey(p); err != nil {
		t.Errorf("the file's own key in the environment: %v", err)
	}
}
