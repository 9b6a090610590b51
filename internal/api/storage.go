package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/storage"
	"github.com/berthproject/berth/internal/store"
)

// routesStorage serves buckets, tables and files. Buckets and files belong to a project,
// tables to their bucket's: every handler asks authz with the owner and the bucket's shares,
// so a bucket of another project is not found unless it is shared (then readable only).
func (s *Server) routesStorage(api router) {
	api.HandleFunc("POST /api/v1/storage/buckets", s.handleCreateBucket)
	api.HandleFunc("GET /api/v1/storage/buckets", s.handleListBuckets)
	api.HandleFunc("POST /api/v1/storage/buckets/{id}/shares", s.handleShareBucket)
	api.HandleFunc("DELETE /api/v1/storage/buckets/{id}/shares/{project}", s.handleUnshareBucket)
	api.HandleFunc("GET /api/v1/storage/tables", s.handleListTables)
	api.HandleFunc("GET /api/v1/storage/tables/{id}", s.handleGetTable)
	api.HandleFunc("POST /api/v1/storage/tables/{id}/import", s.handleImportTable)
	api.HandleFunc("GET /api/v1/storage/tables/{id}/export", s.handleExportTable)
	api.HandleFunc("POST /api/v1/storage/files", s.handleUploadFile)
	api.HandleFunc("GET /api/v1/storage/files", s.handleListFiles)
	api.HandleFunc("GET /api/v1/storage/files/{id}/download", s.handleDownloadFile)
	api.HandleFunc("POST /api/v1/storage/files/{id}/tags", s.handleTagFile)
	api.HandleFunc("GET /api/v1/storage/usage", s.handleStorageUsage)
}

// bucketResource is what authz decides on for a bucket (kind "bucket") or a table in it.
func bucketResource(kind, id string, b storage.Bucket) authz.Resource {
	return authz.Resource{Kind: kind, ID: id, Project: b.Project, SharedWith: b.SharedWith, Bucket: b.ID}
}

// storageError answers a storage error: over the quota 413, a bucket of another project
// 409, a bad request 422, a missing thing 404, anything else 500.
func (s *Server) storageError(w http.ResponseWriter, what string, err error) {
	var qe *storage.QuotaError
	switch {
	case errors.As(err, &qe):
		writeError(w, http.StatusRequestEntityTooLarge, "quota_exceeded", qe.Error(), "")
	case errors.Is(err, storage.ErrConflict):
		writeError(w, http.StatusConflict, "conflict", err.Error(), "id")
	case s.validationError(w, err):
	default:
		s.internal(w, what, err)
	}
}

// bucketAccess finds a bucket and asks authz whether the caller may do a on it; a missing
// bucket and one the caller may not know of answer the same 404.
func (s *Server) bucketAccess(w http.ResponseWriter, r *http.Request, a authz.Action, id string) (storage.Bucket, bool) {
	b, err := s.d.Storage.GetBucket(r.Context(), s.d.Storage.DB(), id)
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "bucket "+id+" not found", "id")
		return b, false
	}
	if err != nil {
		s.internal(w, "read bucket", err)
		return b, false
	}
	return b, s.can(w, r, a, bucketResource("bucket", id, b))
}

// tableAccess is bucketAccess for a table: the table's bucket decides.
func (s *Server) tableAccess(w http.ResponseWriter, r *http.Request, a authz.Action, id string) (storage.Bucket, bool) {
	b, err := s.d.Storage.TableBucket(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "table "+id+" not found", "id")
		return b, false
	}
	if err != nil {
		s.internal(w, "read table", err)
		return b, false
	}
	return b, s.can(w, r, a, bucketResource("table", id, b))
}

// inProject keeps what authz lets the caller read, of the ?project= asked for (every
// project the caller may see when none is asked).
func inProject(r *http.Request, project string) bool {
	want := r.URL.Query().Get("project")
	return want == "" || want == project
}

func (s *Server) handleCreateBucket(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "body: {\"id\": \"in.c-main\"}", "id")
		return
	}
	p := principal(r)
	if !s.can(w, r, authz.BucketCreate, authz.Resource{Kind: "bucket", ID: req.ID, Project: p.Project, Bucket: req.ID}) {
		return
	}
	if err := s.d.Storage.CreateBucket(r.Context(), s.d.Storage.DB(), p.Project, req.ID); err != nil {
		s.storageError(w, "create bucket", err)
		return
	}
	b, err := s.d.Storage.GetBucket(r.Context(), s.d.Storage.DB(), req.ID)
	if err != nil {
		s.internal(w, "create bucket", err)
		return
	}
	writeJSON(w, http.StatusCreated, b)
}

