package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/store"
)

// Projects and tokens: an admin makes projects and sets their quotas; a project admin
// manages its project's tokens (never an admin token), an admin every token.

func (s *Server) routesAdmin(api router) {
	if s.d.Store == nil || s.d.Auth == nil {
		return
	}
	api.HandleFunc("POST /api/v1/projects", s.handleProjectCreate)
	api.HandleFunc("GET /api/v1/projects", s.handleProjectList)
	api.HandleFunc("PATCH /api/v1/projects/{id}", s.handleProjectSet)
	api.HandleFunc("GET /api/v1/tokens", s.handleTokenList)
	api.HandleFunc("POST /api/v1/tokens", s.handleTokenCreate)
	api.HandleFunc("DELETE /api/v1/tokens/{id}", s.handleTokenRevoke)
}

// decodeBody reads a JSON body of at most 64 KiB into v, refusing unknown fields; it
// answers the error itself.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, shape string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "the body must be JSON "+shape+": "+err.Error(), "")
		return false
	}
	return true
}

// projectRequest is the body of POST /api/v1/projects and PATCH /api/v1/projects/{id}.
type projectRequest struct {
	ID                string `json:"id"`
	MaxConcurrentJobs *int   `json:"max_concurrent_jobs"`
	MaxStorageBytes   *int64 `json:"max_storage_bytes"`
}

