package auth

import (
	"bytes"
	"os"
	"path/filepath"
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
