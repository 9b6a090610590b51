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

// Roles, from most to least: what each may do is decided in internal/authz, nowhere else.
const (
	RoleAdmin        = "admin"         // the whole server, every project
	RoleProjectAdmin = "project-admin" // everything in its project: tokens, sharing, quotas read, audit
	RoleMember       = "member"        // runs and changes things in its project
	RoleReadOnly     = "read-only"     // reads its project
	// RoleUser is the name the member role had before projects; it is accepted and stored as member.
	RoleUser = RoleMember
)

// Roles lists the roles, most powerful first.
var Roles = []string{RoleAdmin, RoleProjectAdmin, RoleMember, RoleReadOnly}

// NormalizeRole returns the stored name of a role ("user" is the old name of member), or an
// error naming the allowed roles.
func NormalizeRole(role string) (string, error) {
	if role == "user" {
		return RoleMember, nil
	}
	for _, r := range Roles {
		if r == role {
			return r, nil
		}
	}
	return "", fmt.Errorf("role %q is not allowed; use one of %s", role, strings.Join(Roles, ", "))
}

// ErrUnauthorized: no token, an unknown token, or a revoked one.
var ErrUnauthorized = errors.New("auth: unauthorized")

// Principal is who a request acts as.
type Principal struct {
	TokenID string `json:"token_id"`
	Name    string `json:"name"`
	Role    string `json:"role"`
	// Project is the project the token belongs to.
	Project string `json:"project"`
	// Scope narrows the role further: comma-separated service:<name> (that service's proxy
	// only), bucket:<id>:read|write (storage limited to those buckets), component:<id>
	// (components and configurations limited to those). "" = everything the role allows.
	Scope string `json:"scope,omitempty"`
}

// Store is what Auth needs of the store.
type Store interface {
	CreateToken(ctx context.Context, t store.Token) error
	TokenByHash(ctx context.Context, hash string) (store.Token, error)
	TokenByID(ctx context.Context, id string) (store.Token, error)
	ListTokens(ctx context.Context) ([]store.Token, error)
	RevokeToken(ctx context.Context, idOrName string) error
	TouchToken(ctx context.Context, id string, at time.Time) error
	CountTokens(ctx context.Context) (int, error)

	CreateSession(ctx context.Context, se store.Session) error
	SessionByHash(ctx context.Context, hash string) (store.Session, store.Token, error)
	DeleteSession(ctx context.Context, hash string) error
	DeleteTokenSessions(ctx context.Context, tokenID string) error
	TouchSession(ctx context.Context, id string, at time.Time) error
	PurgeExpired(ctx context.Context, before time.Time) error
	CreateSigninCode(ctx context.Context, c store.SigninCode) error
	ConsumeSigninCode(ctx context.Context, hash string, at time.Time) (store.SigninCode, error)
}

var _ Store = (*store.Store)(nil)

// Defaults of Auth's settings.
const (
	DefaultSessionTTL = 12 * time.Hour
	DefaultCacheTTL   = 10 * time.Second
	SigninCodeTTL     = 2 * time.Minute
)

// Auth issues and verifies tokens, browser sessions and one-time sign-in codes.
//
// Verification answers from memory: a token or session verified once is kept, keyed by its
// hash, for CacheTTL. A revoke or sign-out made through this Auth drops the entries at once;
// one made by another process on the same database (berth token revoke, a second server on a
// shared PostgreSQL) takes effect here when the entry ages out, within CacheTTL.
type Auth struct {
	st Store

	// SessionTTL is how long a browser session lasts (server --session-ttl; default 12 h).
	// Set it before serving.
	SessionTTL time.Duration
	// CacheTTL is how long a verified token or session is trusted from memory (default 10 s).
	CacheTTL time.Duration
	// SecureCookies marks the session cookie Secure even on a plain-HTTP request (the server is
	// reached through a TLS-terminating proxy: its --public-url is https). A request that came
	// over TLS always gets a Secure cookie.
	SecureCookies bool
	// Now is the clock (nil: time.Now); tests move it.
	Now func() time.Time

	cop *http.CrossOriginProtection

	mu        sync.Mutex
	touched   map[string]time.Time
	cache     map[cacheKey]cached
	lastPurge time.Time
}

// cacheKey is a verified token's or session's SHA-256 (the plain value is not kept), with its
// kind: 't' for a token, 's' for a session. Looking one up hashes but allocates nothing.
type cacheKey struct {
	kind byte
	sum  [sha256.Size]byte
}

func keyOf(kind byte, plain string) cacheKey {
	return cacheKey{kind: kind, sum: sha256.Sum256([]byte(plain))}
}

// hex is how the store knows the hash of key.
func (k cacheKey) hex() string { return hex.EncodeToString(k.sum[:]) }

// cached is a verified token or session.
type cached struct {
	p         Principal
	sessionID string    // "" for a token
	expires   time.Time // the session's own end (zero for a token)
	until     time.Time // when this entry must be checked against the store again
}

// New makes an Auth on a store.
func New(st Store) *Auth {
	return &Auth{st: st, SessionTTL: DefaultSessionTTL, CacheTTL: DefaultCacheTTL,
		cop: http.NewCrossOriginProtection(), touched: map[string]time.Time{}, cache: map[cacheKey]cached{}}
}

