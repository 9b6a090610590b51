package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/service"
	"github.com/berthproject/berth/internal/spec"
)

func (s *Server) routesServices(api router) {
	if s.d.Services == nil {
		return
	}
	api.HandleFunc("POST /api/v1/services", s.handleCreateService)
	api.HandleFunc("GET /api/v1/services", s.handleListServices)
	api.HandleFunc("GET /api/v1/services/{name}", s.handleGetService)
	api.HandleFunc("POST /api/v1/services/{name}/start", s.handleStartService)
	api.HandleFunc("POST /api/v1/services/{name}/stop", s.handleStopService)
	api.HandleFunc("POST /api/v1/services/{name}/rebuild", s.handleRebuildService)
	api.HandleFunc("GET /api/v1/services/{name}/logs", s.handleServiceLogs)
	api.HandleFunc("GET /api/v1/services/{name}/build-log", s.handleServiceFile(func(n string) string { return s.d.Services.BuildLogPath(n) }, "text/plain; charset=utf-8"))
	api.HandleFunc("GET /api/v1/services/{name}/context", s.handleServiceFile(func(n string) string { return s.d.Services.ContextPath(n) }, "application/x-tar"))
	api.HandleFunc("PUT /api/v1/packages/{pkg}/entities/{name}", s.handlePutEntity)
}

func (s *Server) serviceError(w http.ResponseWriter, err error) {
	var ve *spec.ValidationError
	var se *service.StartError
	switch {
	case errors.As(err, &ve):
		writeProblems(w, "invalid", ve)
	case errors.Is(err, service.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error(), "name")
	case errors.Is(err, service.ErrNameTaken):
		writeError(w, http.StatusConflict, "conflict", err.Error()+": service names are the proxy's paths, one per server", "name")
	case errors.Is(err, service.ErrImageProject):
		writeError(w, http.StatusForbidden, "forbidden", err.Error(), "image")
	case errors.Is(err, service.ErrPackageFixed):
		writeError(w, http.StatusConflict, "conflict", err.Error(), "package")
	case errors.As(err, &se):
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": map[string]any{
			"code": "service_unavailable", "message": se.Reason, "log_tail": se.LogTail}})
	default:
		s.internal(w, "service", err)
	}
}

// handleCreateService takes a tar of the service folder: ?name=&package=; or, with
// ?image=<ref> (a published image), the service's container.json (may be empty).
func (s *Server) handleCreateService(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	name := r.URL.Query().Get("name")
	if !s.can(w, r, authz.ServiceCreate, authz.Resource{Kind: "service", ID: name, Project: p.Project}) {
		return
	}
	body, ok := readBody(w, r, 256<<20)
	if !ok {
		return
	}
	var svc service.Service
	var err error
	if ref := r.URL.Query().Get("image"); ref != "" {
		svc, err = s.d.Services.CreateFromImage(r.Context(), p.Project, name, r.URL.Query().Get("package"), ref, body)
	} else {
		svc, err = s.d.Services.Create(r.Context(), p.Project, name, r.URL.Query().Get("package"), body)
	}
	if err != nil {
		s.serviceError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, svc)
}

// handleListServices lists the caller's project's services; an admin sees every project's,
// or one project's with ?project=.
func (s *Server) handleListServices(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	project := r.URL.Query().Get("project") // "": every project the caller may see
	if !s.can(w, r, authz.ServiceRead, authz.Resource{Kind: "project", ID: project, Project: project}) {
		return
	}
	list, err := s.d.Services.List(r.Context())
	if err != nil {
		s.internal(w, "list services", err)
		return
	}
	out := []service.Service{}
	for _, sv := range list {
		if authz.Visible(p, sv.Project) && (project == "" || sv.Project == project) {
			out = append(out, sv)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"services": out})
}

