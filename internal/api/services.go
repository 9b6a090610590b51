package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/berthproject/berth/internal/auth"
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
	case errors.As(err, &se):
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": map[string]any{
			"code": "service_unavailable", "message": se.Reason, "log_tail": se.LogTail}})
	default:
		s.internal(w, "service", err)
	}
}

// handleCreateService takes a tar of the service folder: ?name=&package=.
func (s *Server) handleCreateService(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, 256<<20)
	if !ok {
		return
	}
	p, _ := auth.FromContext(r.Context())
	svc, err := s.d.Services.Create(r.Context(), p.Project, r.URL.Query().Get("name"), r.URL.Query().Get("package"), body)
	if err != nil {
		s.serviceError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, svc)
}

func (s *Server) handleListServices(w http.ResponseWriter, r *http.Request) {
	list, err := s.d.Services.List(r.Context())
	if err != nil {
		s.internal(w, "list services", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"services": list})
}

func (s *Server) handleGetService(w http.ResponseWriter, r *http.Request) {
	svc, err := s.d.Services.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		s.serviceError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, svc)
}

func (s *Server) handleStartService(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !s.d.Services.Exists(r.Context(), name) {
		s.serviceError(w, fmt.Errorf("service %s: %w", name, service.ErrNotFound))
		return
	}
	if _, err := s.d.Services.Ensure(r.Context(), name); err != nil {
		s.serviceError(w, err)
		return
	}
	s.handleGetService(w, r)
}

func (s *Server) handleStopService(w http.ResponseWriter, r *http.Request) {
	if err := s.d.Services.Stop(r.Context(), r.PathValue("name"), false); err != nil {
		s.serviceError(w, err)
		return
	}
	s.handleGetService(w, r)
}

func (s *Server) handleRebuildService(w http.ResponseWriter, r *http.Request) {
	if err := s.d.Services.Rebuild(r.Context(), r.PathValue("name")); err != nil {
		s.serviceError(w, err)
		return
	}
	s.handleGetService(w, r)
}

// handleServiceLogs streams the container's output as text (?follow=1 keeps it open).
func (s *Server) handleServiceLogs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !s.d.Services.Exists(r.Context(), name) {
		s.serviceError(w, fmt.Errorf("service %s: %w", name, service.ErrNotFound))
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
		name := r.PathValue("name")
		if !s.d.Services.Exists(r.Context(), name) {
			s.serviceError(w, fmt.Errorf("service %s: %w", name, service.ErrNotFound))
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

// handlePutEntity stores a package's entity (a connection or secret, JSON) for
// #{x.Package:Entity} expressions in services' env. Admin only; the value is never shown.
func (s *Server) handlePutEntity(w http.ResponseWriter, r *http.Request) {
	if p, _ := auth.FromContext(r.Context()); !p.IsAdmin() {
		writeError(w, http.StatusForbidden, "forbidden", "storing an entity needs an admin token", "")
		return
	}
	body, ok := readBody(w, r, 1<<20)
	if !ok {
		return
	}
	p, _ := auth.FromContext(r.Context())
	if err := s.d.Services.PutEntity(r.Context(), p.Project, r.PathValue("pkg"), r.PathValue("name"), json.RawMessage(body)); err != nil {
		s.serviceError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
