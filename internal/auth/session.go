package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/store"
)

// CookieName is the browser session cookie. The service proxy removes it before a request
// reaches a service.
const CookieName = "berth_session"

// ErrCodeUsed: a sign-in code that is unknown, already used or expired.
var ErrCodeUsed = errors.New("auth: this sign-in link was already used or has expired")

func random(prefix string) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// SignIn verifies a token and makes a browser session carrying its rights. It returns the
// cookie value (stored only as its hash) and when the session ends.
func (a *Auth) SignIn(ctx context.Context, token string) (string, time.Time, error) {
	p, err := a.Verify(ctx, token)
	if err != nil {
		return "", time.Time{}, err
	}
	return a.newSession(ctx, p.TokenID)
}

func (a *Auth) newSession(ctx context.Context, tokenID string) (string, time.Time, error) {
	plain, err := random("bs_")
	if err != nil {
		return "", time.Time{}, err
	}
	var idb [8]byte
	rand.Read(idb[:])
	now := a.now().UTC()
	se := store.Session{ID: "ses_" + hex.EncodeToString(idb[:]), Hash: Hash(plain), TokenID: tokenID,
		CreatedAt: now, ExpiresAt: now.Add(a.SessionTTL)}
	if err := a.st.CreateSession(ctx, se); err != nil {
		return "", time.Time{}, err
	}
	a.purge(ctx, now)
	return plain, se.ExpiresAt, nil
}

// purge removes expired sessions and codes, at most once an hour.
func (a *Auth) purge(ctx context.Context, now time.Time) {
	a.mu.Lock()
	due := now.Sub(a.lastPurge) > time.Hour
	if due {
		a.lastPurge = now
	}
	a.mu.Unlock()
	if due {
		a.st.PurgeExpired(ctx, now)
	}
}

// VerifySession checks a session cookie's value and returns the principal of the token it
// was made from: an expired session, a signed-out one, or one whose token was revoked is
// ErrUnauthorized.
func (a *Auth) VerifySession(ctx context.Context, plain string) (Principal, error) {
	if plain == "" {
		return Principal{}, ErrUnauthorized
	}
	key := keyOf('s', plain)
	if c, ok := a.fromCache(key); ok {
		a.touch(ctx, c.p.TokenID, c.sessionID)
		return c.p, nil
	}
	se, t, err := a.st.SessionByHash(ctx, key.hex())
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrUnauthorized
	}
	if err != nil {
		return Principal{}, err
	}
	if !a.tokenLive(t) || !a.now().Before(se.ExpiresAt) {
		return Principal{}, ErrUnauthorized
	}
	p := principalOf(t)
	exp := se.ExpiresAt
	if t.ExpiresAt != nil && t.ExpiresAt.Before(exp) { // a session never outlives its token
		exp = *t.ExpiresAt
	}
	a.remember(key, cached{p: p, sessionID: se.ID, expires: exp})
	a.touch(ctx, t.ID, se.ID)
	return p, nil
}

// EndSession signs a session out; an unknown one is not an error.
func (a *Auth) EndSession(ctx context.Context, plain string) error {
	if plain == "" {
		return nil
	}
	a.mu.Lock()
	delete(a.cache, keyOf('s', plain))
	a.mu.Unlock()
	return a.st.DeleteSession(ctx, Hash(plain))
}

// NewSigninCode makes a one-time code, valid for SigninCodeTTL, that signs a browser in with
// the principal's token and sends it to next (a local path; see LocalPath).
func (a *Auth) NewSigninCode(ctx context.Context, p Principal, next string) (string, time.Time, error) {
	if p.TokenID == "" {
		return "", time.Time{}, ErrUnauthorized
	}
	code, err := random("")
	if err != nil {
		return "", time.Time{}, err
	}
	now := a.now().UTC()
	c := store.SigninCode{Hash: Hash(code), TokenID: p.TokenID, Next: LocalPath(next), CreatedAt: now, ExpiresAt: now.Add(SigninCodeTTL)}
	if err := a.st.CreateSigninCode(ctx, c); err != nil {
		return "", time.Time{}, err
	}
	return code, c.ExpiresAt, nil
}

// RedeemSigninCode uses a code (once) and makes a session from it. It returns the cookie
// value, the session's end and where to go next; a used, unknown or expired code, or one
// whose token was revoked since, is ErrCodeUsed.
func (a *Auth) RedeemSigninCode(ctx context.Context, code string) (string, time.Time, string, error) {
	if code == "" {
		return "", time.Time{}, "", ErrCodeUsed
	}
	now := a.now().UTC()
	c, err := a.st.ConsumeSigninCode(ctx, Hash(code), now)
	if errors.Is(err, store.ErrNotFound) {
		return "", time.Time{}, "", ErrCodeUsed
	}
	if err != nil {
		return "", time.Time{}, "", err
	}
	if !now.Before(c.ExpiresAt) {
		return "", time.Time{}, "", ErrCodeUsed
	}
	t, err := a.st.TokenByID(ctx, c.TokenID)
	if errors.Is(err, store.ErrNotFound) || err == nil && !a.tokenLive(t) {
		return "", time.Time{}, "", ErrCodeUsed
	}
	if err != nil {
		return "", time.Time{}, "", err
	}
	plain, exp, err := a.newSession(ctx, t.ID)
	if err != nil {
		return "", time.Time{}, "", err
	}
	return plain, exp, c.Next, nil
}

