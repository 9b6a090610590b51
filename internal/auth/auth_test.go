package auth

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/store"
)

func newAuth(t *testing.T) (*Auth, *store.Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "berth.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(st), st, dir
}

func TestIssueVerifyRevoke(t *testing.T) {
	a, st, dir := newAuth(t)
	ctx := context.Background()
	plain, tok, err := a.Issue(ctx, "ci", RoleUser, "")
	if err != nil {
		t.Fatal(err)
	}
	if tok.Hash == plain || tok.Hash != Hash(plain) {
		t.Fatal("the token is not stored as its hash")
	}
	p, err := a.Verify(ctx, plain)
	if err != nil || p.Name != "ci" || p.Role != RoleUser || p.Project != store.DefaultProject {
		t.Fatalf("verify: %+v %v", p, err)
	}
	if _, err := a.Verify(ctx, plain+"x"); err != ErrUnauthorized {
		t.Fatalf("a wrong token: %v", err)
	}
	if _, _, err := a.Issue(ctx, "ci", RoleUser, ""); err == nil {
		t.Fatal("a second token with the same name")
	}
	if _, _, err := a.Issue(ctx, "x", "root", ""); err == nil {
		t.Fatal("an unknown role was accepted")
	}
	if err := a.Revoke(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(ctx, plain); err != ErrUnauthorized {
		t.Fatalf("a revoked token: %v", err)
	}
	st.Close()
	// The plain value is nowhere in the database files.
	files, _ := filepath.Glob(filepath.Join(dir, "berth.db*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(plain)) {
			t.Fatalf("%s holds the plain token", f)
		}
	}
}

func TestEnsureAdminOnce(t *testing.T) {
	a, _, dir := newAuth(t)
	ctx := context.Background()
	path := filepath.Join(dir, "admin-token")
	created, err := a.EnsureAdmin(ctx, path)
	if err != nil || !created {
		t.Fatalf("first: %v %v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi.Mode(), err)
	}
	b, _ := os.ReadFile(path)
	if p, err := a.Verify(ctx, string(bytes.TrimSpace(b))); err != nil || p.Role != RoleAdmin {
		t.Fatalf("the written token: %+v %v", p, err)
	}
	if created, err := a.EnsureAdmin(ctx, path); err != nil || created {
		t.Fatalf("second: %v %v", created, err)
	}
}

func TestMiddleware(t *testing.T) {
	a, _, _ := newAuth(t)
	plain, _, _ := a.Issue(context.Background(), "u", RoleUser, "")
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := FromContext(r.Context())
		w.Write([]byte(p.Name))
	}))
	for _, c := range []struct {
		header string
		status int
	}{{"", 401}, {"Bearer nope", 401}, {"Basic x", 401}, {"Bearer " + plain, 200}, {"bearer " + plain, 200}} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		if c.header != "" {
			req.Header.Set("Authorization", c.header)
		}
		h.ServeHTTP(rec, req)
		if rec.Code != c.status {
			t.Errorf("%q: %d, want %d", c.header, rec.Code, c.status)
		}
		if c.status == 401 && rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%q: no WWW-Authenticate", c.header)
		}
		if c.status == 200 && rec.Body.String() != "u" {
			t.Errorf("principal %q", rec.Body.String())
		}
	}
}

func TestEnsureAdminReplacesALooseStaleFile(t *testing.T) {
	a, _, dir := newAuth(t)
	path := filepath.Join(dir, "data", "admin-token")
	os.MkdirAll(filepath.Dir(path), 0o755)
	os.WriteFile(path, []byte("stale\n"), 0o644)
	if created, err := a.EnsureAdmin(context.Background(), path); err != nil || !created {
		t.Fatalf("ensure: %v %v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(path); !bytes.HasPrefix(b, []byte("berth_")) {
		t.Fatalf("token file holds %q", b)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "data", ".admin-token-*")); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestEnsureAdminRevokesWhenTheFileCannotBeWritten(t *testing.T) {
	a, st, dir := newAuth(t)
	// The path is a folder that is not empty: the token is issued, then the rename fails.
	blocked := filepath.Join(dir, "blocked")
	os.MkdirAll(filepath.Join(blocked, "x"), 0o700)
	if _, err := a.EnsureAdmin(context.Background(), blocked); err == nil {
		t.Fatal("no error writing over a folder")
	}
	if toks, _ := st.ListTokens(context.Background()); len(toks) != 1 || toks[0].RevokedAt == nil {
		t.Fatalf("the unwritten token: %+v", toks)
	}
	if n, _ := st.CountTokens(context.Background()); n != 0 {
		t.Fatalf("%d live tokens nobody can read", n)
	}
	path := filepath.Join(dir, "admin-token")
	if created, err := a.EnsureAdmin(context.Background(), path); err != nil || !created {
		t.Fatalf("retry: %v %v", created, err)
	}
}

func TestTokenNamesCannotLookLikeIDs(t *testing.T) {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := New(st)
	_, tok, err := a.Issue(context.Background(), "ci", RoleMember, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Issue(context.Background(), tok.ID, RoleMember, ""); err == nil || !strings.Contains(err.Error(), "tok_") {
		t.Fatalf("a token named like another's id was made: %v", err)
	}
}
