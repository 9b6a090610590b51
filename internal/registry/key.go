package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Files in the key dir.
const (
	KeyFile  = "registry-token.key"
	CertFile = "registry-token.crt"
)

// certLifetime is how long the self-signed certificate is valid; it is made again from the
// same key when it has less than certRenew left (the registry's rootcertbundle must then be
// the new file: the key, and so the kid, stay the same).
const (
	certLifetime = 10 * 365 * 24 * time.Hour
	certRenew    = 30 * 24 * time.Hour
)

// Signer signs tokens with berth's registry key (ECDSA P-256, ES256).
type Signer struct {
	key *ecdsa.PrivateKey
	// Cert is the self-signed certificate of the key; CertPath its file.
	Cert     *x509.Certificate
	CertPath string
	// KeyID is the key's libtrust fingerprint, the JWT's kid.
	KeyID string
}

// LoadOrCreateSigner reads the key in dir (creating it, mode 0600, when missing; refusing a
// file others may read) and its certificate (made again when missing, of another key, or
// near its end).
func LoadOrCreateSigner(dir string) (*Signer, error) {
	if dir == "" {
		return nil, errors.New("registry: no key dir")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("registry key dir: %w", err)
	}
	keyPath, certPath := filepath.Join(dir, KeyFile), filepath.Join(dir, CertFile)
	key, err := readKey(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		if key, err = createKey(keyPath); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	cert, err := readCert(certPath)
	if err != nil || !key.PublicKey.Equal(cert.PublicKey) || time.Until(cert.NotAfter) < certRenew {
		if cert, err = createCert(key, certPath); err != nil {
			return nil, err
		}
	}
	kid, err := KeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	return &Signer{key: key, Cert: cert, CertPath: certPath, KeyID: kid}, nil
}

// Sign signs c as ES256 with the kid and x5c headers a registry looks the key up by: x5c (the
// certificate, checked against the rootcertbundle) first, kid (looked up among the bundle's
// keys) by registries that read only that.
func (s *Signer) Sign(c Claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = s.KeyID
	t.Header["x5c"] = []string{base64.StdEncoding.EncodeToString(s.Cert.Raw)}
	signed, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign registry token: %w", err)
	}
	return signed, nil
}

// PublicKey is the key tokens are verified with.
func (s *Signer) PublicKey() *ecdsa.PublicKey { return &s.key.PublicKey }

// KeyID is a public key's libtrust fingerprint, which distribution uses as the kid of a key
// in its rootcertbundle (libtrust keyIDFromCryptoKey): the SHA-256 of the key's PKIX DER,
// its first 240 bits in base32, in twelve groups of four joined by ':'.
func KeyID(pub any) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("registry key id: %w", err)
	}
	sum := sha256.Sum256(der)
	s := strings.TrimRight(base32.StdEncoding.EncodeToString(sum[:30]), "=")
	var groups []string
	for i := 0; i < len(s); i += 4 {
		groups = append(groups, s[i:min(i+4, len(s))])
	}
	return strings.Join(groups, ":"), nil
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read registry key %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read registry key %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("registry key %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("registry key %s: mode %#o is looser than 0600 (others than its owner may read it); run: chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("read registry key %s: %w", path, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "EC PRIVATE KEY" {
		return nil, fmt.Errorf("registry key %s: not a PEM \"EC PRIVATE KEY\"", path)
	}
	key, err := x509.ParseECPrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("registry key %s: %w", path, err)
	}
	if key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("registry key %s: curve %s, want P-256 (ES256)", path, key.Curve.Params().Name)
	}
	return key, nil
}

func createKey(path string) (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create registry key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("create registry key: %w", err)
	}
	if err := writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("create registry key %s: %w", path, err)
	}
	// Another start may have won the race: whatever is at path now is the key.
	return readKey(path)
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("registry certificate %s: not a PEM certificate", path)
	}
	return x509.ParseCertificate(blk.Bytes)
}

func createCert(key *ecdsa.PrivateKey, path string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "berth registry token issuer"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create registry certificate: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".crt-*")
	if err != nil {
		return nil, fmt.Errorf("create registry certificate %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if err := errors.Join(werr, tmp.Chmod(0o644), tmp.Close()); err != nil {
		return nil, fmt.Errorf("create registry certificate %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("create registry certificate %s: %w", path, err)
	}
	return x509.ParseCertificate(der)
}

// writeNew writes b to path only if nothing is there: through a temporary file linked into
// place, so a reader never sees half a key.
func writeNew(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(b)
	if err := errors.Join(werr, tmp.Chmod(mode), tmp.Close()); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}
