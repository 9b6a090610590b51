package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/store"
)

// recordingProxy stands in for the service proxy: it records what a service would receive.
type recordingProxy struct {
	mu     sync.Mutex
	header http.Header
	who    auth.Principal
}

func (p *recordingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.header = r.Header.Clone()
	p.who, _ = auth.FromContext(r.Context())
	p.mu.Unlock()
	io.WriteString(w, "from the service")
}

type signinFixture struct {
	srv    *httptest.Server
	auth   *auth.Auth
	proxy  *recordingProxy
	token  string // a user token
	scoped string // a token scoped to service:echo
	now    time.Time
}

func newSigninFixture(t *testing.T, tls bool) *signinFixture {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &signinFixture{auth: auth.New(st), proxy: &recordingProxy{}, now: time.Now()}
	f.auth.Now = func() time.Time { return f.now }
	f.token, _, _ = f.auth.Issue(context.Background(), "ann", auth.RoleUser, "")
	f.scoped, _, _ = f.auth.Issue(context.Background(), "app", auth.RoleUser, "service:echo")
	s := New(Config{}, Deps{Jobs: &fakeJobs{jobs: map[string]job.Job{}}, Auth: f.auth, Proxy: f.proxy})
	if tls {
		f.srv = httptest.NewTLSServer(s)
	} else {
		f.srv = httptest.NewServer(s)
	}
	t.Cleanup(f.srv.Close)
	return f
}

// browser is a client that keeps cookies and does not follow redirects.
func (f *signinFixture) browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	c := f.srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func send(t *testing.T, c *http.Client, method, u string, body io.Reader, set func(*http.Request)) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, body)
	if set != nil {
		set(req)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func form(vals url.Values) (io.Reader, func(*http.Request)) {
	return strings.NewReader(vals.Encode()), func(r *http.Request) {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
}

func (f *signinFixture) signIn(t *testing.T, c *http.Client, token, next string) *http.Response {
	t.Helper()
	body, set := form(url.Values{"token": {token}, "next": {next}})
	resp, _ := send(t, c, "POST", f.srv.URL+"/signin", body, set)
	return resp
}

func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == auth.CookieName {
			return c
		}
	}
	return nil
}

func TestSigninPageAndForm(t *testing.T) {
	f := newSigninFixture(t, false)
	c := f.browser(t)
	resp, body := send(t, c, "GET", f.srv.URL+"/signin?next=/proxy/echo/", nil, nil)
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "form-action 'self'") || !strings.Contains(csp, "style-src 'sha256-") {
		t.Fatalf("page: %d %v", resp.StatusCode, resp.Header)
	}
	if !strings.Contains(body, `name="token"`) || !strings.Contains(body, `name="next" value="/proxy/echo/"`) || !strings.Contains(body, `<style>`+signinStyle) {
		t.Fatalf("page body: %s", body)
	}
	if resp, body := send(t, c, "GET", f.srv.URL+`/signin?next="><script>x</script>`, nil, nil); resp.StatusCode != 200 || strings.Contains(body, "<script>") {
		t.Fatalf("next is not escaped, or not replaced: %s", body)
	}
	// A wrong token: the page again, with a message.
	body2, set := form(url.Values{"token": {"berth_wrong"}, "next": {"/proxy/echo/"}})
	resp, body = send(t, c, "POST", f.srv.URL+"/signin", body2, set)
	if resp.StatusCode != 401 || !strings.Contains(body, "unknown or revoked") || sessionCookie(resp) != nil {
		t.Fatalf("wrong token: %d %s", resp.StatusCode, body)
	}
	resp = f.signIn(t, c, f.token, "/proxy/echo/?a=1")
	ck := sessionCookie(resp)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/proxy/echo/?a=1" || ck == nil {
		t.Fatalf("sign in: %d %v", resp.StatusCode, resp.Header)
	}
	raw := resp.Header.Get("Set-Cookie")
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure || ck.MaxAge < 11*3600 || ck.MaxAge > 12*3600 ||
		!strings.Contains(raw, "Expires=") || strings.Contains(raw, f.token) {
		t.Fatalf("cookie attributes: %s", raw)
	}
	// The cookie works for the API.
	if resp, body := send(t, c, "GET", f.srv.URL+"/api/v1/jobs", nil, nil); resp.StatusCode != 200 || !strings.Contains(body, `"jobs"`) {
		t.Fatalf("API with the cookie: %d %s", resp.StatusCode, body)
	}
}

