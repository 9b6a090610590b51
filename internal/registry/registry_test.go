package registry

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/berthproject/berth/internal/auth"
)

func TestParseScope(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Access
		err  bool
	}{
		// The scope grammar of distribution's docs/spec/auth/scope.md.
		{in: "repository:p1/app:pull", want: Access{Type: "repository", Name: "p1/app", Actions: []string{"pull"}}},
		{in: "repository:p1/app:pull,push", want: Access{Type: "repository", Name: "p1/app", Actions: []string{"pull", "push"}}},
		{in: "repository:p1/a/b.c_d-e:push,pull,push", want: Access{Type: "repository", Name: "p1/a/b.c_d-e", Actions: []string{"push", "pull"}}},
		{in: "repository(plugin):p1/x:pull", want: Access{Type: "repository", Class: "plugin", Name: "p1/x", Actions: []string{"pull"}}},
		{in: "registry:catalog:*", want: Access{Type: "registry", Name: "catalog", Actions: []string{"*"}}},
		{in: "repository:app:pull", want: Access{Type: "repository", Name: "app", Actions: []string{"pull"}}},
		{in: "repository:P1/app:pull", err: true},
		{in: "repository:p1/app", err: true},
		{in: "repository:p1/app:", err: true},
		{in: "repository::pull", err: true},
		{in: "repository:p1//app:pull", err: true},
		{in: "repository:../x:pull", err: true},
		{in: "Repository:p1/app:pull", err: true},
		{in: "nonsense", err: true},
	} {
		got, err := ParseScope(c.in)
		if c.err {
			var se *ScopeError
			if !errors.As(err, &se) {
				t.Errorf("ParseScope(%q) = %+v, %v; want a *ScopeError", c.in, got, err)
			}
			continue
		}
		if err != nil || got.Type != c.want.Type || got.Class != c.want.Class || got.Name != c.want.Name || !slices.Equal(got.Actions, c.want.Actions) {
			t.Errorf("ParseScope(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"repository:p1/app:pull,push", "registry:catalog:*", "a:b:c:d", ":::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseScope(s)
		if err != nil {
			return
		}
		if a.Type == "repository" && (strings.Contains(a.Name, ":") || strings.Contains(a.Name, "..")) {
			t.Fatalf("ParseScope(%q) let through repository name %q", s, a.Name)
		}
		if len(a.Actions) == 0 {
			t.Fatalf("ParseScope(%q) has no actions", s)
		}
	})
}

// TestGrant: pull to read-only and above, push to member and above, in the token's own
// project; anything to an admin; nothing in another project, nor to a scoped token.
func TestGrant(t *testing.T) {
	pr := func(role, project, scope string) auth.Principal {
		return auth.Principal{Name: "x", Role: role, Project: project, Scope: scope}
	}
	all := []string{"pull", "push", "delete"}
	for _, c := range []struct {
		name string
		p    auth.Principal
		repo string
		want []string
	}{
		{"read-only pulls its own", pr(auth.RoleReadOnly, "p1", ""), "p1/app", []string{"pull"}},
		{"member pulls and pushes its own", pr(auth.RoleMember, "p1", ""), "p1/app", []string{"pull", "push"}},
		{"project-admin pulls and pushes its own", pr(auth.RoleProjectAdmin, "p1", ""), "p1/app", []string{"pull", "push"}},
		{"member: nothing in another project", pr(auth.RoleMember, "p2", ""), "p1/app", []string{}},
		{"project-admin: nothing in another project", pr(auth.RoleProjectAdmin, "p2", ""), "p1/app", []string{}},
		{"member: nothing outside any project", pr(auth.RoleMember, "p1", ""), "app", []string{}},
		{"member: not a project named like a prefix", pr(auth.RoleMember, "p1", ""), "p1x/app", []string{}},
		{"admin: anything", pr(auth.RoleAdmin, "default", ""), "p1/app", all},
		{"admin: outside any project too", pr(auth.RoleAdmin, "default", ""), "app", all},
		{"service-scoped token: nothing", pr(auth.RoleMember, "p1", "service:web"), "p1/app", []string{}},
		{"bucket-scoped token: nothing", pr(auth.RoleMember, "p1", "bucket:in.c-a:write"), "p1/app", []string{}},
	} {
		g, _ := Grant(c.p, Access{Type: "repository", Name: c.repo, Actions: all})
		if !slices.Equal(g.Actions, c.want) {
			t.Errorf("%s: granted %v on %s, want %v", c.name, g.Actions, c.repo, c.want)
		}
	}
	if g, _ := Grant(pr(auth.RoleProjectAdmin, "p1", ""), Access{Type: "registry", Name: "catalog", Actions: []string{"*"}}); len(g.Actions) != 0 {
		t.Errorf("project-admin granted the catalog: %v", g.Actions)
	}
	if g, _ := Grant(pr(auth.RoleAdmin, "default", ""), Access{Type: "registry", Name: "catalog", Actions: []string{"*"}}); !slices.Equal(g.Actions, []string{"*"}) {
		t.Errorf("admin not granted the catalog: %v", g.Actions)
	}
}

