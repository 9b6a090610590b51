package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/store"
)

// countingStore counts the lookups that verification makes.
type countingStore struct {
	*store.Store
	mu               sync.Mutex
	tokens, sessions int
}

func (c *countingStore) TokenByHash(ctx context.Context, h string) (store.Token, error) {
	c.mu.Lock()
	c.tokens++
	c.mu.Unlock()
	return c.Store.TokenByHash(ctx, h)
}

func (c *countingStore) SessionByHash(ctx context.Context, h string) (store.Session, store.Token, error) {
	c.mu.Lock()
	c.sessions++
	c.mu.Unlock()
	return c.Store.SessionByHash(ctx, h)
}

// clock is a movable time for the tests.
type clock struct{ t time.Time }

func newClock() *clock               { return &clock{t: time.Now()} }
func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func (c *clock) use(a *Auth) *clock  { a.Now = c.now; return c }

func TestVerifyAnswersFromMemory(t *testing.T) {
	_, st, _ := newAuth(t)
	cs := &countingStore{Store: st}
	a := New(cs)
	clk := newClock().use(a)
	ctx := context.Background()
	plain, _, err := a.Issue(ctx, "ci", RoleUser, "service:echo")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		p, err := a.Verify(ctx, plain)
		if err != nil || p.Name != "ci" || p.Scope != "service:echo" {
			t.Fatalf("verify %d: %+v %v", i, p, err)
		}
	}
	if cs.tokens != 1 {
		t.Fatalf("%d store lookups for 5 verifications of one token; want 1", cs.tokens)
	}
	// The last use is still recorded.
	if tok, _ := st.TokenByHash(ctx, Hash(plain)); tok.LastUsedAt == nil {
		t.Fatal("last use not recorded")
	}
	// A revoke by another process (another Auth on the same database) is seen once the
	// entry ages out, not before.
	other := New(st)
	if err := other.Revoke(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(ctx, plain); err != nil {
		t.Fatalf("within the cache's lifetime: %v", err)
	}
	clk.add(DefaultCacheTTL + time.Second)
	if _, err := a.Verify(ctx, plain); err != ErrUnauthorized {
		t.Fatalf("after the cache's lifetime, the other process's revoke: %v", err)
	}
}