// canService asks authz whether the caller may do a on the service named in the path, with
// the service's project from memory. A service that does not exist is asked about as one of
// no project, so the caller learns of it exactly what it would of another project's: its
// answer does not tell a foreign service from a missing one.
func (s *Server) canService(w http.ResponseWriter, r *http.Request, a authz.Action) (string, bool) {
	name := r.PathValue("name")
	project, ok := s.d.Services.Project(name)
	if !ok {
		project = noProject
	}
	if !s.can(w, r, a, authz.Resource{Kind: "service", ID: name, Project: project}) {
		return name, false
	}
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "service "+name+" not found", "name")
		return name, false
	}
	return name, true
}

// noProject is no project's id (ids are [a-z0-9-]): the owner of what does not exist.
const noProject = "\x00none"

func (s *Server) handleGetService(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.canService(w, r, authz.ServiceRead); !ok {
		return
	}
	s.writeService(w, r)
}

// writeService answers the service named in the path, once the caller was let through.
func (s *Server) writeService(w http.ResponseWriter, r *http.Request) {
	svc, err := s.d.Services.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		s.serviceError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, svc)
}

func (s *Server) handleStartService(w http.ResponseWriter, r *http.Request) {
	name, ok := s.canService(w, r, authz.ServiceOperate)
	if !ok {
		return
	}
	if _, err := s.d.Services.Ensure(r.Context(), name); err != nil {
		s.serviceError(w, err)
		return
	}
	s.writeService(w, r)
}

func (s *Server) handleStopService(w http.ResponseWriter, r *http.Request) {
	name, ok := s.canService(w, r, authz.ServiceOperate)
	if !ok {
		return
	}
	if err := s.d.Services.Stop(r.Context(), name, false); err != nil {
		s.serviceError(w, err)
		return
	}
	s.writeService(w, r)
}

func (s *Server) handleRebuildService(w http.ResponseWriter, r *http.Request) {
	name, ok := s.canService(w, r, authz.ServiceOperate)
	if !ok {
		return
	}
	if err := s.d.Services.Rebuild(r.Context(), name); err != nil {
		s.serviceError(w, err)
		return
	}
	s.writeService(w, r)
}

// handleServiceLogs streams the container's output as text (?follow=1 keeps it open).
func (s *Server) handleServiceLogs(w http.ResponseWriter, r *http.Request) {
	name, ok := s.canService(w, r, authz.ServiceRead)
	if !ok {
		return
	}
	win, ok := logWindow(w, r)
	if !ok {
		return
	}
	win.Follow = r.URL.Query().Get("follow") == "1"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
	if err := s.d.Services.LogsWindow(r.Context(), name, serviceWindow(win), fw, fw); err != nil && r.Context().Err() == nil {
		if !fw.wrote {
			writeError(w, http.StatusConflict, "not_running", err.Error(), "")
		}
	}
}

type flushWriter struct {
	w     io.Writer
	rc    *http.ResponseController
	wrote bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.wrote = true
	n, err := f.w.Write(p)
	f.rc.Flush()
	return n, err
}

func (s *Server) handleServiceFile(path func(string) string, ctype string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, ok := s.canService(w, r, authz.ServiceRead)
		if !ok {
			return
		}
		f, err := os.Open(path(name))
		if err != nil {
			writeError(w, http.StatusNotFound, "not_found", "nothing stored yet for "+name, "")
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", ctype)
		http.ServeContent(w, r, "", time.Time{}, f)
	}
}

// handlePutEntity stores an entity (a connection or secret, JSON) of a package of the
// caller's project, for #{x.Package:Entity} expressions in that project's services' env. The
// value is never shown.
func (s *Server) handlePutEntity(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if !s.can(w, r, authz.EntityWrite, authz.Resource{Kind: "entity", ID: r.PathValue("pkg") + ":" + r.PathValue("name"), Project: p.Project}) {
		return
	}
	body, ok := readBody(w, r, 1<<20)
	if !ok {
		return
	}
	if err := s.d.Services.PutEntity(r.Context(), p.Project, r.PathValue("pkg"), r.PathValue("name"), json.RawMessage(body)); err != nil {
		s.serviceError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
