package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/berthproject/berth/internal/storage"
)

// routesStorage serves buckets, tables and files.
func (s *Server) routesStorage(api router) {
	api.HandleFunc("POST /api/v1/storage/buckets", s.handleCreateBucket)
	api.HandleFunc("GET /api/v1/storage/buckets", s.handleListBuckets)
	api.HandleFunc("GET /api/v1/storage/tables", s.handleListTables)
	api.HandleFunc("GET /api/v1/storage/tables/{id}", s.handleGetTable)
	api.HandleFunc("POST /api/v1/storage/tables/{id}/import", s.handleImportTable)
	api.HandleFunc("GET /api/v1/storage/tables/{id}/export", s.handleExportTable)
	api.HandleFunc("POST /api/v1/storage/files", s.handleUploadFile)
	api.HandleFunc("GET /api/v1/storage/files", s.handleListFiles)
	api.HandleFunc("GET /api/v1/storage/files/{id}/download", s.handleDownloadFile)
	api.HandleFunc("POST /api/v1/storage/files/{id}/tags", s.handleTagFile)
}

func (s *Server) handleCreateBucket(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "body: {\"id\": \"in.c-main\"}", "id")
		return
	}
	if err := s.d.Storage.CreateBucket(r.Context(), s.d.Storage.DB(), req.ID); err != nil {
		if !s.validationError(w, err) {
			s.internal(w, "create bucket", err)
		}
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": req.ID})
}

func (s *Server) handleListBuckets(w http.ResponseWriter, r *http.Request) {
	b, err := s.d.Storage.ListBuckets(r.Context())
	if err != nil {
		s.internal(w, "list buckets", err)
		return
	}
	if b == nil {
		b = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"buckets": b})
}

func (s *Server) handleListTables(w http.ResponseWriter, r *http.Request) {
	t, err := s.d.Storage.ListTables(r.Context(), r.URL.Query().Get("bucket"))
	if err != nil {
		s.internal(w, "list tables", err)
		return
	}
	if t == nil {
		t = []storage.Table{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tables": t})
}

func (s *Server) handleGetTable(w http.ResponseWriter, r *http.Request) {
	t, err := s.d.Storage.GetTable(r.Context(), s.d.Storage.DB(), r.PathValue("id"))
	if err != nil {
		if !s.validationError(w, err) {
			s.internal(w, "read table", err)
		}
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
func (s *Server) handleImportTable(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := storage.LoadOptions{Incremental: q.Get("incremental") == "1" || q.Get("incremental") == "true",
		PrimaryKey: splitList(q.Get("primary_key")), Columns: splitList(q.Get("columns"))}
	cols, rows, err := storage.ReadCSV(http.MaxBytesReader(w, r.Body, 1<<30), o.Columns)
	if err == nil {
		err = s.d.Storage.Load(r.Context(), s.d.Storage.DB(), r.PathValue("id"), cols, rows, o)
	}
	if err != nil {
		if !s.validationError(w, err) {
			s.internal(w, "load table", err)
		}
		return
	}
	t, _ := s.d.Storage.GetTable(r.Context(), s.d.Storage.DB(), r.PathValue("id"))
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) handleExportTable(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	if _, err := s.d.Storage.GetTable(r.Context(), s.d.Storage.DB(), r.PathValue("id")); err != nil {
		if !s.validationError(w, err) {
			s.internal(w, "read table", err)
		}
		return
	}
	w.Header().Set("Content-Type", "text/csv")
	if _, _, err := s.d.Storage.Export(r.Context(), r.PathValue("id"), w, storage.ExportOptions{
		Columns: splitList(q.Get("columns")), Limit: limit}); err != nil {
		s.d.Log.Error("export table", "err", err)
	}
}

func (s *Server) handleUploadFile(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := s.d.Storage.UploadFile(r.Context(), q.Get("name"), http.MaxBytesReader(w, r.Body, 1<<30), q["tag"])
	if err != nil {
		if !s.validationError(w, err) {
			s.internal(w, "upload file", err)
		}
		return
	}
	writeJSON(w, http.StatusCreated, f)
}

func (s *Server) handleListFiles(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	f, err := s.d.Storage.ListFiles(r.Context(), r.URL.Query()["tag"], limit)
	if err != nil {
		s.internal(w, "list files", err)
		return
	}
	if f == nil {
		f = []storage.File{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"files": f})
}

func fileID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "a file id is a number", "id")
		return 0, false
	}
	return id, true
}

func (s *Server) handleDownloadFile(w http.ResponseWriter, r *http.Request) {
	id, ok := fileID(w, r)
	if !ok {
		return
	}
	rc, f, err := s.d.Storage.OpenFile(r.Context(), id)
	if err != nil {
		if !s.validationError(w, err) {
			s.internal(w, "open file", err)
		}
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", f.Name))
	io.Copy(w, rc)
}

func (s *Server) handleTagFile(w http.ResponseWriter, r *http.Request) {
	id, ok := fileID(w, r)
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
	f, err := s.d.Storage.TagFile(r.Context(), id, req.Tags)
	if err != nil {
		if !s.validationError(w, err) {
			s.internal(w, "tag file", err)
		}
		return
	}
	writeJSON(w, http.StatusOK, f)
}