func TestSigninCookieSecureOverTLS(t *testing.T) {
	f := newSigninFixture(t, true)
	resp := f.signIn(t, f.browser(t), f.token, "/")
	if ck := sessionCookie(resp); resp.StatusCode != 303 || ck == nil || !ck.Secure || !ck.HttpOnly {
		t.Fatalf("over TLS: %d %s", resp.StatusCode, resp.Header.Get("Set-Cookie"))
	}
}

func TestSigninNextStaysLocal(t *testing.T) {
	f := newSigninFixture(t, false)
	for _, next := range []string{"//evil.com", "https://evil.com", "//evil.com/proxy/x/", "/\\evil.com", "evil.com", ""} {
		resp := f.signIn(t, f.browser(t), f.token, next)
		if resp.StatusCode != 303 || resp.Header.Get("Location") != "/" {
			t.Errorf("next %q: %d to %q, want 303 to /", next, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, next := range []string{"//evil.com", "https://evil.com"} {
		resp, body := send(t, http.DefaultClient, "POST", f.srv.URL+"/api/v1/signin-links", strings.NewReader(`{"next": "`+next+`"}`),
			func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+f.token) })
		if c, field := errCode(decode(body)); resp.StatusCode != 400 || c != "bad_request" || field != "next" {
			t.Errorf("a link to %q: %d %s", next, resp.StatusCode, body)
		}
	}
}

func decode(s string) map[string]any {
	var m map[string]any
	json.Unmarshal([]byte(s), &m)
	return m
}

func TestSigninCookieReachesProxyWithoutCredentials(t *testing.T) {
	f := newSigninFixture(t, false)
	c := f.browser(t)
	f.signIn(t, c, f.token, "/")
	u, _ := url.Parse(f.srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "app_session", Value: "a1"}, {Name: "theme", Value: "dark"}})
	resp, body := send(t, c, "GET", f.srv.URL+"/proxy/echo/page", nil, nil)
	if resp.StatusCode != 200 || body != "from the service" {
		t.Fatalf("proxy with the cookie: %d %s", resp.StatusCode, body)
	}
	got := f.proxy.header.Get("Cookie")
	if strings.Contains(got, auth.CookieName) || !strings.Contains(got, "app_session=a1") || !strings.Contains(got, "theme=dark") {
		t.Fatalf("the service got Cookie %q", got)
	}
	if f.proxy.who.Name != "ann" {
		t.Fatalf("principal at the proxy: %+v", f.proxy.who)
	}
	// With a bearer token: neither the header nor berth's cookie reaches the service.
	resp, _ = send(t, http.DefaultClient, "GET", f.srv.URL+"/proxy/echo/", nil, func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+f.token)
		r.Header.Add("Cookie", auth.CookieName+"=x; keep=1")
	})
	if resp.StatusCode != 200 || f.proxy.header.Get("Authorization") != "" || f.proxy.header.Get("Cookie") != "keep=1" {
		t.Fatalf("bearer through the proxy: %d %v", resp.StatusCode, f.proxy.header)
	}
	// Only berth's cookie: no Cookie header at all.
	send(t, http.DefaultClient, "GET", f.srv.URL+"/proxy/echo/", nil, func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+f.token)
		r.Header.Add("Cookie", auth.CookieName+"=x")
	})
	if _, ok := f.proxy.header["Cookie"]; ok {
		t.Fatalf("an empty Cookie header reached the service: %v", f.proxy.header)
	}
}

