package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/berthproject/berth/internal/spec"
)

// seen is what the service was asked, as it saw it.
type seen struct {
	mu     sync.Mutex
	uri    string
	host   string
	header http.Header
}

func (s *seen) get() (string, string, http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.uri, s.host, s.header
}

// prefixSetup is a proxy in front of one upstream that answers /loc?l=X with a 302 to X,
// /cookie?c=X&c=Y with those Set-Cookie lines, /ws with a WebSocket echo (refusing a
// cross-origin handshake, as apps do), and anything else with 200; services "svc" (strip) and
// "kept" (keep) both reach it.
func prefixSetup(t *testing.T, tls bool) (front *httptest.Server, upstream string, s *seen, fs *fakeServices) {
	t.Helper()
	s = &seen{}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.uri, s.host, s.header = r.RequestURI, r.Host, r.Header.Clone()
		s.mu.Unlock()
		p := r.URL.Path
		switch {
		case strings.HasSuffix(p, "/loc"):
			w.Header().Set("Location", r.URL.Query().Get("l"))
			w.WriteHeader(http.StatusFound)
		case strings.HasSuffix(p, "/cookie"):
			for _, c := range r.URL.Query()["c"] {
				w.Header().Add("Set-Cookie", c)
			}
		case strings.HasSuffix(p, "/ws"):
			c, err := websocket.Accept(w, r, nil) // checks Origin against Host
			if err != nil {
				return
			}
			defer c.CloseNow()
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			c.Write(r.Context(), typ, append([]byte("echo "), msg...))
			c.Close(websocket.StatusNormalClosure, "")
		default:
			io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(backend.Close)
	upstream = strings.TrimPrefix(backend.URL, "http://")
	fs = &fakeServices{addr: upstream, modes: map[string]spec.PrefixMode{"svc": spec.PrefixStrip, "kept": spec.PrefixKeep}}
	if tls {
		front = httptest.NewTLSServer(New(Config{}, fs))
	} else {
		front = httptest.NewServer(New(Config{}, fs))
	}
	t.Cleanup(front.Close)
	return front, upstream, s, fs
}

func noRedirects(c *http.Client) *http.Client {
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func TestProxyRedirectsToTheSlash(t *testing.T) {
	front, _, _, fs := prefixSetup(t, false)
	client := noRedirects(&http.Client{})
	for path, want := range map[string]string{
		"/proxy/svc":               "/proxy/svc/",
		"/proxy/svc?a=1&b=%2F+x":   "/proxy/svc/?a=1&b=%2F+x",
		"/proxy/kept?next=/tree/x": "/proxy/kept/?next=/tree/x",
	} {
		for _, method := range []string{"GET", "POST"} {
			req, _ := http.NewRequest(method, front.URL+path, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
				t.Errorf("%s %s: %d Location %q; want 308 %q", method, path, resp.StatusCode, resp.Header.Get("Location"), want)
			}
		}
	}
	if n := fs.ensures.Load(); n != 0 {
		t.Errorf("a redirect started the service (%d ensures)", n)
	}
	if resp, _ := client.Get(front.URL + "/proxy/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown service without a slash: %d, want 404", resp.StatusCode)
	}
}

func TestProxyHostAndForwardedHeaders(t *testing.T) {
	for _, tls := range []bool{false, true} {
		front, _, s, _ := prefixSetup(t, tls)
		client := front.Client()
		req, _ := http.NewRequest("GET", front.URL+"/proxy/svc/x", nil)
		req.Host = "berth.example:8443"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		_, host, h := s.get()
		proto := "http"
		if tls {
			proto = "https"
		}
		if host != "berth.example:8443" || h.Get("X-Forwarded-Host") != "berth.example:8443" ||
			h.Get("X-Forwarded-Proto") != proto || h.Get("X-Forwarded-Prefix") != "/proxy/svc" || h.Get("X-Forwarded-For") == "" {
			t.Errorf("tls=%v: the service saw Host %q and %v", tls, host, h)
		}
	}
}

func TestProxyPathByMode(t *testing.T) {
	front, _, s, _ := prefixSetup(t, false)
	for path, want := range map[string]string{
		"/proxy/svc/":                "/",
		"/proxy/svc/a/b?c=1":         "/a/b?c=1",
		"/proxy/svc/a%2Fb/c":         "/a%2Fb/c", // the escaped slash stays escaped
		"/proxy/kept/":               "/proxy/kept/",
		"/proxy/kept/tree/x?c=1&d=2": "/proxy/kept/tree/x?c=1&d=2",
		"/proxy/kept/a%2Fb/c":        "/proxy/kept/a%2Fb/c",
	} {
		resp, err := http.Get(front.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if uri, _, _ := s.get(); resp.StatusCode != 200 || uri != want {
			t.Errorf("%s: %d, the service was asked %q; want %q", path, resp.StatusCode, uri, want)
		}
	}
}

func TestProxyStripRewritesLocation(t *testing.T) {
	front, upstream, _, _ := prefixSetup(t, false)
	fh := strings.TrimPrefix(front.URL, "http://")
	client := noRedirects(&http.Client{})
	cases := []struct{ loc, strip string }{
		{"/tree", "/proxy/svc/tree"},
		{"/", "/proxy/svc/"},
		{"/login?next=%2Ftree&x=1#top", "/proxy/svc/login?next=%2Ftree&x=1#top"},
		{"/a%2Fb", "/proxy/svc/a%2Fb"},
		{"x", "x"},
		{"../x", "../x"},
		{"./x?y=1", "./x?y=1"},
		{"?page=2", "?page=2"},
		{"/proxy/svc/already", "/proxy/svc/already"}, // an app that reads X-Forwarded-Prefix
		{"http://" + fh + "/tree", "http://" + fh + "/proxy/svc/tree"},
		{"http://" + fh, "http://" + fh + "/proxy/svc/"},
		{"https://" + fh + "/tree", "https://" + fh + "/proxy/svc/tree"}, // the client's host behind a TLS front
		{"http://" + upstream + "/login?next=/a", "http://" + fh + "/proxy/svc/login?next=/a"},
		{"http://svc/login", "http://" + fh + "/proxy/svc/login"},
		{"//" + upstream + "/x", "//" + fh + "/proxy/svc/x"},
		{"//" + fh + "/x", "//" + fh + "/proxy/svc/x"},
		{"https://example.com/x", "https://example.com/x"},
		{"//example.com/x", "//example.com/x"},
		{"mailto:someone@example.com", "mailto:someone@example.com"},
	}
	for _, c := range cases {
		for _, svc := range []string{"svc", "kept"} {
			want := c.strip
			if svc == "kept" {
				want = c.loc // keep mode rewrites nothing
			}
			resp, err := client.Get(front.URL + "/proxy/" + svc + "/loc?l=" + url.QueryEscape(c.loc))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || got != want {
				t.Errorf("%s: Location %q → %d %q; want %q", svc, c.loc, resp.StatusCode, got, want)
			}
		}
	}
}

func TestProxyStripRewritesCookies(t *testing.T) {
	front, _, _, _ := prefixSetup(t, false)
	cases := []struct{ cookie, strip string }{
		{"a=1; Path=/p; HttpOnly", "a=1; Path=/proxy/svc/p; HttpOnly"},
		{"a=1", "a=1; Path=/proxy/svc/"},
		{"a=1; Path=/", "a=1; Path=/proxy/svc/"},
		{"a=1; path=/x/", "a=1; path=/proxy/svc/x/"},
		{"a=1; Path=relative", "a=1; Path=/proxy/svc/"},
		{"a=1; Path=/proxy/svc/p", "a=1; Path=/proxy/svc/p"},
		{`a="q v"; Path=/; SameSite=Strict; Partitioned; Secure; Priority=High; Max-Age=60`,
			`a="q v"; Path=/proxy/svc/; SameSite=Strict; Partitioned; Secure; Priority=High; Max-Age=60`},
		{"a=1; Domain=svc; Path=/", "a=1; Path=/proxy/svc/"},
		{"a=1; Domain=.svc", "a=1; Path=/proxy/svc/"},
		{"a=1; Domain=example.org; Path=/", "a=1; Domain=example.org; Path=/proxy/svc/"},
		{"a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT", "a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/proxy/svc/"},
	}
	for _, c := range cases {
		for _, svc := range []string{"svc", "kept"} {
			want := c.strip
			if svc == "kept" {
				want = c.cookie
			}
			resp, err := http.Get(front.URL + "/proxy/" + svc + "/cookie?c=" + url.QueryEscape(c.cookie) + "&c=" + url.QueryEscape("second=2"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Values("Set-Cookie")
			second := "second=2; Path=/proxy/svc/"
			if svc == "kept" {
				second = "second=2"
			}
			if len(got) != 2 || got[0] != want || got[1] != second {
				t.Errorf("%s: Set-Cookie %q → %q; want %q, %q", svc, c.cookie, got, want, second)
			}
		}
	}
	// The browser agrees: the cookie is sent back under the service only.
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err := client.Get(front.URL + "/proxy/svc/cookie?c=" + url.QueryEscape("sid=7; Path=/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	u, _ := url.Parse(front.URL)
	for path, want := range map[string]int{"/proxy/svc/x": 1, "/proxy/other/x": 0, "/": 0} {
		u.Path = path
		if n := len(jar.Cookies(u)); n != want {
			t.Errorf("cookies for %s: %d, want %d", path, n, want)
		}
	}
}

func TestProxyWebSocketWithOrigin(t *testing.T) {
	front, _, s, _ := prefixSetup(t, false)
	for _, svc := range []string{"svc", "kept"} {
		ctx := context.Background()
		h := http.Header{}
		h.Set("Origin", front.URL) // a browser sends its page's origin; the app compares it with Host
		c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(front.URL, "http")+"/proxy/"+svc+"/ws", &websocket.DialOptions{HTTPHeader: h})
		if err != nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Fatalf("%s: the WebSocket was refused (%d): %v", svc, status, err)
		}
		if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		_, msg, err := c.Read(ctx)
		if err != nil || string(msg) != "echo hi" {
			t.Fatalf("%s: %q %v", svc, msg, err)
		}
		c.Close(websocket.StatusNormalClosure, "")
		if _, host, _ := s.get(); host != strings.TrimPrefix(front.URL, "http://") {
			t.Fatalf("%s: the service saw Host %q", svc, host)
		}
	}
}