// LocalPath returns next when it is a path on this server (one leading "/", no scheme, no
// host, no backslash, no control character), else "/": a sign-in never sends a browser
// elsewhere.
func LocalPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\") {
		return "/"
	}
	for _, r := range next {
		if r < 0x20 || r == 0x7f {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	return next
}

// SetCookie sets the session cookie: HttpOnly, SameSite=Lax, Path=/, Secure over TLS (or
// when SecureCookies), ending with the session.
func (a *Auth) SetCookie(w http.ResponseWriter, r *http.Request, plain string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: plain, Path: "/", Expires: expires,
		MaxAge: max(1, int(time.Until(expires).Seconds())), HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: r.TLS != nil || a.SecureCookies})
}

// ClearCookie removes the session cookie from the browser.
func (a *Auth) ClearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil || a.SecureCookies})
}

// CheckOrigin refuses a state-changing request sent by a browser from another origin (the
// standard library's cross-origin protection: Sec-Fetch-Site, else Origin against Host).
// Safe methods pass; a WebSocket handshake is checked like a POST, since its GET changes what
// the service does on the caller's behalf.
func (a *Auth) CheckOrigin(r *http.Request) error {
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		c := *r
		c.Method = http.MethodPost
		return a.cop.Check(&c)
	}
	return a.cop.Check(r)
}

// TrustOrigin lets cookie-authenticated state-changing requests come from an origin besides
// the request's own Host ("https://berth.example.com": the public URL, when a proxy in front
// of berth changes Host).
func (a *Auth) TrustOrigin(origin string) error { return a.cop.AddTrustedOrigin(origin) }

// SessionCookie returns the request's session cookie value ("" without one).
func SessionCookie(r *http.Request) string {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return ""
	}
	return c.Value
}

// IsNavigation reports whether a request is a browser loading a page: GET or HEAD accepting
// text/html.
func IsNavigation(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// SigninPath is where an unauthenticated browser is sent, with where it was going. Slashes
// stay as they are (a query may hold them): /signin?next=/proxy/x/.
func SigninPath(next string) string {
	return "/signin?next=" + strings.ReplaceAll(url.QueryEscape(LocalPath(next)), "%2F", "/")
}

// Middleware puts the request's principal in its context. It takes "Authorization: Bearer
// <token>" or the session cookie; a bearer header wins and is not subject to the
// cross-origin check, which a cookie-authenticated state-changing request must pass (403).
// Without valid credentials a browser navigation is sent to the sign-in page (303); any
// other request gets 401 JSON.
func (a *Auth) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := strings.TrimSpace(r.Header.Get("Authorization")); h != "" {
			// The scheme is case-insensitive (RFC 9110 section 11.1).
			scheme, plain, ok := strings.Cut(h, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				deny(w, "missing bearer token: send Authorization: Bearer <token>")
				return
			}
			p, err := a.Verify(r.Context(), strings.TrimSpace(plain))
			if err != nil {
				a.refuse(w, err, "unauthorized: unknown or revoked token")
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
			return
		}
		if cookie := SessionCookie(r); cookie != "" {
			p, err := a.VerifySession(r.Context(), cookie)
			if errors.Is(err, ErrUnauthorized) {
				a.ClearCookie(w, r)
				if IsNavigation(r) {
					http.Redirect(w, r, SigninPath(r.URL.RequestURI()), http.StatusSeeOther)
					return
				}
			}
			if err != nil {
				a.refuse(w, err, "unauthorized: the session ended (expired, signed out, or its token was revoked); sign in again at /signin")
				return
			}
			if err := a.CheckOrigin(r); err != nil {
				writeJSONError(w, http.StatusForbidden, "forbidden", "cross-origin request refused: a request signed in by cookie must come from this server's own pages")
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
			return
		}
		if IsNavigation(r) {
			http.Redirect(w, r, SigninPath(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		deny(w, "missing bearer token: send Authorization: Bearer <token>, or sign in at /signin")
	})
}

func (a *Auth) refuse(w http.ResponseWriter, err error, msg string) {
	if errors.Is(err, ErrUnauthorized) {
		deny(w, msg)
		return
	}
	writeJSONError(w, http.StatusInternalServerError, "internal", "could not check the credentials")
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