func TestSigninUnauthenticatedBrowserIsSentToSignin(t *testing.T) {
	f := newSigninFixture(t, false)
	html := func(r *http.Request) { r.Header.Set("Accept", "text/html,application/xhtml+xml") }
	c := f.browser(t)
	for path, want := range map[string]string{
		"/proxy/x/":          "/signin?next=/proxy/x/",
		"/api/v1/jobs?x=1":   "/signin?next=/api/v1/jobs%3Fx%3D1",
		"/proxy/x/a?b=c&d=e": "/signin?next=/proxy/x/a%3Fb%3Dc%26d%3De",
	} {
		resp, _ := send(t, c, "GET", f.srv.URL+path, nil, html)
		if resp.StatusCode != 303 || resp.Header.Get("Location") != want {
			t.Errorf("%s: %d to %q, want %q", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	// Anything else keeps the 401 JSON.
	resp, body := send(t, c, "GET", f.srv.URL+"/proxy/x/", nil, nil)
	if c, _ := errCode(decode(body)); resp.StatusCode != 401 || c != "unauthorized" {
		t.Fatalf("without Accept text/html: %d %s", resp.StatusCode, body)
	}
	if resp, _ := send(t, c, "POST", f.srv.URL+"/api/v1/jobs", nil, html); resp.StatusCode != 401 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
}

func TestSigninLinkOnceNotTwiceNotAfterExpiry(t *testing.T) {
	f := newSigninFixture(t, false)
	newLink := func(token, next string) map[string]any {
		t.Helper()
		resp, body := send(t, http.DefaultClient, "POST", f.srv.URL+"/api/v1/signin-links", strings.NewReader(`{"next": "`+next+`"}`),
			func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) })
		if resp.StatusCode != 201 {
			t.Fatalf("make a link: %d %s", resp.StatusCode, body)
		}
		return decode(body)
	}
	link := newLink(f.token, "/proxy/echo/")
	u, _ := link["url"].(string)
	path, _ := link["path"].(string)
	exp, err := time.Parse(time.RFC3339, link["expires_at"].(string))
	if !strings.HasPrefix(u, f.srv.URL+"/signin/link?code=") || u != f.srv.URL+path || err != nil || exp.Sub(f.now) > 2*time.Minute+time.Second || exp.Sub(f.now) < 2*time.Minute-time.Second {
		t.Fatalf("link: %v", link)
	}
	c := f.browser(t)
	resp, _ := send(t, c, "GET", u, nil, nil)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/proxy/echo/" || sessionCookie(resp) == nil {
		t.Fatalf("first use: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, body := send(t, c, "GET", f.srv.URL+"/proxy/echo/", nil, nil); resp.StatusCode != 200 || body != "from the service" {
		t.Fatalf("the link's session at the proxy: %d %s", resp.StatusCode, body)
	}
	resp, body := send(t, f.browser(t), "GET", u, nil, nil)
	if resp.StatusCode != 401 || sessionCookie(resp) != nil || !strings.Contains(body, "already used or has expired") {
		t.Fatalf("second use: %d %s", resp.StatusCode, body)
	}
	late := newLink(f.token, "/")["url"].(string)
	f.now = f.now.Add(2*time.Minute + time.Second)
	if resp, _ := send(t, f.browser(t), "GET", late, nil, nil); resp.StatusCode != 401 || sessionCookie(resp) != nil {
		t.Fatalf("after expiry: %d", resp.StatusCode)
	}
	// A token scoped to a service may make a link; its session keeps the scope.
	scopedURL := newLink(f.scoped, "/proxy/echo/")["url"].(string)
	sc := f.browser(t)
	send(t, sc, "GET", scopedURL, nil, nil)
	if resp, _ := send(t, sc, "GET", f.srv.URL+"/proxy/echo/", nil, nil); resp.StatusCode != 200 || f.proxy.who.Scope != "service:echo" {
		t.Fatalf("scoped session at the proxy: %d %+v", resp.StatusCode, f.proxy.who)
	}
	if resp, _ := send(t, sc, "GET", f.srv.URL+"/api/v1/jobs", nil, nil); resp.StatusCode != 403 {
		t.Fatalf("scoped session on the API: %d", resp.StatusCode)
	}
}

func TestSigninRevokedTokensSessionRefusedAtOnce(t *testing.T) {
	f := newSigninFixture(t, false)
	c := f.browser(t)
	f.signIn(t, c, f.token, "/")
	if resp, _ := send(t, c, "GET", f.srv.URL+"/api/v1/jobs", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("before revoke: %d", resp.StatusCode)
	}
	if err := f.auth.Revoke(context.Background(), "ann"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := send(t, c, "GET", f.srv.URL+"/api/v1/jobs", nil, nil); resp.StatusCode != 401 {
		t.Fatalf("after revoke, the API: %d", resp.StatusCode)
	}
	if resp, _ := send(t, c, "GET", f.srv.URL+"/proxy/echo/", nil, nil); resp.StatusCode != 401 {
		t.Fatalf("after revoke, the proxy: %d", resp.StatusCode)
	}
}

func TestSigninCrossOriginCookieRefusedBearerNot(t *testing.T) {
	f := newSigninFixture(t, false)
	c := f.browser(t)
	f.signIn(t, c, f.token, "/")
	cross := func(r *http.Request) {
		r.Header.Set("Origin", "https://evil.com")
		r.Header.Set("Sec-Fetch-Site", "cross-site")
	}
	body := func() io.Reader { return strings.NewReader(`{"next": "/"}`) }
	if resp, b := send(t, c, "POST", f.srv.URL+"/api/v1/signin-links", body(), cross); resp.StatusCode != 403 {
		t.Fatalf("cross-origin POST with the cookie: %d %s", resp.StatusCode, b)
	}
	if resp, _ := send(t, c, "POST", f.srv.URL+"/proxy/echo/form", body(), cross); resp.StatusCode != 403 {
		t.Fatalf("cross-origin POST to a service with the cookie: %d", resp.StatusCode)
	}
	if resp, _ := send(t, c, "POST", f.srv.URL+"/api/v1/signin-links", body(), func(r *http.Request) {
		r.Header.Set("Origin", f.srv.URL)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	}); resp.StatusCode != 201 {
		t.Fatalf("same-origin POST with the cookie: %d", resp.StatusCode)
	}
	if resp, _ := send(t, http.DefaultClient, "POST", f.srv.URL+"/api/v1/signin-links", body(), func(r *http.Request) {
		cross(r)
		r.Header.Set("Authorization", "Bearer "+f.token)
	}); resp.StatusCode != 201 {
		t.Fatalf("cross-origin POST with a bearer token: %d", resp.StatusCode)
	}
	// Another site cannot sign this browser in or out either.
	b, set := form(url.Values{"token": {f.token}})
	if resp, _ := send(t, f.browser(t), "POST", f.srv.URL+"/signin", b, func(r *http.Request) { set(r); cross(r) }); resp.StatusCode != 403 || sessionCookie(resp) != nil {
		t.Fatalf("cross-origin sign-in: %d", resp.StatusCode)
	}
	if resp, _ := send(t, c, "POST", f.srv.URL+"/signout", nil, cross); resp.StatusCode != 403 {
		t.Fatalf("cross-origin sign-out: %d", resp.StatusCode)
	}
}

func TestSignout(t *testing.T) {
	f := newSigninFixture(t, false)
	c := f.browser(t)
	ck := sessionCookie(f.signIn(t, c, f.token, "/"))
	resp, _ := send(t, c, "POST", f.srv.URL+"/signout", nil, nil)
	if cleared := sessionCookie(resp); resp.StatusCode != 303 || resp.Header.Get("Location") != "/signin" || cleared == nil || cleared.MaxAge >= 0 {
		t.Fatalf("sign out: %d %v", resp.StatusCode, resp.Header)
	}
	// The old cookie, replayed, is refused.
	if resp, _ := send(t, http.DefaultClient, "GET", f.srv.URL+"/api/v1/jobs", nil, func(r *http.Request) { r.AddCookie(ck) }); resp.StatusCode != 401 {
		t.Fatalf("the signed-out cookie: %d", resp.StatusCode)
	}
}
