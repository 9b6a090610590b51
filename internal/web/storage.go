package web

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/storage"
)

// PreviewRows is how many rows one page of a table's preview shows.
const PreviewRows = 50

// maxPreviewOffset bounds how deep the preview pages (the export reads from the start).
const maxPreviewOffset = 100_000

// maxListedFiles caps the files the storage page lists.
const maxListedFiles = 200

type bucketRow struct {
	ID, Project, Created string
	SharedWith           []string
	Tables               []tableRow
}

type tableRow struct {
	ID, Name, Columns, Updated string
	Rows                       int
	URL                        string
}

type fileRow struct {
	ID                           int64
	Name, Project, Size, Created string
	Tags                         []string
	Download                     string
}

type storageData struct {
	Project   string
	Buckets   []bucketRow
	Files     []fileRow
	FilesNote string
	CanUpload bool
	Usage     string
}

// bucketResource is what authz decides on for a bucket or a table in it (as the API asks).
func bucketResource(kind, id string, b storage.Bucket) authz.Resource {
	return authz.Resource{Kind: kind, ID: id, Project: b.Project, SharedWith: b.SharedWith, Bucket: b.ID}
}

// handleStorage shows the buckets the caller may read (its project's and those shared with
// it; every project's for an admin, ?project= for one), their tables, and the files, as the
// API's storage routes list them.
func (u *UI) handleStorage(w http.ResponseWriter, r *http.Request) {
	p, ok := u.principal(w, r)
	if !ok {
		return
	}
	project := strings.TrimSpace(r.URL.Query().Get("project"))
	if project != "" && !u.can(w, r, p, authz.BucketRead, authz.Resource{Kind: "project", ID: project, Project: project}) {
		return
	}
	ctx := r.Context()
	buckets, err := u.d.Storage.ListBuckets(ctx)
	if err != nil {
		u.internal(w, r, "list buckets", err)
		return
	}
	tables, err := u.d.Storage.ListTables(ctx, "")
	if err != nil {
		u.internal(w, r, "list tables", err)
		return
	}
	byBucket := map[string][]storage.Table{}
	for _, t := range tables {
		byBucket[t.Bucket] = append(byBucket[t.Bucket], t)
	}
	d := storageData{Project: project, CanUpload: allowed(p, authz.FileWrite, authz.Resource{Kind: "file", Project: p.Project})}
	for _, b := range buckets {
		if (project != "" && b.Project != project) || !allowed(p, authz.BucketRead, bucketResource("bucket", b.ID, b)) {
			continue
		}
		br := bucketRow{ID: b.ID, Project: projectOr(b.Project), Created: stamp(b.Created), SharedWith: b.SharedWith}
		for _, t := range byBucket[b.ID] {
			br.Tables = append(br.Tables, tableRow{ID: t.ID, Name: t.Name, Columns: strings.Join(t.Columns, ", "), Rows: t.RowsCount,
				Updated: stamp(t.LastChangeAt), URL: "/ui/storage/tables/" + url.PathEscape(t.ID)})
		}
		d.Buckets = append(d.Buckets, br)
	}
	files, err := u.d.Storage.Files(ctx, storage.FileQuery{Project: project})
	if err != nil {
		u.internal(w, r, "list files", err)
		return
	}
	for _, f := range files {
		if !allowed(p, authz.FileRead, authz.Resource{Kind: "file", ID: strconv.FormatInt(f.ID, 10), Project: f.Project}) {
			continue
		}
		if len(d.Files) == maxListedFiles {
			d.FilesNote = fmt.Sprintf("The newest %d files.", maxListedFiles)
			break
		}
		d.Files = append(d.Files, fileRow{ID: f.ID, Name: f.Name, Project: projectOr(f.Project), Size: size(f.Size), Created: stamp(f.Created),
			Tags: f.Tags, Download: fmt.Sprintf("/api/v1/storage/files/%d/download", f.ID)})
	}
	d.Usage = u.usage(r, p)
	u.render(w, r, http.StatusOK, "storage", "Storage", "storage", d)
}

// usage is the caller's project's storage use against its quota, in words ("" when unknown).
func (u *UI) usage(r *http.Request, p auth.Principal) string {
	project := projectOr(p.Project)
	used, err := u.d.Storage.ProjectUsage(r.Context(), u.d.Storage.DB(), project)
	if err != nil {
		return ""
	}
	limit, err := u.d.Storage.QuotaOf(r.Context(), u.d.Storage.DB(), project)
	if err != nil {
		return ""
	}
	if limit <= 0 {
		return fmt.Sprintf("Project %s uses %s (no quota).", project, size(used))
	}
	return fmt.Sprintf("Project %s uses %s of its %s quota.", project, size(used), size(limit))
}

type tableData struct {
	T          storage.Table
	Bucket     storage.Bucket
	Project    string
	Updated    string
	Columns    []string
	Rows       [][]string
	From, To   int
	Page       int
	Prev, Next string
	Export     string
	Note       string
}

// handleTable shows a table: its columns, rows, metadata and a page of its rows
// (?page=N, PreviewRows a page), to whom may read its bucket.
func (u *UI) handleTable(w http.ResponseWriter, r *http.Request) {
	p, ok := u.principal(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	ctx := r.Context()
	b, err := u.d.Storage.TableBucket(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		u.fail(w, r, http.StatusNotFound, "No table "+id+".")
		return
	}
	if err != nil {
		u.internal(w, r, "read table", err)
		return
	}
	if !u.can(w, r, p, authz.BucketRead, bucketResource("table", id, b)) {
		return
	}
	t, err := u.d.Storage.GetTable(ctx, u.d.Storage.DB(), id)
	if errors.Is(err, storage.ErrNotFound) {
		u.fail(w, r, http.StatusNotFound, "No table "+id+".")
		return
	}
	if err != nil {
		u.internal(w, r, "read table", err)
		return
	}
	page := 1
	if n, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && n > 1 {
		page = n
	}
	d := tableData{T: t, Bucket: b, Project: projectOr(t.Project), Updated: stamp(t.LastChangeAt), Page: page,
		Export: "/api/v1/storage/tables/" + url.PathEscape(id) + "/export"}
	offset := (page - 1) * PreviewRows
	if offset > maxPreviewOffset {
		d.Note = fmt.Sprintf("The preview pages through the first %d rows; export the table for the rest.", maxPreviewOffset)
	} else {
		var buf bytes.Buffer
		if _, _, err := u.d.Storage.Export(ctx, id, &buf, storage.ExportOptions{Limit: offset + PreviewRows + 1}); err != nil {
			u.internal(w, r, "preview table", err)
			return
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			u.internal(w, r, "preview table", err)
			return
		}
		if len(recs) > 0 {
			d.Columns, recs = recs[0], recs[1:]
		}
		if len(recs) > offset+PreviewRows {
			d.Next = tablePage(id, page+1)
			recs = recs[:offset+PreviewRows]
		}
		if offset < len(recs) {
			d.Rows = recs[offset:]
			d.From, d.To = offset+1, offset+len(d.Rows)
		}
	}
	if page > 1 {
		d.Prev = tablePage(id, page-1)
	}
	u.render(w, r, http.StatusOK, "table", "Table "+id, "storage", d)
}

func tablePage(id string, page int) string {
	s := "/ui/storage/tables/" + url.PathEscape(id)
	if page > 1 {
		s += "?page=" + strconv.Itoa(page)
	}
	return s
}

// internal logs an error and answers a 500 page.
func (u *UI) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	u.d.Log.Error(what, "err", err)
	u.fail(w, r, http.StatusInternalServerError, "berth could not "+what+".")
}
