// Package auth issues and checks berth's API tokens. Tokens are random and stored only as
// their SHA-256; the plain value is shown once, when it is made.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berthproject/berth/internal/store"
)

// Roles.
const (
	RoleAdmin = "admin" // everything, every owner's jobs
	RoleUser  = "user"  // own jobs only
)

// ErrUnauthorized: no token, an unknown token, or a revoked one.
var ErrUnauthorized = errors.New("auth: unauthorized")

// Principal is who a request acts as.
type Principal struct {
	TokenID string `json:"token_id"`
	Name    string `json:"name"`
	Role    string `json:"role"`
	Scope   string `json:"scope,omitempty"` // "" = everything the role allows
}

// IsAdmin reports whether the principal has the admin role.
func (p Principal) IsAdmin() bool { return p.Role == RoleAdmin }

// Auth issues and verifies tokens.
type Auth struct {
	st *store.Store

	mu      sync.Mutex
	touched map[string]time.Time
}

// New makes an Auth on a store.
func New(st *store.Store) *Auth { return &Auth{st: st, touched: map[string]time.Time{}} }

// Hash is how a token is stored.
func Hash(plain string) string {
	sum := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(sum[:])
}

// Issue makes a token and returns its plain value (shown once) and its stored record.
func (a *Auth) Issue(ctx context.Context, name, role, scope string) (string, store.Token, error) {
	if role != RoleAdmin && role != RoleUser {
		return "", store.Token{}, fmt.Errorf("role %q: allowed roles are admin and user", role)
	}
	if strings.TrimSpace(name) == "" {
		return "", store.Token{}, errors.New("a token needs a name")
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", store.Token{}, err
	}
	plain := "berth_" + base64.RawURLEncoding.EncodeToString(b[:])
	var idb [8]byte
	rand.Read(idb[:])
	t := store.Token{ID: "tok_" + hex.EncodeToString(idb[:]), Name: name, Hash: Hash(plain), Role: role, Scope: scope, CreatedAt: time.Now().UTC()}
	if err := a.st.CreateToken(ctx, t); err != nil {
		return "", store.Token{}, err
	}
	return plain, t, nil
}

// Verify checks a token and returns who it is.
func (a *Auth) Verify(ctx context.Context, plain string) (Principal, error) {
	if plain == "" {
		return Principal{}, ErrUnauthorized
	}
	t, err := a.st.TokenByHash(ctx, Hash(plain))
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrUnauthorized
	}
	if err != nil {
		return Principal{}, err
	}
	if t.RevokedAt != nil {
		return Principal{}, ErrUnauthorized
	}
	a.mu.Lock()
	last := a.touched[t.ID]
	touch := time.Since(last) > time.Minute
	if touch {
		a.touched[t.ID] = time.Now()
	}
	a.mu.Unlock()
	if touch {
		a.st.TouchToken(ctx, t.ID, time.Now().UTC())
	}
	return Principal{TokenID: t.ID, Name: t.Name, Role: t.Role, Scope: t.Scope}, nil
}

// EnsureAdmin issues an admin token when no live token exists and writes it to path (mode
// 0600, parent folder 0700). It reports whether it made one. The file is written beside path
// and renamed into place, so a stale file with looser permissions is replaced, not reused; if
// the file cannot be written the new token is revoked, so the next start tries again.
func (a *Auth) EnsureAdmin(ctx context.Context, path string) (bool, error) {
	n, err := a.st.CountTokens(ctx)
	if err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("write admin token: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".admin-token-*") // mode 0600
	if err != nil {
		return false, fmt.Errorf("write admin token: %w", err)
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	name := "admin"
	if toks, err := a.st.ListTokens(ctx); err == nil && len(toks) > 0 {
		name = fmt.Sprintf("admin-%d", len(toks)+1) // the first admin was revoked
	}
	plain, tok, err := a.Issue(ctx, name, RoleAdmin, "")
	if err != nil {
		f.Close()
		return false, err
	}
	_, err = f.WriteString(plain + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o600)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		a.st.RevokeToken(context.WithoutCancel(ctx), tok.ID)
		return false, fmt.Errorf("write admin token: %w", err)
	}
	return true, nil
}

type ctxKey struct{}

// FromContext returns the request's principal.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// WithPrincipal returns ctx carrying p (tests and internal callers).
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// Middleware requires "Authorization: Bearer <token>" and puts the principal in the context.
func (a *Auth) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The scheme is case-insensitive (RFC 9110 section 11.1).
		scheme, plain, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			deny(w, "missing bearer token: send Authorization: Bearer <token>")
			return
		}
		p, err := a.Verify(r.Context(), strings.TrimSpace(plain))
		if err != nil {
			if errors.Is(err, ErrUnauthorized) {
				deny(w, "unauthorized: unknown or revoked token")
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "internal", "message": "could not check the token"}})
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

func deny(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="berth"`)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "unauthorized", "message": msg}})
}