func (s *Server) handleProjectCreate(w http.ResponseWriter, r *http.Request) {
	// Project "" is the caller's: making a project is a question of role, not of where.
	if !s.can(w, r, authz.ProjectManage, authz.Resource{Kind: "project"}) {
		return
	}
	var req projectRequest
	if !decodeBody(w, r, &req, "{id, max_concurrent_jobs, max_storage_bytes}") {
		return
	}
	if err := store.ValidProjectID(req.ID); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error(), "id")
		return
	}
	p := store.Project{ID: req.ID}
	if req.MaxConcurrentJobs != nil {
		p.MaxConcurrentJobs = *req.MaxConcurrentJobs
	}
	if req.MaxStorageBytes != nil {
		p.MaxStorageBytes = *req.MaxStorageBytes
	}
	if p.MaxConcurrentJobs < 0 || p.MaxStorageBytes < 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "quotas cannot be negative (0: no limit)", "")
		return
	}
	err := s.d.Store.CreateProject(r.Context(), p)
	if errors.Is(err, store.ErrConflict) {
		writeError(w, http.StatusConflict, "conflict", "project "+req.ID+" exists", "id")
		return
	}
	if err != nil {
		s.internal(w, "create the project", err)
		return
	}
	p, err = s.d.Store.GetProject(r.Context(), req.ID)
	if err != nil {
		s.internal(w, "read the project", err)
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

func (s *Server) handleProjectList(w http.ResponseWriter, r *http.Request) {
	if !s.can(w, r, authz.ProjectRead, authz.Resource{Kind: "project"}) {
		return
	}
	all, err := s.d.Store.ListProjects(r.Context())
	if err != nil {
		s.internal(w, "list projects", err)
		return
	}
	p := principal(r)
	out := []store.Project{}
	for _, pr := range all {
		if authz.Visible(p, pr.ID) {
			out = append(out, pr)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"projects": out})
}

func (s *Server) handleProjectSet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.can(w, r, authz.ProjectManage, authz.Resource{Kind: "project", ID: id, Project: id}) {
		return
	}
	var req projectRequest
	if !decodeBody(w, r, &req, "{max_concurrent_jobs, max_storage_bytes}") {
		return
	}
	if req.ID != "" && req.ID != id {
		writeError(w, http.StatusBadRequest, "bad_request", "id: a project's id does not change", "id")
		return
	}
	if req.MaxConcurrentJobs != nil && *req.MaxConcurrentJobs < 0 || req.MaxStorageBytes != nil && *req.MaxStorageBytes < 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "quotas cannot be negative (0: no limit)", "")
		return
	}
	err := s.d.Store.SetProjectQuotas(r.Context(), id, req.MaxConcurrentJobs, req.MaxStorageBytes)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no project "+id, "id")
		return
	}
	if err != nil {
		s.internal(w, "set the project's quotas", err)
		return
	}
	p, err := s.d.Store.GetProject(r.Context(), id)
	if err != nil {
		s.internal(w, "read the project", err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// TokenView is a token as the API and berth token list show it: never its value or hash.
type TokenView struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Project    string     `json:"project"`
	Role       string     `json:"role"`
	Scope      string     `json:"scope"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// ViewToken is the view of a stored token.
func ViewToken(t store.Token) TokenView {
	return TokenView{ID: t.ID, Name: t.Name, Project: t.Project, Role: t.Role, Scope: t.Scope, CreatedAt: t.CreatedAt,
		LastUsedAt: t.LastUsedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt}
}

// canManageToken asks authz whether the caller may make or revoke a token of project with
// role, and answers the refusal. An admin token is the whole server's, whatever
// its project: only who may manage projects may make or revoke one.
func (s *Server) canManageToken(w http.ResponseWriter, r *http.Request, id, project, role string) bool {
	res := authz.Resource{Kind: "token", ID: id, Project: project}
	if !s.can(w, r, authz.TokenManage, res) {
		return false
	}
	if role == auth.RoleAdmin {
		if err := authz.Can(principal(r), authz.ProjectManage, res); err != nil {
			s.deny(w, &authz.Denied{Status: http.StatusForbidden, Reason: "an admin token is made and revoked by an admin: " + err.Error()})
			return false
		}
	}
	return true
}

func (s *Server) handleTokenList(w http.ResponseWriter, r *http.Request) {
	project := r.URL.Query().Get("project")
	if !s.can(w, r, authz.TokenManage, authz.Resource{Kind: "token", Project: project}) {
		return
	}
	toks, err := s.d.Store.ListTokens(r.Context())
	if err != nil {
		s.internal(w, "list tokens", err)
		return
	}
	p := principal(r)
	out := []TokenView{}
	for _, t := range toks {
		if authz.Visible(p, t.Project) && (project == "" || t.Project == project) {
			out = append(out, ViewToken(t))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

// tokenRequest is the body of POST /api/v1/tokens.
type tokenRequest struct {
	Name      string `json:"name"`
	Role      string `json:"role"`
	Project   string `json:"project"`
	Scope     string `json:"scope"`
	ExpiresIn string `json:"expires_in"`
}

func (s *Server) handleTokenCreate(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if !decodeBody(w, r, &req, "{name, role, project, scope, expires_in}") {
		return
	}
	if req.Project == "" {
		req.Project = principal(r).Project
	}
	if req.Role == "" {
		req.Role = auth.RoleMember
	}
	role, err := auth.NormalizeRole(req.Role)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error(), "role")
		return
	}
	if !s.canManageToken(w, r, "", req.Project, role) {
		return
	}
	if strings.TrimSpace(req.Name) == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "name: a token needs a name", "name")
		return
	}
	if err := auth.ValidScope(req.Scope); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error(), "scope")
		return
	}
	var ttl time.Duration
	if req.ExpiresIn != "" {
		if ttl, err = ParseLifetime(req.ExpiresIn); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "expires_in: "+err.Error(), "expires_in")
			return
		}
	}
	if _, err := s.d.Store.GetProject(r.Context(), req.Project); errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusBadRequest, "bad_request", "project "+req.Project+" does not exist", "project")
		return
	} else if err != nil {
		s.internal(w, "read the project", err)
		return
	}
	plain, t, err := s.d.Auth.IssueToken(r.Context(), auth.TokenSpec{Name: req.Name, Project: req.Project, Role: role, Scope: req.Scope, TTL: ttl})
	if errors.Is(err, store.ErrConflict) {
		writeError(w, http.StatusConflict, "conflict", "a token named "+req.Name+" exists", "name")
		return
	}
	if err != nil {
		s.internal(w, "issue the token", err)
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		TokenView
		Token string `json:"token"`
	}{ViewToken(t), plain})
}

func (s *Server) handleTokenRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := s.d.Store.TokenByID(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "token "+id+" not found", "id")
		return
	}
	if err != nil {
		s.internal(w, "read the token", err)
		return
	}
	if !s.canManageToken(w, r, t.ID, t.Project, t.Role) {
		return
	}
	if t.RevokedAt != nil {
		writeError(w, http.StatusConflict, "conflict", "token "+id+" is already revoked", "id")
		return
	}
	if err := s.d.Auth.Revoke(r.Context(), t.ID); err != nil {
		s.internal(w, "revoke the token", err)
		return
	}
	if t, err = s.d.Store.TokenByID(r.Context(), t.ID); err != nil {
		s.internal(w, "read the token", err)
		return
	}
	writeJSON(w, http.StatusOK, ViewToken(t))
}

// ParseLifetime reads a lifetime: a Go duration ("12h", "90m") or a number of days ("30d").
func ParseLifetime(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("%q: write a number of days (30d) or a duration (12h)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: write a number of days (30d) or a duration (12h)", s)
	}
	return d, nil
}
