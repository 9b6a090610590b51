package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/image"
)

// Images is what the API needs of the image records and their collector (image.Collector).
type Images interface {
	List(ctx context.Context) ([]image.Record, error)
	Remove(ctx context.Context, ref string) (image.Record, error)
	Run(ctx context.Context, dryRun bool) (image.Plan, error)
	Policy() image.Policy
}

var _ Images = (*image.Collector)(nil)

// Images are the whole server's: listing them is a server read, removing them and running the
// collector an admin's image management.
func (s *Server) routesImages(api router) {
	api.HandleFunc("GET /api/v1/images", s.handleImageList)
	api.HandleFunc("DELETE /api/v1/images/{ref...}", s.handleImageRemove)
	api.HandleFunc("POST /api/v1/images/gc", s.handleImageGC)
}

// imageList is GET /api/v1/images's answer.
type imageList struct {
	Images []image.Record `json:"images"`
	// RemovableSize is the estimated size of the removable images, which the limit bounds.
	RemovableSize int64 `json:"removable_size"`
	Limit         int64 `json:"limit"`
	Low           int64 `json:"low"`
}

func (s *Server) images(w http.ResponseWriter) bool {
	if s.d.Images == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "this server keeps no image records", "")
		return false
	}
	return true
}

func (s *Server) handleImageList(w http.ResponseWriter, r *http.Request) {
	if !s.can(w, r, authz.ServerRead, authz.Resource{Kind: "images"}) || !s.images(w) {
		return
	}
	list, err := s.d.Images.List(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error(), "")
		return
	}
	p := s.d.Images.Policy()
	out := imageList{Images: list, Limit: p.Limit, Low: p.Low}
	if out.Images == nil {
		out.Images = []image.Record{}
	}
	out.RemovableSize = image.Choose(list, image.Policy{}, time.Now()).Total
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleImageRemove(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("ref")
	if !s.can(w, r, authz.ImageManage, authz.Resource{Kind: "image", ID: ref}) || !s.images(w) {
		return
	}
	rec, err := s.d.Images.Remove(r.Context(), ref)
	switch {
	case errors.Is(err, image.ErrNotRecorded):
		writeError(w, http.StatusNotFound, "not_found", err.Error(), "ref")
	case errors.Is(err, image.ErrBaseImage):
		writeError(w, http.StatusConflict, "base_image", err.Error(), "ref")
	case errors.Is(err, image.ErrInUse):
		writeError(w, http.StatusConflict, "in_use", err.Error(), "ref")
	case err != nil:
		writeError(w, http.StatusInternalServerError, "internal", err.Error(), "")
	default:
		writeJSON(w, http.StatusOK, map[string]any{"deleted": "image " + ref, "removed": []string{}, "image": rec})
	}
}

func (s *Server) handleImageGC(w http.ResponseWriter, r *http.Request) {
	if !s.can(w, r, authz.ImageManage, authz.Resource{Kind: "images"}) || !s.images(w) {
		return
	}
	dry := false
	if v := r.URL.Query().Get("dry_run"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "dry_run: want true or false", "dry_run")
			return
		}
		dry = b
	}
	plan, err := s.d.Images.Run(r.Context(), dry)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error(), "")
		return
	}
	writeJSON(w, http.StatusOK, plan)
}