// TestIssueToken: the JWT carries what distribution's token.ClaimSet and Header read, is
// signed by the key of the certificate, and lasts the configured minutes.
func TestIssueToken(t *testing.T) {
	dir := t.TempDir()
	iss, err := New(DefaultConfig("reg.test", dir))
	if err != nil {
		t.Fatal(err)
	}
	p := auth.Principal{TokenID: "tok_1", Name: "ann", Role: auth.RoleMember, Project: "p1"}
	tok, err := iss.Issue(p, []string{"repository:p1/app:pull,push repository:p2/db:pull", "repository:p1/app:pull"})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Token == "" || tok.Token != tok.AccessToken || tok.ExpiresIn != 300 || tok.IssuedAt.IsZero() {
		t.Fatalf("token answer: %+v", tok)
	}
	var c Claims
	parsed, err := jwt.ParseWithClaims(tok.Token, &c, func(tk *jwt.Token) (any, error) {
		// As the registry does: the leaf of x5c, which must be the bundle's certificate.
		x5c, _ := tk.Header["x5c"].([]any)
		if len(x5c) != 1 {
			t.Fatalf("x5c header: %v", tk.Header["x5c"])
		}
		der, err := base64.StdEncoding.DecodeString(x5c[0].(string))
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		bundle, _ := readCert(iss.CertPath())
		pool.AddCert(bundle)
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Fatalf("x5c does not verify against the certificate file: %v", err)
		}
		return cert.PublicKey, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer("berth"), jwt.WithAudience("reg.test"))
	if err != nil || !parsed.Valid {
		t.Fatalf("parse: %v", err)
	}
	if parsed.Header["typ"] != "JWT" || parsed.Header["kid"] != iss.signer.KeyID {
		t.Errorf("header: %v", parsed.Header)
	}
	if !regexp.MustCompile(`^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$`).MatchString(iss.signer.KeyID) {
		t.Errorf("kid %q is not a libtrust fingerprint", iss.signer.KeyID)
	}
	if c.Subject != "ann" || c.ID == "" || c.NotBefore != c.IssuedAt || c.ExpiresAt-c.IssuedAt != 300 {
		t.Errorf("claims: %+v", c)
	}
	if len(c.Access) != 1 || c.Access[0].Name != "p1/app" || !slices.Equal(c.Access[0].Actions, []string{"pull", "push"}) {
		t.Errorf("access: %+v", c.Access)
	}
	if len(tok.Refused) != 1 || tok.Refused[0].String() != "repository:p2/db:pull" {
		t.Errorf("refused: %+v", tok.Refused)
	}
	// No scope (docker login): an empty access list, never null.
	login, err := iss.Issue(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(login.Token, ".")[1])
	if !strings.Contains(string(payload), `"access":[]`) {
		t.Errorf("login token's claims: %s", payload)
	}
	if _, err := iss.Issue(p, []string{"repository:bad name:pull"}); err == nil {
		t.Error("a malformed scope was accepted")
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreateSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 0600", fi.Mode(), err)
	}
	b, err := LoadOrCreateSigner(dir)
	if err != nil || b.KeyID != a.KeyID || !b.Cert.Equal(a.Cert) {
		t.Fatalf("a second load made another key or certificate: %v", err)
	}
	// A lost certificate is made again from the same key.
	os.Remove(filepath.Join(dir, CertFile))
	c, err := LoadOrCreateSigner(dir)
	if err != nil || c.KeyID != a.KeyID || !a.PublicKey().Equal(c.Cert.PublicKey) {
		t.Fatalf("certificate made again: %v", err)
	}
	os.Chmod(filepath.Join(dir, KeyFile), 0o644)
	if _, err := LoadOrCreateSigner(dir); err == nil || !strings.Contains(err.Error(), "looser than 0600") {
		t.Fatalf("a key others may read was accepted: %v", err)
	}
}

func TestTTLBounds(t *testing.T) {
	for _, ttl := range []time.Duration{30 * time.Second, 2 * time.Hour} {
		cfg := DefaultConfig("reg", t.TempDir())
		cfg.TTL = ttl
		if _, err := New(cfg); err == nil {
			t.Errorf("TTL %v accepted", ttl)
		}
	}
	if _, err := New(Config{KeyDir: t.TempDir()}); err == nil {
		t.Error("no service accepted")
	}
}
