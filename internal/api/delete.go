package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/service"
	"github.com/berthproject/berth/internal/storage"
	"github.com/berthproject/berth/internal/store"
)

// JobDeleter is the job manager's delete, asked for by type assertion on Deps.Jobs.
type JobDeleter interface {
	Delete(ctx context.Context, id string, force bool) ([]string, error)
}

// deleted is every DELETE's answer: what was deleted, and what went with it.
type deleted struct {
	Deleted string   `json:"deleted"`
	Removed []string `json:"removed"`
}

func (s *Server) routesDelete(api router) {
	api.HandleFunc("DELETE /api/v1/jobs/{id}", s.handleDeleteJob)
	if s.d.Services != nil {
		api.HandleFunc("DELETE /api/v1/services/{name}", s.handleDeleteService)
	}
	if s.d.Store != nil && s.d.Storage != nil {
		api.HandleFunc("DELETE /api/v1/components/{id}", s.handleDeleteComponent)
		api.HandleFunc("DELETE /api/v1/configs/{id}", s.handleDeleteConfig)
		api.HandleFunc("DELETE /api/v1/storage/tables/{id}", s.handleDeleteTable)
		api.HandleFunc("DELETE /api/v1/storage/buckets/{id}", s.handleDeleteBucket)
		api.HandleFunc("DELETE /api/v1/storage/files/{id}", s.handleDeleteFile)
	}
}

// force reads ?force=true|1|false|0 ("" is false); a bad value is answered here.
func force(w http.ResponseWriter, r *http.Request) (bool, bool) {
	switch v := r.URL.Query().Get("force"); v {
	case "", "false", "0":
		return false, true
	case "true", "1":
		return true, true
	default:
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("force %q: allowed: true, false", v), "force")
		return false, false
	}
}

func (s *Server) handleDeleteJob(w http.ResponseWriter, r *http.Request) {
	j, ok := s.jobFor(w, r, authz.JobDelete)
	if !ok {
		return
	}
	f, ok := force(w, r)
	if !ok {
		return
	}
	del, ok := s.d.Jobs.(JobDeleter)
	if !ok {
		writeError(w, http.StatusNotImplemented, "unsupported", "this server cannot delete jobs", "")
		return
	}
	removed, err := del.Delete(r.Context(), j.ID, f)
	switch {
	case errors.Is(err, job.ErrActive):
		writeError(w, http.StatusConflict, "conflict", err.Error()+" (?force=true)", "force")
	case errors.Is(err, job.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no job "+j.ID, "id")
	case err != nil:
		s.internal(w, "delete job", err)
	default:
		writeJSON(w, http.StatusOK, deleted{Deleted: "job " + j.ID, Removed: removed})
	}
}

func (s *Server) handleDeleteService(w http.ResponseWriter, r *http.Request) {
	name, ok := s.canService(w, r, authz.ServiceDelete)
	if !ok {
		return
	}
	f, ok := force(w, r)
	if !ok {
		return
	}
	removed, err := s.d.Services.Delete(r.Context(), name, f)
	if errors.Is(err, service.ErrInUse) {
		writeError(w, http.StatusConflict, "conflict", err.Error(), "")
		return
	}
	if err != nil {
		s.serviceError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, deleted{Deleted: "service " + name, Removed: removed})
}

// handleDeleteComponent deletes a component: a shared one is an admin's to delete, a private
// one its project admin's.
func (s *Server) handleDeleteComponent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, _, ok := s.componentFor(w, r, id, authz.ComponentDelete); !ok {
		return
	}
	f, ok := force(w, r)
	if !ok {
		return
	}
	var removed []string
	if f {
		// With force, the configurations that use it go first, with everything of theirs.
		using, err := s.d.Store.ConfigsUsing(r.Context(), id)
		if err != nil {
			s.internal(w, "delete component", err)
			return
		}
		for _, c := range using {
			if err := s.d.Store.DeleteConfig(r.Context(), c); err != nil && !errors.Is(err, store.ErrNotFound) {
				s.internal(w, "delete component", err)
				return
			}
			removed = append(removed, "configuration "+c+" (versions, state, credentials)")
		}
	}
	err := s.d.Store.DeleteComponent(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrInUse):
		writeError(w, http.StatusConflict, "conflict", err.Error()+"; delete them first, or ?force=true", "force")
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no component "+id, "id")
	case err != nil:
		s.internal(w, "delete component", err)
	default:
		writeJSON(w, http.StatusOK, deleted{Deleted: "component " + id, Removed: append(removed, "definition")})
	}
}

func (s *Server) handleDeleteConfig(w http.ResponseWriter, r *http.Request) {
	row, ok := s.configFor(w, r, authz.ConfigDelete)
	if !ok {
		return
	}
	id := row.ID
	err := s.d.Store.DeleteConfig(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no configuration "+id, "id")
	case err != nil:
		s.internal(w, "delete configuration", err)
	default:
		writeJSON(w, http.StatusOK, deleted{Deleted: "configuration " + id,
			Removed: []string{"versions", "rows' state", "state", "stored credentials"}})
	}
}

// handleDeleteTable deletes a table of a bucket the caller may delete in (its project's).
func (s *Server) handleDeleteTable(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := s.tableAccess(w, r, authz.BucketDelete, id); !ok {
		return
	}
	n, err := s.d.Storage.DeleteTable(r.Context(), id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "table "+id+" not found", "id")
	case err != nil:
		s.internal(w, "delete table", err)
	default:
		writeJSON(w, http.StatusOK, deleted{Deleted: "table " + id, Removed: []string{fmt.Sprintf("%d row(s)", n), "metadata"}})
	}
}

// handleDeleteBucket deletes a bucket of the caller's project (its tables too with force;
// its shares always).
func (s *Server) handleDeleteBucket(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := s.bucketAccess(w, r, authz.BucketDelete, id); !ok {
		return
	}
	f, ok := force(w, r)
	if !ok {
		return
	}
	tables, err := s.d.Storage.DeleteBucket(r.Context(), id, f)
	switch {
	case errors.Is(err, storage.ErrNotEmpty):
		writeError(w, http.StatusConflict, "conflict", err.Error()+"; delete them first, or ?force=true", "force")
	case errors.Is(err, storage.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "bucket "+id+" not found", "id")
	case err != nil:
		s.internal(w, "delete bucket", err)
	default:
		removed := []string{}
		for _, t := range tables {
			removed = append(removed, "table "+t)
		}
		writeJSON(w, http.StatusOK, deleted{Deleted: "bucket " + id, Removed: removed})
	}
}

// handleDeleteFile deletes a file of the caller's project (an expired one not yet purged too).
func (s *Server) handleDeleteFile(w http.ResponseWriter, r *http.Request) {
	file, ok := s.fileAccess(w, r, authz.FileDelete, true)
	if !ok {
		return
	}
	id := file.ID
	f, err := s.d.Storage.DeleteFile(r.Context(), id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("file %d not found", id), "id")
	case err != nil:
		s.internal(w, "delete file", err)
	default:
		writeJSON(w, http.StatusOK, deleted{Deleted: fmt.Sprintf("file %d (%s)", id, f.Name),
			Removed: []string{fmt.Sprintf("content (%d bytes)", f.Size)}})
	}
}
