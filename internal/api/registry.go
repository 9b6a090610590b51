package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/registry"
	"github.com/berthproject/berth/internal/store"
)

// The registry's token endpoint (Docker's registry token authentication): the realm of a
// registry configured with `auth: token`. It is a public route that does its own
// authentication, HTTP Basic with a berth API token as the password (docker login sends it
// so), and answers a short-lived JWT whose access list is what authz grants the token on
// each requested repository. Every answer is recorded in the audit log: who, which scopes
// were granted and refused; never a token.

func (s *Server) routesRegistry(root router) {
	if s.d.Auth == nil {
		return
	}
	root.HandleFunc("GET /api/v1/registry/token", s.handleRegistryToken)
}

func (s *Server) handleRegistryToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if s.d.Registry == nil {
		writeError(w, http.StatusNotFound, "not_found", "this server issues no registry tokens: start it with --registry-service NAME (the registry's auth.token.service)", "")
		return
	}
	q := r.URL.Query()
	service := q.Get("service")
	e := store.AuditEntry{At: time.Now(), Remote: remoteHost(r.RemoteAddr), Action: "GET /api/v1/registry/token",
		Resource: "registry " + s.d.Registry.Service()}
	refuse := func(status int, code, msg, detail string) {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="berth registry token", charset="UTF-8"`)
		}
		writeError(w, status, code, msg, "")
		e.Status, e.Outcome, e.Detail = status, outcomeOf(status), detail
		s.appendAudit(r.Context(), e)
	}
	_, password, ok := r.BasicAuth()
	if !ok || password == "" {
		refuse(http.StatusUnauthorized, "unauthorized", "send a berth API token as the password of HTTP Basic auth (docker login -p <token>)", "no credentials")
		return
	}
	p, err := s.d.Auth.Verify(r.Context(), password)
	if errors.Is(err, auth.ErrUnauthorized) {
		refuse(http.StatusUnauthorized, "unauthorized", "unauthorized: unknown, revoked or expired token", "bad credentials")
		return
	}
	if err != nil {
		s.internal(w, "check a registry token request's credentials", err)
		return
	}
	e.ActorID, e.ActorName, e.Project = p.TokenID, p.Name, p.Project
	if service != "" && service != s.d.Registry.Service() {
		refuse(http.StatusBadRequest, "bad_request", "service "+quote(service)+" is not this server's registry; it issues tokens for "+quote(s.d.Registry.Service()), "service "+service)
		return
	}
	tok, err := s.d.Registry.Issue(p, q["scope"])
	var se *registry.ScopeError
	if errors.As(err, &se) {
		refuse(http.StatusBadRequest, "invalid_scope", se.Error(), "invalid scope")
		return
	}
	if err != nil {
		s.internal(w, "issue a registry token", err)
		return
	}
	e.Status, e.Outcome, e.Detail = http.StatusOK, store.AuditOK, grantDetail(tok)
	writeJSON(w, http.StatusOK, tok)
	s.appendAudit(r.Context(), e)
}

// grantDetail says what a token grants and what it refused: "granted repository:p1/app:pull,push;
// refused repository:p2/x:pull".
func grantDetail(t registry.Token) string {
	var parts []string
	for _, g := range t.Granted {
		parts = append(parts, "granted "+g.String())
	}
	for _, g := range t.Refused {
		parts = append(parts, "refused "+g.String())
	}
	if len(parts) == 0 {
		return "no scope (login)"
	}
	return strings.Join(parts, "; ")
}

func quote(s string) string { return `"` + s + `"` }