func TestSessionLifecycle(t *testing.T) {
	_, st, _ := newAuth(t)
	cs := &countingStore{Store: st}
	a := New(cs)
	clk := newClock().use(a)
	ctx := context.Background()
	plain, tok, _ := a.Issue(ctx, "ann", RoleUser, "")
	if _, _, err := a.SignIn(ctx, "nope"); err != ErrUnauthorized {
		t.Fatalf("sign in with a wrong token: %v", err)
	}
	cookie, exp, err := a.SignIn(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	if d := exp.Sub(clk.t); d < DefaultSessionTTL-time.Minute || d > DefaultSessionTTL+time.Minute {
		t.Fatalf("session ends in %v, want about %v", d, DefaultSessionTTL)
	}
	for i := 0; i < 3; i++ {
		p, err := a.VerifySession(ctx, cookie)
		if err != nil || p.TokenID != tok.ID || p.Role != RoleUser {
			t.Fatalf("session: %+v %v", p, err)
		}
	}
	if cs.sessions != 1 {
		t.Fatalf("%d store lookups for 3 verifications of one session; want 1", cs.sessions)
	}
	if _, err := a.VerifySession(ctx, plain); err != ErrUnauthorized {
		t.Fatal("a token is not a session")
	}
	if _, err := a.Verify(ctx, cookie); err != ErrUnauthorized {
		t.Fatal("a session is not a token")
	}
	// Sign-out ends it at once.
	if err := a.EndSession(ctx, cookie); err != nil {
		t.Fatal(err)
	}
	if _, err := a.VerifySession(ctx, cookie); err != ErrUnauthorized {
		t.Fatalf("after sign-out: %v", err)
	}
	// A session ends when its time is up, even while cached.
	cookie2, _, _ := a.SignIn(ctx, plain)
	if _, err := a.VerifySession(ctx, cookie2); err != nil {
		t.Fatal(err)
	}
	a.CacheTTL = 24 * time.Hour
	clk.add(DefaultSessionTTL)
	if _, err := a.VerifySession(ctx, cookie2); err != ErrUnauthorized {
		t.Fatalf("an expired session: %v", err)
	}
	// Revoking the token ends its sessions at once, though they were verified a moment ago.
	cookie3, _, _ := a.SignIn(ctx, plain)
	if _, err := a.VerifySession(ctx, cookie3); err != nil {
		t.Fatal(err)
	}
	if err := a.Revoke(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.VerifySession(ctx, cookie3); err != ErrUnauthorized {
		t.Fatalf("the revoked token's session: %v", err)
	}
}

func TestSigninCodeOnceAndNotAfterExpiry(t *testing.T) {
	a, _, _ := newAuth(t)
	clk := newClock().use(a)
	ctx := context.Background()
	plain, _, _ := a.Issue(ctx, "ann", RoleUser, "")
	p, _ := a.Verify(ctx, plain)
	code, exp, err := a.NewSigninCode(ctx, p, "/proxy/echo/?a=1")
	if err != nil || exp.Sub(clk.t) != SigninCodeTTL {
		t.Fatalf("code: %v, ends %v", err, exp)
	}
	cookie, _, next, err := a.RedeemSigninCode(ctx, code)
	if err != nil || next != "/proxy/echo/?a=1" {
		t.Fatalf("first use: %q %v", next, err)
	}
	if got, err := a.VerifySession(ctx, cookie); err != nil || got.TokenID != p.TokenID {
		t.Fatalf("the link's session: %+v %v", got, err)
	}
	if _, _, _, err := a.RedeemSigninCode(ctx, code); err != ErrCodeUsed {
		t.Fatalf("second use: %v", err)
	}
	late, _, _ := a.NewSigninCode(ctx, p, "/")
	clk.add(SigninCodeTTL)
	if _, _, _, err := a.RedeemSigninCode(ctx, late); err != ErrCodeUsed {
		t.Fatalf("after expiry: %v", err)
	}
	evil, _, _ := a.NewSigninCode(ctx, p, "https://evil.com/")
	clk.add(-SigninCodeTTL)
	if _, _, next, err := a.RedeemSigninCode(ctx, evil); err != nil || next != "/" {
		t.Fatalf("a foreign next: %q %v", next, err)
	}
	if _, _, _, err := a.RedeemSigninCode(ctx, "made-up"); err != ErrCodeUsed {
		t.Fatalf("an unknown code: %v", err)
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/proxy/x/":           "/proxy/x/",
		"/proxy/x/?a=1&b=/c":  "/proxy/x/?a=1&b=/c",
		"/":                   "/",
		"":                    "/",
		"//evil.com":          "/",
		"//evil.com/x":        "/",
		"https://evil.com":    "/",
		"http:/evil.com":      "/",
		"/\\evil.com":         "/",
		"\\\\evil.com":        "/",
		"evil.com":            "/",
		"/a\r\nSet-Cookie:x":  "/",
		"javascript:alert(1)": "/",
		"/%2F%2Fevil.com":     "/", // decodes to //evil.com: refused in case anything decodes it
	} {
		if got := LocalPath(in); got != want {
			t.Errorf("LocalPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMiddlewareCookieCrossOriginAndRedirect(t *testing.T) {
	a, _, _ := newAuth(t)
	ctx := context.Background()
	plain, _, _ := a.Issue(ctx, "u", RoleUser, "")
	cookie, _, _ := a.SignIn(ctx, plain)
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := FromContext(r.Context())
		w.Write([]byte(p.Name))
	}))
	serve := func(method, path string, set func(*http.Request)) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, "http://berth.test"+path, nil)
		set(req)
		h.ServeHTTP(rec, req)
		return rec
	}
	withCookie := func(r *http.Request) { r.AddCookie(&http.Cookie{Name: CookieName, Value: cookie}) }
	if rec := serve("GET", "/api/v1/jobs", withCookie); rec.Code != 200 || rec.Body.String() != "u" {
		t.Fatalf("cookie: %d %s", rec.Code, rec.Body)
	}
	crossSite := func(r *http.Request) {
		withCookie(r)
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		r.Header.Set("Origin", "https://evil.com")
	}
	if rec := serve("POST", "/api/v1/jobs", crossSite); rec.Code != 403 {
		t.Fatalf("cross-origin POST with the cookie: %d", rec.Code)
	}
	if rec := serve("GET", "/proxy/x/ws", func(r *http.Request) { crossSite(r); r.Header.Set("Upgrade", "websocket") }); rec.Code != 403 {
		t.Fatalf("cross-origin WebSocket with the cookie: %d", rec.Code)
	}
	if rec := serve("GET", "/proxy/x/", crossSite); rec.Code != 200 {
		t.Fatalf("cross-site GET navigation with the cookie: %d", rec.Code)
	}
	sameOrigin := func(r *http.Request) { withCookie(r); r.Header.Set("Sec-Fetch-Site", "same-origin") }
	if rec := serve("POST", "/api/v1/jobs", sameOrigin); rec.Code != 200 {
		t.Fatalf("same-origin POST with the cookie: %d", rec.Code)
	}
	bearerCross := func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+plain)
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		r.Header.Set("Origin", "https://evil.com")
	}
	if rec := serve("POST", "/api/v1/jobs", bearerCross); rec.Code != 200 {
		t.Fatalf("cross-origin POST with a bearer token: %d", rec.Code)
	}
	// Behind a proxy that changes Host, the public URL's origin is trusted when told.
	public := func(r *http.Request) { withCookie(r); r.Header.Set("Origin", "https://berth.example.com") }
	if rec := serve("POST", "/api/v1/jobs", public); rec.Code != 403 {
		t.Fatalf("an untrusted origin: %d", rec.Code)
	}
	if err := a.TrustOrigin("https://berth.example.com"); err != nil {
		t.Fatal(err)
	}
	if rec := serve("POST", "/api/v1/jobs", public); rec.Code != 200 {
		t.Fatalf("the trusted public origin: %d", rec.Code)
	}
	html := func(r *http.Request) { r.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8") }
	rec := serve("GET", "/proxy/x/?a=1", html)
	if rec.Code != 303 || rec.Header().Get("Location") != "/signin?next=/proxy/x/%3Fa%3D1" {
		t.Fatalf("unauthenticated navigation: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if rec := serve("GET", "/proxy/x/", func(*http.Request) {}); rec.Code != 401 || !strings.Contains(rec.Body.String(), "sign in") {
		t.Fatalf("unauthenticated non-browser request: %d %s", rec.Code, rec.Body)
	}
	if rec := serve("POST", "/proxy/x/", html); rec.Code != 401 {
		t.Fatalf("unauthenticated POST: %d", rec.Code)
	}
	// A stale cookie: the browser is sent to sign in again, and the cookie is cleared.
	stale := func(r *http.Request) { html(r); r.AddCookie(&http.Cookie{Name: CookieName, Value: "bs_gone"}) }
	rec = serve("GET", "/api/v1/jobs", stale)
	if rec.Code != 303 || !strings.Contains(rec.Header().Get("Set-Cookie"), CookieName+"=;") {
		t.Fatalf("stale cookie: %d %v", rec.Code, rec.Header())
	}
}
