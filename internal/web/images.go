package web

import (
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/image"
)

type imageRow struct {
	Ref, Kind, Size, Created, LastUsed, Keep string
	InUse, Removable                         bool
	Labels                                   []string
	BuildLog                                 string
	Remove                                   string // DELETE URL ("": no button)
}

type imagesData struct {
	Rows             []imageRow
	Total, Removable string
	Limit, Low       string
	LimitB, RemovB   int64
	Over             bool
	Kind             string
	Kinds            []string
	CanManage        bool
}

var imageKinds = []string{image.KindBase, image.KindGenerated, image.KindService, image.KindComponent, image.KindCustom}

// handleImages lists berth's images as GET /api/v1/images does (the whole server's: whom
// may read the server's figures), with the removable images' disk use against the limit the
// collector keeps them under, and, for an admin, a button to remove each removable one.
func (u *UI) handleImages(w http.ResponseWriter, r *http.Request) {
	p, ok := u.principal(w, r)
	if !ok {
		return
	}
	if !u.can(w, r, p, authz.ServerRead, authz.Resource{Kind: "images"}) {
		return
	}
	list, err := u.d.Images.List(r.Context())
	if err != nil {
		u.internal(w, r, "list the images", err)
		return
	}
	pol := u.d.Images.Policy()
	removable := image.Choose(list, image.Policy{}, u.d.Now()).Total
	kind := r.URL.Query().Get("kind")
	d := imagesData{Removable: size(removable), RemovB: removable, LimitB: pol.Limit, Kind: kind, Kinds: imageKinds,
		CanManage: allowed(p, authz.ImageManage, authz.Resource{Kind: "images"})}
	if pol.Limit > 0 {
		d.Limit, d.Low, d.Over = size(pol.Limit), size(pol.Low), removable > pol.Limit
	}
	// Newest use first; never-used images last.
	sort.SliceStable(list, func(i, j int) bool { return used(list[i]).After(used(list[j])) })
	var total int64
	seen := map[string]bool{}
	for _, rec := range list {
		if !seen[rec.ID] {
			seen[rec.ID] = true
			total += rec.Size
		}
		if kind != "" && rec.Kind != kind {
			continue
		}
		row := imageRow{Ref: rec.Ref, Kind: rec.Kind, Size: size(rec.Size), Created: stamp(rec.Created), InUse: rec.InUse,
			Removable: rec.Removable, Keep: rec.Keep}
		if rec.LastUsed != nil {
			row.LastUsed = stamp(*rec.LastUsed)
		}
		for k, v := range rec.Labels {
			row.Labels = append(row.Labels, k+"="+v)
		}
		slices.Sort(row.Labels)
		if hash, ok := strings.CutPrefix(rec.Ref, "berth/gen:"); ok && u.d.BuildLog != nil {
			if _, err := u.d.BuildLog(hash); err == nil {
				row.BuildLog = "/api/v1/images/" + hash + "/build-log"
			}
		}
		if rec.Removable && !rec.InUse && allowed(p, authz.ImageManage, authz.Resource{Kind: "image", ID: rec.Ref}) {
			row.Remove = "/api/v1/images/" + rec.Ref
		}
		d.Rows = append(d.Rows, row)
	}
	d.Total = size(total)
	u.render(w, r, http.StatusOK, "images", "Images", "images", d)
}

// used is when an image was last used, or else made.
func used(r image.Record) time.Time {
	if r.LastUsed != nil {
		return *r.LastUsed
	}
	return r.Created
}
