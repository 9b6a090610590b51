package api

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/store"
)

// The audit log records, after it is served, every state-changing request to the API
// (POST, PUT, PATCH, DELETE), the ones refused too; every sign-in at /signin and by link;
// and every job's end. Entries name the actor, the route pattern, the resource by its path
// values, the remote address, the outcome and the status: never a body, a token or a secret.

// auditNote travels in a request's context through the authentication layer, which fills
// in the principal and the request the API's mux sets the route pattern on.
type auditNote struct {
	p   auth.Principal
	req *http.Request
}

type auditKey struct{}

// noteRequest sits inside auth.Middleware: it hands the audit layer the principal and the
// request the API's mux routes.
func noteRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n, ok := r.Context().Value(auditKey{}).(*auditNote); ok {
			n.p, _ = auth.FromContext(r.Context())
			n.req = r
		}
		next.ServeHTTP(w, r)
	})
}

// audited wraps the whole server (outside authentication, so that 401s are seen) and
// records what the audit log keeps. apiMux names the route of a request refused before
// routing.
func (s *Server) audited(next http.Handler, apiMux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		signin := (r.Method == http.MethodPost && r.URL.Path == "/signin") ||
			(r.Method == http.MethodGet && r.URL.Path == "/signin/link")
		if s.d.Store == nil || strings.HasPrefix(r.URL.Path, "/proxy/") || !(signin || stateChanging(r.Method)) {
			next.ServeHTTP(w, r)
			return
		}
		note := &auditNote{}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		r = r.WithContext(context.WithValue(r.Context(), auditKey{}, note))
		next.ServeHTTP(rec, r)
		e := store.AuditEntry{At: time.Now(), Remote: remoteHost(r.RemoteAddr), Status: rec.status, Outcome: outcomeOf(rec.status)}
		switch {
		case signin && r.Pattern != "/":
			e.Action = r.Method + " " + r.URL.Path
			e.Resource, e.Detail = "session", "sign-in by token"
			if r.URL.Path == "/signin/link" {
				e.Detail = "sign-in by link"
			}
			if e.Outcome == store.AuditOK {
				s.signedInActor(r.Context(), rec.Header(), &e)
			}
		case !stateChanging(r.Method) || r.Pattern != "/": // not the API (sign-out, the proxy)
			return
		default:
			// Through authentication the principal and the route are known; a request refused
			// before (no or bad credentials, 401) has no actor, and its route is looked up.
			var pattern string
			if note.req != nil {
				e.ActorID, e.ActorName, e.Project = note.p.TokenID, note.p.Name, note.p.Project
				pattern = note.req.Pattern
			}
			if pattern == "" || pattern == "/" {
				_, pattern = apiMux.Handler(r)
			}
			if pattern == "" || pattern == "/" {
				pattern = r.Method + " " + r.URL.Path
			}
			e.Action, e.Resource = pattern, resourceOf(pattern, r.URL.Path)
		}
		s.appendAudit(r.Context(), e)
	})
}

// signedInActor names the token a successful sign-in made a session for, from the session
// cookie the response sets.
func (s *Server) signedInActor(ctx context.Context, h http.Header, e *store.AuditEntry) {
	if s.d.Auth == nil {
		return
	}
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name != auth.CookieName || c.Value == "" {
			continue
		}
		if p, err := s.d.Auth.VerifySession(ctx, c.Value); err == nil {
			e.ActorID, e.ActorName, e.Project = p.TokenID, p.Name, p.Project
		}
	}
}

func (s *Server) appendAudit(ctx context.Context, e store.AuditEntry) {
	if s.d.Store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.d.Store.AppendAudit(ctx, e); err != nil {
		s.d.Log.Error("append audit entry", "action", e.Action, "err", err)
	}
}

// auditJob records a job's end: the actor is its owner, the project its project.
func (s *Server) auditJob(j job.Job) {
	detail := "state=" + string(j.State)
	if j.Reason != "" {
		detail += " reason=" + string(j.Reason)
	}
	at := time.Now()
	if j.FinishedAt != nil {
		at = *j.FinishedAt
	}
	outcome := store.AuditOK
	if j.State != job.StateSucceeded && j.State != job.StateCancelled {
		outcome = store.AuditError
	}
	s.appendAudit(context.Background(), store.AuditEntry{At: at, ActorName: j.Owner, Project: j.Project,
		Action: "job.finished", Resource: "job " + j.ID, Outcome: outcome, Detail: detail})
}

func stateChanging(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// outcomeOf classifies a status: 2xx and 3xx ok, 401/403/404 denied, anything else error.
func outcomeOf(status int) string {
	switch {
	case status < 400:
		return store.AuditOK
	case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusNotFound:
		return store.AuditDenied
	}
	return store.AuditError
}

func remoteHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// resourceOf names what a request acted on from its route pattern and path: each wildcard
// after the literal that names its kind ("job j_1", "service web", "component c action run"),
// or the path when the pattern has none.
func resourceOf(pattern, path string) string {
	_, pp, ok := strings.Cut(pattern, " ")
	if !ok || !strings.Contains(pp, "{") {
		return path
	}
	ps := strings.Split(strings.Trim(pp, "/"), "/")
	xs := strings.Split(strings.Trim(path, "/"), "/")
	var parts []string
	for i, seg := range ps {
		if !strings.HasPrefix(seg, "{") || i >= len(xs) {
			continue
		}
		val := xs[i]
		if strings.HasSuffix(seg, "...}") {
			val = strings.Join(xs[i:], "/")
		}
		if i > 0 && !strings.HasPrefix(ps[i-1], "{") {
			parts = append(parts, singular(ps[i-1]))
		}
		parts = append(parts, val)
	}
	if len(parts) == 0 {
		return path
	}
	return strings.Join(parts, " ")
}

func singular(s string) string {
	switch {
	case strings.HasSuffix(s, "ies"):
		return strings.TrimSuffix(s, "ies") + "y"
	case strings.HasSuffix(s, "s"):
		return strings.TrimSuffix(s, "s")
	}
	return s
}

func (s *Server) routesAudit(api router) {
	if s.d.Store == nil {
		return
	}
	api.HandleFunc("GET /api/v1/audit", s.handleAuditList)
}

// everyProject is no project's id: asking authz about it is asking for all projects at once.
const everyProject = "*"

func (s *Server) handleAuditList(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	q := r.URL.Query()
	f := store.AuditFilter{Project: q.Get("project"), Actor: q.Get("actor"), Action: q.Get("action"), Limit: 100}
	if f.Project == "" {
		// Every project's entries (and those of no project: refused sign-ins and requests)
		// for who may read them all; the caller's own project's for the others.
		if authz.Can(p, authz.AuditRead, authz.Resource{Kind: "audit", Project: everyProject}) != nil {
			f.Project = p.Project
		}
	}
	if f.Project != "" && !s.can(w, r, authz.AuditRead, authz.Resource{Kind: "audit", ID: f.Project, Project: f.Project}) {
		return
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		v := q.Get(t.name)
		if v == "" {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", t.name+": an RFC 3339 time such as 2026-01-02T15:04:05Z", t.name)
			return
		}
		*t.dst = ts
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "bad_request", "limit: a number from 1 to 1000", "limit")
			return
		}
		f.Limit = n
	}
	entries, err := s.d.Store.ListAudit(r.Context(), f)
	if err != nil {
		s.internal(w, "list the audit log", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}
