package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/authz"
)

// Browser sign-in: a page taking a token, one-time links made through the API, sign-out.
// Sessions carry their token's rights; auth.Middleware accepts their cookie wherever a bearer
// token is accepted.

// signinStyle is the page's only style; the Content-Security-Policy allows it by its hash.
const signinStyle = `body{font:16px/1.5 system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}label{display:block;margin:1rem 0 .3rem}input[type=password]{width:100%;padding:.4rem;box-sizing:border-box}
button{margin-top:1rem;padding:.4rem 1.2rem}.msg{color:#a00}.note{color:#555;font-size:.9rem}`

var signinCSP = "default-src 'none'; style-src 'sha256-" + hashCSS(signinStyle) + "'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

func hashCSS(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

var signinPage = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · berth</title><style>` + signinStyle + `</style></head>
<body><h1>Sign in to berth</h1>
{{if .Message}}<p class="msg" role="alert">{{.Message}}</p>{{end}}
<form method="post" action="/signin">
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{{.Next}}">
<button type="submit">Sign in</button>
</form>
<p class="note">Your browser keeps a session with this token's rights. <code>berth open SERVICE</code> prints a one-time link instead.</p>
</body></html>
`))

func (s *Server) routesSignin(root, api router) {
	if s.d.Auth == nil {
		return
	}
	root.HandleFunc("GET /signin", s.handleSigninPage)
	root.HandleFunc("POST /signin", s.handleSignin)
	root.HandleFunc("GET /signin/link", s.handleSigninLink)
	root.HandleFunc("POST /signout", s.handleSignout)
	api.HandleFunc("POST /api/v1/signin-links", s.handleNewSigninLink)
}

func (s *Server) renderSignin(w http.ResponseWriter, status int, next, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", signinCSP)
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	signinPage.Execute(w, struct{ Next, Message string }{auth.LocalPath(next), msg})
}

func (s *Server) handleSigninPage(w http.ResponseWriter, r *http.Request) {
	s.renderSignin(w, http.StatusOK, r.URL.Query().Get("next"), "")
}

func (s *Server) handleSignin(w http.ResponseWriter, r *http.Request) {
	// A page elsewhere must not sign this browser in with a token of its choosing.
	if err := s.d.Auth.CheckOrigin(r); err != nil {
		s.renderSignin(w, http.StatusForbidden, "/", "Sign-in refused: the form was sent from another site.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.renderSignin(w, http.StatusBadRequest, "/", "The form could not be read: send token and next as a form.")
		return
	}
	next := auth.LocalPath(r.PostForm.Get("next"))
	token := strings.TrimSpace(r.PostForm.Get("token"))
	if token == "" {
		s.renderSignin(w, http.StatusBadRequest, next, "Enter an API token.")
		return
	}
	plain, exp, err := s.d.Auth.SignIn(r.Context(), token)
	if errors.Is(err, auth.ErrUnauthorized) {
		s.renderSignin(w, http.StatusUnauthorized, next, "That token is unknown or revoked.")
		return
	}
	if err != nil {
		s.d.Log.Error("sign in", "err", err)
		s.renderSignin(w, http.StatusInternalServerError, next, "berth could not sign you in; try again.")
		return
	}
	s.d.Auth.SetCookie(w, r, plain, exp)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) handleSigninLink(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead { // a link preview must not use up the code
		w.WriteHeader(http.StatusOK)
		return
	}
	plain, exp, next, err := s.d.Auth.RedeemSigninCode(r.Context(), r.URL.Query().Get("code"))
	if errors.Is(err, auth.ErrCodeUsed) {
		s.renderSignin(w, http.StatusUnauthorized, "/", "This sign-in link was already used or has expired (links work once, for 2 minutes). Sign in with a token, or make a new link with berth open.")
		return
	}
	if err != nil {
		s.d.Log.Error("sign in by link", "err", err)
		s.renderSignin(w, http.StatusInternalServerError, "/", "berth could not sign you in; try again.")
		return
	}
	s.d.Auth.SetCookie(w, r, plain, exp)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) handleSignout(w http.ResponseWriter, r *http.Request) {
	if err := s.d.Auth.CheckOrigin(r); err != nil {
		writeError(w, http.StatusForbidden, "forbidden", "cross-origin sign-out refused", "")
		return
	}
	if err := s.d.Auth.EndSession(r.Context(), auth.SessionCookie(r)); err != nil {
		s.d.Log.Error("sign out", "err", err)
	}
	s.d.Auth.ClearCookie(w, r)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// signinLinkRequest is the body of POST /api/v1/signin-links.
type signinLinkRequest struct {
	Next string `json:"next"`
}

// handleNewSigninLink makes a one-time link that signs a browser in with the caller's rights
// (a scoped token's session keeps its scope) and goes on to next.
func (s *Server) handleNewSigninLink(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if !s.can(w, r, authz.SigninLink, authz.Resource{Kind: "signin-link"}) {
		return
	}
	var req signinLinkRequest
	if r.ContentLength != 0 {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", `the body must be JSON {"next": "/proxy/<service>/"}: `+err.Error(), "")
			return
		}
	}
	if req.Next == "" {
		req.Next = "/"
	}
	if auth.LocalPath(req.Next) != req.Next {
		writeError(w, http.StatusBadRequest, "bad_request", "next: a path on this server starting with one \"/\" (e.g. /proxy/echo/)", "next")
		return
	}
	code, exp, err := s.d.Auth.NewSigninCode(r.Context(), p, req.Next)
	if err != nil {
		s.internal(w, "make a sign-in link", err)
		return
	}
	path := "/signin/link?code=" + code
	writeJSON(w, http.StatusCreated, map[string]string{
		"url": s.baseURL(r) + path, "path": path, "expires_at": exp.UTC().Format(time.RFC3339)})
}

// baseURL is the configured public URL, else the request's own scheme and host.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// withoutCredentials removes berth's credentials before a request goes to a service: the
// Authorization header and the session cookie (other cookies are the service's own and stay).
// The request it passes on has a header of its own (the caller's is not changed); its values
// are shared, not copied: nothing downstream changes a value in place (the proxy clones the
// header before it rewrites it). A request without either is passed on as it is.
func withoutCredentials(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, hasAuth := r.Header["Authorization"]
		cookies := r.Header["Cookie"]
		hasSession := false
		for _, line := range cookies {
			if strings.Contains(line, auth.CookieName) {
				hasSession = true
				break
			}
		}
		if !hasAuth && !hasSession {
			next.ServeHTTP(w, r)
			return
		}
		h := make(http.Header, len(r.Header))
		for k, v := range r.Header {
			if k != "Authorization" && k != "Cookie" {
				h[k] = v
			}
		}
		if !hasSession {
			if cookies != nil {
				h["Cookie"] = cookies
			}
		} else {
			var kept []string
			for _, line := range cookies {
				for part := range strings.SplitSeq(line, ";") {
					part = strings.TrimSpace(part)
					name, _, _ := strings.Cut(part, "=")
					if part == "" || strings.TrimSpace(name) == auth.CookieName {
						continue
					}
					kept = append(kept, part)
				}
			}
			if len(kept) > 0 {
				h["Cookie"] = []string{strings.Join(kept, "; ")}
			}
		}
		r2 := *r
		r2.Header = h
		next.ServeHTTP(w, &r2)
	})
}