// handleListBuckets lists the buckets the caller may read: its project's and those shared
// with it (every project's for an admin, ?project= to pick one).
func (s *Server) handleListBuckets(w http.ResponseWriter, r *http.Request) {
	all, err := s.d.Storage.ListBuckets(r.Context())
	if err != nil {
		s.internal(w, "list buckets", err)
		return
	}
	p := principal(r)
	out := []storage.Bucket{}
	for _, b := range all {
		if inProject(r, b.Project) && authz.Can(p, authz.BucketRead, bucketResource("bucket", b.ID, b)) == nil {
			out = append(out, b)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"buckets": out})
}

// handleShareBucket makes a bucket readable in another project: {"project": "p2"}.
func (s *Server) handleShareBucket(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := s.bucketAccess(w, r, authz.BucketShare, id); !ok {
		return
	}
	var req struct {
		Project string `json:"project"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Project == "" {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "body: {\"project\": \"<project to share with>\"}", "project")
		return
	}
	if _, err := s.d.Store.GetProject(r.Context(), req.Project); errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusUnprocessableEntity, "invalid", fmt.Sprintf("project %q does not exist", req.Project), "project")
		return
	} else if err != nil {
		s.internal(w, "share bucket", err)
		return
	}
	b, err := s.d.Storage.ShareBucket(r.Context(), id, req.Project)
	if errors.Is(err, storage.ErrInvalid) {
		writeError(w, http.StatusUnprocessableEntity, "invalid", err.Error(), "project")
		return
	}
	if err != nil {
		s.storageError(w, "share bucket", err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) handleUnshareBucket(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := s.bucketAccess(w, r, authz.BucketShare, id); !ok {
		return
	}
	b, err := s.d.Storage.UnshareBucket(r.Context(), id, r.PathValue("project"))
	if err != nil {
		s.storageError(w, "unshare bucket", err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// handleListTables lists the tables of the buckets the caller may read (?bucket= one).
func (s *Server) handleListTables(w http.ResponseWriter, r *http.Request) {
	t, err := s.d.Storage.ListTables(r.Context(), r.URL.Query().Get("bucket"))
	if err != nil {
		s.internal(w, "list tables", err)
		return
	}
	buckets, err := s.d.Storage.ListBuckets(r.Context())
	if err != nil {
		s.internal(w, "list tables", err)
		return
	}
	byID := map[string]storage.Bucket{}
	for _, b := range buckets {
		byID[b.ID] = b
	}
	p := principal(r)
	out := []storage.Table{}
	for _, tb := range t {
		if inProject(r, tb.Project) && authz.Can(p, authz.BucketRead, bucketResource("table", tb.ID, byID[tb.Bucket])) == nil {
			out = append(out, tb)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tables": out})
}

func (s *Server) handleGetTable(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.tableAccess(w, r, authz.BucketRead, r.PathValue("id")); !ok {
		return
	}
	t, err := s.d.Storage.GetTable(r.Context(), s.d.Storage.DB(), r.PathValue("id"))
	if err != nil {
		s.storageError(w, "read table", err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// handleImportTable loads a CSV body: ?incremental=1&primary_key=a,b&columns=a,b (header-less).
// Into a bucket of the caller's project (one it creates there when missing), within the
// project's storage quota: over it, nothing is loaded (413).
func (s *Server) handleImportTable(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	bucketID, _, err := storage.SplitTableID(id)
	if err != nil {
		s.storageError(w, "load table", err)
		return
	}
	p := principal(r)
	project := p.Project
	b, err := s.d.Storage.GetBucket(r.Context(), s.d.Storage.DB(), bucketID)
	switch {
	case err == nil:
		if !s.can(w, r, authz.BucketWrite, bucketResource("table", id, b)) {
			return
		}
		project = b.Project // an admin writes into the bucket's project
	case errors.Is(err, storage.ErrNotFound):
		b = storage.Bucket{ID: bucketID, Project: project}
		if !s.can(w, r, authz.BucketCreate, bucketResource("bucket", bucketID, b)) ||
			!s.can(w, r, authz.BucketWrite, bucketResource("table", id, b)) {
			return
		}
	default:
		s.internal(w, "load table", err)
		return
	}
	q := r.URL.Query()
	o := storage.LoadOptions{Project: project, Incremental: q.Get("incremental") == "1" || q.Get("incremental") == "true",
		PrimaryKey: splitList(q.Get("primary_key")), Columns: splitList(q.Get("columns"))}
	// The body is spooled and checked before the transaction begins (a slow upload holds no
	// transaction open), then streams into the table engine; a malformed row keeps nothing.
	c, err := s.d.Storage.PrepareCSV(r.Context(), http.MaxBytesReader(w, r.Body, 1<<30), o.Columns)
	if err == nil {
		defer c.Close()
		err = s.d.Storage.InQuota(r.Context(), project, func(tx storage.Q) error {
			_, err := s.d.Storage.LoadPrepared(r.Context(), tx, id, c, o)
			return err
		})
	}
	if err != nil {
		s.storageError(w, "load table", err)
		return
	}
	t, _ := s.d.Storage.GetTable(r.Context(), s.d.Storage.DB(), id)
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) handleExportTable(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	if _, ok := s.tableAccess(w, r, authz.BucketRead, r.PathValue("id")); !ok {
		return
	}
	w.Header().Set("Content-Type", "text/csv")
	if _, _, err := s.d.Storage.Export(r.Context(), r.PathValue("id"), w, storage.ExportOptions{
		Columns: splitList(q.Get("columns")), Limit: limit}); err != nil {
		s.d.Log.Error("export table", "err", err)
	}
}

// handleUploadFile stores a body as a file of the caller's project, within its quota.
func (s *Server) handleUploadFile(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if !s.can(w, r, authz.FileWrite, authz.Resource{Kind: "file", Project: p.Project}) {
		return
	}
	q := r.URL.Query()
	f, err := s.d.Storage.Upload(r.Context(), p.Project, q.Get("name"), http.MaxBytesReader(w, r.Body, 1<<30), q["tag"])
	if err != nil {
		s.storageError(w, "upload file", err)
		return
	}
	writeJSON(w, http.StatusCreated, f)
}

// handleListFiles lists the files the caller may read (?tag= each, ?project= for an admin).
func (s *Server) handleListFiles(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	all, err := s.d.Storage.Files(r.Context(), storage.FileQuery{Project: r.URL.Query().Get("project"), Tags: r.URL.Query()["tag"]})
	if err != nil {
		s.internal(w, "list files", err)
		return
	}
	p := principal(r)
	out := []storage.File{}
	for _, f := range all {
		if limit > 0 && len(out) >= limit {
			break
		}
		if authz.Can(p, authz.FileRead, fileResource(f)) == nil {
			out = append(out, f)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"files": out})
}

func fileResource(f storage.File) authz.Resource {
	return authz.Resource{Kind: "file", ID: strconv.FormatInt(f.ID, 10), Project: f.Project}
}

func fileID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("file id %q: a positive number", r.PathValue("id")), "id")
		return 0, false
	}
	return id, true
}

// fileAccess finds a file (an expired one too when withExpired) and asks authz whether the
// caller may do a on it; a missing file and one the caller may not know of answer the same 404.
func (s *Server) fileAccess(w http.ResponseWriter, r *http.Request, a authz.Action, withExpired bool) (storage.File, bool) {
	id, ok := fileID(w, r)
	if !ok {
		return storage.File{}, false
	}
	get := s.d.Storage.GetFile
	if withExpired {
		get = s.d.Storage.StoredFile
	}
	f, err := get(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("file %d not found", id), "id")
		return f, false
	}
	if err != nil {
		s.internal(w, "read file", err)
		return f, false
	}
	return f, s.can(w, r, a, fileResource(f))
}

func (s *Server) handleDownloadFile(w http.ResponseWriter, r *http.Request) {
	f, ok := s.fileAccess(w, r, authz.FileRead, false)
	if !ok {
		return
	}
	rc, f, err := s.d.Storage.OpenFile(r.Context(), f.ID)
	if err != nil {
		s.storageError(w, "open file", err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", f.Name))
	io.Copy(w, rc)
}

func (s *Server) handleTagFile(w http.ResponseWriter, r *http.Request) {
	f, ok := s.fileAccess(w, r, authz.FileWrite, false)
	if !ok {
		return
	}
	var req struct {
		Tags []string `json:"tags"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "body: {\"tags\": [\"a\"]}", "tags")
		return
	}
	f, err := s.d.Storage.TagFile(r.Context(), f.ID, req.Tags)
	if err != nil {
		s.storageError(w, "tag file", err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

// handleStorageUsage answers a project's storage usage and quota: the caller's, or
// ?project= (an admin's question).
func (s *Server) handleStorageUsage(w http.ResponseWriter, r *http.Request) {
	project := r.URL.Query().Get("project")
	if project == "" {
		project = principal(r).Project
	}
	if !s.can(w, r, authz.ProjectRead, authz.Resource{Kind: "project", ID: project, Project: project}) {
		return
	}
	limit, err := s.d.Storage.QuotaOf(r.Context(), s.d.Storage.DB(), project)
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "project "+project+" not found", "project")
		return
	}
	if err != nil {
		s.internal(w, "storage usage", err)
		return
	}
	used, err := s.d.Storage.ProjectUsage(r.Context(), s.d.Storage.DB(), project)
	if err != nil {
		s.internal(w, "storage usage", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"project": project, "bytes": used, "limit": limit})
}