func (a *Auth) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// fromCache returns a live entry.
func (a *Auth) fromCache(key cacheKey) (cached, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.cache[key]
	if !ok {
		return c, false
	}
	now := a.now()
	if now.After(c.until) || (!c.expires.IsZero() && !now.Before(c.expires)) {
		delete(a.cache, key)
		return c, false
	}
	return c, true
}

func (a *Auth) remember(key cacheKey, c cached) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if len(a.cache) >= 4096 { // keep the map small: drop what has aged out
		for k, e := range a.cache {
			if now.After(e.until) {
				delete(a.cache, k)
			}
		}
	}
	c.until = now.Add(a.CacheTTL)
	a.cache[key] = c
}

// forget drops every cached entry of a token (by ID or name).
func (a *Auth) forget(idOrName string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, e := range a.cache {
		if e.p.TokenID == idOrName || e.p.Name == idOrName {
			delete(a.cache, k)
		}
	}
}

// touch records a use of a token (and of a session) at most once a minute each.
func (a *Auth) touch(ctx context.Context, tokenID, sessionID string) {
	now := a.now()
	a.mu.Lock()
	touchToken := now.Sub(a.touched[tokenID]) > time.Minute
	if touchToken {
		a.touched[tokenID] = now
	}
	touchSession := sessionID != "" && now.Sub(a.touched[sessionID]) > time.Minute
	if touchSession {
		a.touched[sessionID] = now
	}
	a.mu.Unlock()
	if touchToken {
		a.st.TouchToken(ctx, tokenID, now.UTC())
	}
	if touchSession {
		a.st.TouchSession(ctx, sessionID, now.UTC())
	}
}

// Hash is how a token is stored.
func Hash(plain string) string {
	sum := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(sum[:])
}

// Issue makes a token in the default project and returns its plain value (shown once) and
// its stored record.
func (a *Auth) Issue(ctx context.Context, name, role, scope string) (string, store.Token, error) {
	return a.IssueToken(ctx, TokenSpec{Name: name, Role: role, Scope: scope})
}

// TokenSpec is what a new token is: its name, project (default: the default project), role,
// scope and lifetime (0: it does not expire).
type TokenSpec struct {
	Name, Project, Role, Scope string
	TTL                        time.Duration
}

// IssueToken makes a token and returns its plain value (shown once) and its stored record.
func (a *Auth) IssueToken(ctx context.Context, ts TokenSpec) (string, store.Token, error) {
	name, scope := ts.Name, ts.Scope
	role, err := NormalizeRole(ts.Role)
	if err != nil {
		return "", store.Token{}, err
	}
	if strings.TrimSpace(name) == "" {
		return "", store.Token{}, errors.New("a token needs a name")
	}
	if strings.HasPrefix(name, "tok_") {
		// Revoke takes an id or a name: a name shaped like an id could revoke another token.
		return "", store.Token{}, fmt.Errorf("token name %q: names may not start with tok_ (token ids do)", name)
	}
	if err := ValidScope(scope); err != nil {
		return "", store.Token{}, err
	}
	if ts.TTL < 0 {
		return "", store.Token{}, errors.New("a token's lifetime cannot be negative")
	}
	project := ts.Project
	if project == "" {
		project = store.DefaultProject
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", store.Token{}, err
	}
	plain := "berth_" + base64.RawURLEncoding.EncodeToString(b[:])
	var idb [8]byte
	rand.Read(idb[:])
	now := a.now().UTC()
	t := store.Token{ID: "tok_" + hex.EncodeToString(idb[:]), Name: name, Hash: Hash(plain), Role: role, Scope: scope,
		Project: project, CreatedAt: now}
	if ts.TTL > 0 {
		exp := now.Add(ts.TTL)
		t.ExpiresAt = &exp
	}
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
	key := keyOf('t', plain)
	if c, ok := a.fromCache(key); ok {
		a.touch(ctx, c.p.TokenID, "")
		return c.p, nil
	}
	t, err := a.st.TokenByHash(ctx, key.hex())
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrUnauthorized
	}
	if err != nil {
		return Principal{}, err
	}
	if !a.tokenLive(t) {
		return Principal{}, ErrUnauthorized
	}
	p := principalOf(t)
	c := cached{p: p}
	if t.ExpiresAt != nil {
		c.expires = *t.ExpiresAt
	}
	a.remember(key, c)
	a.touch(ctx, t.ID, "")
	return p, nil
}

// tokenLive reports whether a token is neither revoked nor expired.
func (a *Auth) tokenLive(t store.Token) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || a.now().Before(*t.ExpiresAt))
}

func principalOf(t store.Token) Principal {
	return Principal{TokenID: t.ID, Name: t.Name, Role: t.Role, Project: t.Project, Scope: t.Scope}
}

// Revoke revokes a token by ID or name and ends its browser sessions; in this process both
// are refused from the next request on.
func (a *Auth) Revoke(ctx context.Context, idOrName string) error {
	err := a.st.RevokeToken(ctx, idOrName)
	a.forget(idOrName)
	if err != nil {
		return err
	}
	toks, err := a.st.ListTokens(ctx)
	if err != nil {
		return err
	}
	for _, t := range toks {
		if t.ID == idOrName || t.Name == idOrName {
			a.forget(t.ID)
			if err := a.st.DeleteTokenSessions(ctx, t.ID); err != nil {
				return err
			}
		}
	}
	return nil
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
		a.Revoke(context.WithoutCancel(ctx), tok.ID)
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

func deny(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="berth"`)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "unauthorized", "message": msg}})
}
