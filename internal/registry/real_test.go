package registry_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/api"
	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/registry"
	"github.com/berthproject/berth/internal/registry/registrytest"
	"github.com/berthproject/berth/internal/store"
)

// The real registry (Debian's docker-registry, distribution 2.8) with `auth: token` pointed at
// a berth API server: what each side refuses, and that images go in and out for whom they
// should. Assertions ported from distribution's registry/auth/token tests name their source.

const service = "berth-test-registry"

type realFixture struct {
	reg    *registrytest.Registry
	realm  string
	iss    *registry.Issuer
	a      *auth.Auth
	st     *store.Store
	tok    map[string]string
	keyDir string
}

func newRealFixture(t *testing.T) *realFixture {
	t.Helper()
	registrytest.Require(t)
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, p := range []string{"p1", "p2"} {
		if err := st.CreateProject(ctx, store.Project{ID: p}); err != nil {
			t.Fatal(err)
		}
	}
	f := &realFixture{st: st, a: auth.New(st), tok: map[string]string{}, keyDir: filepath.Join(dir, "data")}
	for _, ts := range []auth.TokenSpec{
		{Name: "root", Role: auth.RoleAdmin},
		{Name: "ann", Project: "p1", Role: auth.RoleMember},
		{Name: "rex", Project: "p1", Role: auth.RoleReadOnly},
		{Name: "bob", Project: "p2", Role: auth.RoleMember},
		{Name: "gone", Project: "p1", Role: auth.RoleMember},
	} {
		plain, _, err := f.a.IssueToken(ctx, ts)
		if err != nil {
			t.Fatal(err)
		}
		f.tok[ts.Name] = plain
	}
	// A member of p1 whose token ended an hour ago.
	f.a.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	f.tok["old"], _, err = f.a.IssueToken(ctx, auth.TokenSpec{Name: "old", Project: "p1", Role: auth.RoleMember, TTL: time.Hour})
	f.a.Now = nil
	if err != nil {
		t.Fatal(err)
	}
	if err := f.a.Revoke(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if f.iss, err = registry.New(registry.DefaultConfig(service, f.keyDir)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Config{}, api.Deps{Auth: f.a, Store: st, Registry: f.iss}))
	t.Cleanup(srv.Close)
	f.realm = srv.URL + "/api/v1/registry/token"
	f.reg = registrytest.Start(t, registrytest.Auth{Realm: f.realm, Service: service, Issuer: registry.DefaultIssuer,
		RootCertBundle: f.iss.CertPath()})
	return f
}

func (f *realFixture) client(who string) *registrytest.Client {
	return &registrytest.Client{URL: f.reg.URL, User: who, Password: f.tok[who]}
}

// refused reports whether err is the registry's (or the endpoint's) 401 or 403.
func refused(err error, status ...int) bool {
	var se *registrytest.StatusError
	if !errors.As(err, &se) {
		return false
	}
	if len(status) == 0 {
		status = []int{401, 403}
	}
	for _, s := range status {
		if se.Status == s {
			return true
		}
	}
	return false
}

func TestRealRegistry(t *testing.T) {
	f := newRealFixture(t)
	img := registrytest.TinyImage("hello from p1\n")

	// A member of p1 pushes p1/app and pulls it back, every request through the token flow.
	ann := f.client("ann")
	digest, err := ann.PushImage("p1/app", "v1", img)
	if err != nil {
		t.Fatalf("ann (member of p1) pushes p1/app:v1: %v", err)
	}
	if digest != registrytest.Digest(img.Manifest) {
		t.Fatalf("the registry gave digest %s, want %s", digest, registrytest.Digest(img.Manifest))
	}

	t.Run("member pulls its project's image", func(t *testing.T) {
		c := f.client("ann")
		man, d, err := c.GetManifest("p1/app", "v1", registrytest.ManifestV2)
		if err != nil || d != digest || !bytes.Equal(man, img.Manifest) {
			t.Fatalf("pull p1/app:v1: %v (digest %s)", err, d)
		}
		layer, err := c.GetBlob("p1/app", registrytest.Digest(img.Layer))
		if err != nil || !bytes.Equal(layer, img.Layer) {
			t.Fatalf("pull the layer: %v", err)
		}
	})

	t.Run("read-only of p1 pulls but cannot push", func(t *testing.T) {
		c := f.client("rex")
		if _, _, err := c.GetManifest("p1/app", "v1", registrytest.ManifestV2); err != nil {
			t.Fatalf("rex pulls p1/app: %v", err)
		}
		if _, err := c.PushBlob("p1/app", []byte("rex was here")); !refused(err) {
			t.Fatalf("rex (read-only) pushed to p1/app: %v, want 401 or 403 from the registry", err)
		}
	})

	t.Run("member of p2 cannot pull p1/app", func(t *testing.T) {
		c := f.client("bob")
		if _, _, err := c.GetManifest("p1/app", "v1", registrytest.ManifestV2); !refused(err) {
			t.Fatalf("bob (member of p2) pulled p1/app: %v, want 401 or 403 from the registry", err)
		}
		if _, err := c.GetBlob("p1/app", registrytest.Digest(img.Layer)); !refused(err) {
			t.Fatalf("bob fetched p1/app's layer: %v", err)
		}
		if _, err := c.PushBlob("p1/app", []byte("bob was here")); !refused(err) {
			t.Fatalf("bob pushed to p1/app: %v", err)
		}
		// The token he got names no access at all.
		if n := len(c.Tokens); n == 0 || !strings.Contains(claims(t, c.Tokens[n-1].Token), `"access":[]`) {
			t.Fatalf("bob's token: %v", c.Tokens)
		}
		// His own project's repositories are his.
		if _, err := c.PushImage("p2/app", "v1", registrytest.TinyImage("p2\n")); err != nil {
			t.Fatalf("bob pushes p2/app: %v", err)
		}
	})

	t.Run("admin pulls any project's image", func(t *testing.T) {
		if _, _, err := f.client("root").GetManifest("p1/app", "v1", registrytest.ManifestV2); err != nil {
			t.Fatalf("root pulls p1/app: %v", err)
		}
	})

	t.Run("wrong, revoked or expired berth tokens get no JWT", func(t *testing.T) {
		for who, c := range map[string]*registrytest.Client{
			"wrong password": {URL: f.reg.URL, User: "ann", Password: "berth_not-a-token"},
			"no password":    {URL: f.reg.URL, User: "ann"},
			"revoked token":  f.client("gone"),
			"expired token":  f.client("old"),
		} {
			if _, err := c.Token(f.realm, service, "repository:p1/app:pull"); !refused(err, 401) {
				t.Errorf("%s: the token endpoint answered %v, want 401", who, err)
			}
			// And so the registry refuses the client.
			if _, _, err := c.GetManifest("p1/app", "v1", registrytest.ManifestV2); !refused(err, 401) {
				t.Errorf("%s: pull answered %v, want 401", who, err)
			}
		}
	})

	t.Run("the registry itself refuses bad JWTs", func(t *testing.T) {
		good, err := f.iss.Issue(principal("ann", "p1"), []string{"repository:p1/app:pull"})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := (&registrytest.Client{URL: f.reg.URL, Bearer: good.Token}).GetManifest("p1/app", "v1", registrytest.ManifestV2); err != nil {
			t.Fatalf("the registry refused a good token: %v", err)
		}
		// Signed by another key (its own self-signed certificate in x5c): not chained to the
		// bundle (distribution token_test.go TestTokenVerify, "untrusted" cases).
		other, err := registry.New(registry.DefaultConfig(service, t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		forged, _ := other.Issue(principal("root", "default"), []string{"repository:p1/app:pull"})
		// Expired: issued two hours ago, five minutes long (token.go Verify: exp + leeway).
		past, _ := registry.New(registry.DefaultConfig(service, f.keyDir))
		past.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
		expired, _ := past.Issue(principal("ann", "p1"), []string{"repository:p1/app:pull"})
		// For another registry: the audience is checked (token.go Verify: AcceptedAudiences).
		elsewhere, _ := registry.New(registry.DefaultConfig("another-registry", f.keyDir))
		wrongAud, _ := elsewhere.Issue(principal("ann", "p1"), []string{"repository:p1/app:pull"})
		// Tampered: the claims changed after signing.
		parts := strings.Split(good.Token, ".")
		body := strings.Replace(claims(t, good.Token), `"sub":"ann"`, `"sub":"root"`, 1)
		tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(body)) + "." + parts[2]
		for name, jwt := range map[string]string{"garbage": "not.a.jwt", "another key": forged.Token,
			"expired": expired.Token, "another audience": wrongAud.Token, "tampered": tampered} {
			c := &registrytest.Client{URL: f.reg.URL, Bearer: jwt}
			if _, _, err := c.GetManifest("p1/app", "v1", registrytest.ManifestV2); !refused(err, 401) {
				t.Errorf("%s JWT: the registry answered %v, want 401", name, err)
			}
		}
	})

	t.Run("a kid alone names the key", func(t *testing.T) {
		// distribution's accesscontroller keys its rootcertbundle by libtrust fingerprint and
		// token.go VerifySigningKey looks a kid up there: KeyID must compute the same id.
		good, _ := f.iss.Issue(principal("ann", "p1"), []string{"repository:p1/app:pull"})
		var c registry.Claims
		json.Unmarshal([]byte(claims(t, good.Token)), &c)
		kidOnly, err := f.iss.SignKIDOnly(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := (&registrytest.Client{URL: f.reg.URL, Bearer: kidOnly}).GetManifest("p1/app", "v1", registrytest.ManifestV2); err != nil {
			t.Fatalf("the registry refused a token naming its key by kid only: %v", err)
		}
	})

	t.Run("the JWT lasts minutes", func(t *testing.T) {
		tr, err := f.client("ann").Token(f.realm, service, "repository:p1/app:pull")
		if err != nil {
			t.Fatal(err)
		}
		var c registry.Claims
		if err := json.Unmarshal([]byte(claims(t, tr.Token)), &c); err != nil {
			t.Fatal(err)
		}
		life := time.Duration(c.ExpiresAt-c.IssuedAt) * time.Second
		if life != registry.DefaultTTL || tr.ExpiresIn != int(registry.DefaultTTL/time.Second) || life > time.Hour || life < time.Minute {
			t.Fatalf("exp - iat = %v, expires_in %d: want %v", life, tr.ExpiresIn, registry.DefaultTTL)
		}
		if c.Issuer != registry.DefaultIssuer || c.Audience != service || c.Subject != "ann" || c.NotBefore > c.IssuedAt || c.ID == "" {
			t.Fatalf("claims: %+v", c)
		}
	})

	t.Run("every answer is in the audit log", func(t *testing.T) {
		entries, err := f.st.ListAudit(context.Background(), store.AuditFilter{Action: "GET /api/v1/registry/token", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var granted, denied bool
		for _, e := range entries {
			if strings.Contains(e.Detail, "berth_") || strings.Contains(e.Detail, "eyJ") {
				t.Fatalf("an audit entry holds a credential: %+v", e)
			}
			granted = granted || (e.ActorName == "ann" && e.Outcome == store.AuditOK && strings.Contains(e.Detail, "granted repository:p1/app:pull,push"))
			denied = denied || (e.Outcome == store.AuditDenied && e.Status == 401)
		}
		if !granted || !denied {
			t.Fatalf("audit log: granted to ann %v, refused %v in %d entries", granted, denied, len(entries))
		}
	})
}

func principal(name, project string) auth.Principal {
	role := auth.RoleMember
	if name == "root" {
		role = auth.RoleAdmin
	}
	return auth.Principal{Name: name, Role: role, Project: project}
}

// claims is a JWT's payload, decoded (not verified).
func claims(t *testing.T, jwt string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
