// Package web is berth's dashboard: server-rendered html/template pages under /ui/, embedded
// assets, and one small script that adds live updates and actions. Every page works without
// JavaScript for reading; the script polls the page's own live regions every 2 s, follows a
// running job's log over the API's Server-Sent Events, and sends actions (cancel, start, stop)
// to the API with the session cookie.
//
// The pages read through the same managers as the API and ask the same authorization point
// (authz.Can) with the same resources, so a page never shows what the API would refuse. They
// are served behind auth.Middleware (api.New mounts them): an unauthenticated browser is sent
// to /signin?next=…. Every answer carries a strict Content-Security-Policy (no inline script
// or style).
package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/service"
	"github.com/berthproject/berth/internal/storage"
	"github.com/berthproject/berth/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CSP is the policy of every page: only berth's own scripts, styles, images and connections;
// no inline script or style, no framing, forms only to berth.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

// Jobs is what the dashboard needs of the job manager (the API's Jobs has these).
type Jobs interface {
	Get(ctx context.Context, id string) (job.Job, error)
	List(ctx context.Context, o job.ListOptions) ([]job.Job, error)
	Logs(ctx context.Context, id string, follow bool, fn func(job.LogChunk) error) error
}

// Images is what the images page needs of the image records (image.Collector has these).
type Images interface {
	List(ctx context.Context) ([]image.Record, error)
	Policy() image.Policy
}

// Deps are the dashboard's collaborators.
type Deps struct {
	Jobs Jobs
	// Services serves the services page (nil: no services page, and no link to it).
	Services *service.Manager
	// Storage serves the storage page (nil: no storage page).
	Storage *storage.Storage
	// Store serves the admin page (tokens, projects, the audit log) and the components and
	// configurations pages (nil: none of them).
	Store *store.Store
	// Images serves the images page (nil: no images page).
	Images Images
	// Engine is what the engine can enforce, probed at start (nil: not known here).
	Engine *runtime.Capabilities
	// Version is berth's version ("": the build's own, from its module information).
	Version string
	// BuildLog returns the path of a generated image's stored build log (nil: none kept).
	BuildLog func(hash string) (string, error)
	Log      *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// PageSize is how many jobs a page of the list shows (0: DefaultPageSize).
	PageSize int
}

// UI is the dashboard's http.Handler: the pages under /ui/ and / (to be served behind
// auth.Middleware) and, through Static, the assets.
type UI struct {
	d       Deps
	mux     *http.ServeMux
	pages   map[string]*template.Template
	static  http.Handler
	version string // a hash of the assets, in their URLs so a new build is never served stale
}

// New builds the dashboard.
func New(d Deps) *UI {
	if d.Log == nil {
		d.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.PageSize <= 0 {
		d.PageSize = DefaultPageSize
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	u := &UI{d: d, mux: http.NewServeMux(), pages: parsePages(), version: assetVersion(sub)}
	fileServer := http.FileServerFS(sub)
	u.static = http.StripPrefix("/ui/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		w.Header().Set("Cache-Control", "public, max-age=86400")
		fileServer.ServeHTTP(w, r)
	}))
	u.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/jobs", http.StatusSeeOther)
	})
	u.mux.HandleFunc("GET /ui/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/jobs", http.StatusSeeOther)
	})
	u.mux.HandleFunc("GET /ui/jobs", u.handleJobs)
	u.mux.HandleFunc("GET /ui/jobs/{id}", u.handleJob)
	u.mux.HandleFunc("GET /ui/jobs/{id}/log", u.handleJobLog)
	if d.Version == "" {
		d.Version = buildVersion()
		u.d.Version = d.Version
	}
	if d.Services != nil {
		u.mux.HandleFunc("GET /ui/services", u.handleServices)
		u.mux.HandleFunc("GET /ui/services/{name}", u.handleService)
	}
	if d.Storage != nil {
		u.mux.HandleFunc("GET /ui/storage", u.handleStorage)
		u.mux.HandleFunc("GET /ui/storage/tables/{id}", u.handleTable)
	}
	if d.Images != nil {
		u.mux.HandleFunc("GET /ui/images", u.handleImages)
	}
	if d.Store != nil {
		u.mux.HandleFunc("GET /ui/admin", u.handleAdmin)
		u.mux.HandleFunc("GET /ui/components", u.handleComponents)
		u.mux.HandleFunc("GET /ui/configs/{id}", u.handleConfig)
	}
	u.mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		u.fail(w, r, http.StatusNotFound, "No such page: "+r.URL.Path)
	})
	return u
}

// ServeHTTP serves the pages. The request must carry a principal (auth.Middleware).
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) { u.mux.ServeHTTP(w, r) }

// Static serves the embedded assets under /ui/static/ (no credentials needed: they are the
// same for everyone).
func (u *UI) Static() http.Handler { return u.static }

func assetVersion(sub fs.FS) string {
	h := sha256.New()
	fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(sub, p)
			h.Write([]byte(p))
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
}

// page is what the layout needs, around a page's own data.
type page struct {
	Title   string
	Nav     string // jobs | services
	P       auth.Principal
	AllSeen bool // the principal sees every project
	NavSvc  bool // the services page exists
	NavSto  bool // the storage page exists
	NavCmp  bool // the components page exists
	NavImg  bool // the images page exists (and the caller may see it)
	NavAdm  bool // the admin page exists (and the caller may see it)
	Version string
	Data    any
}

// render writes a page with the layout.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name, title, nav string, data any) {
	p, _ := auth.FromContext(r.Context())
	var buf bytes.Buffer
	err := u.pages[name].ExecuteTemplate(&buf, "layout", page{Title: title, Nav: nav, P: p, AllSeen: authz.Visible(p, anyProject),
		NavSvc: u.d.Services != nil, NavSto: u.d.Storage != nil, NavCmp: u.d.Store != nil,
		NavImg: u.d.Images != nil && allowed(p, authz.ServerRead, authz.Resource{Kind: "images"}),
		NavAdm: u.d.Store != nil && canAdmin(p), Version: u.version, Data: data})
	if err != nil {
		u.d.Log.Error("render page", "page", name, "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString("berth could not render this page.\n")
	}
	h := w.Header()
	securityHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fail answers an error page.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	u.render(w, r, status, "error", http.StatusText(status), "", struct {
		Status int
		Text   string
		Msg    string
	}{status, http.StatusText(status), msg})
}

// anyProject is no project's id: asking authz.Visible about it asks whether the caller sees
// every project (as the API does).
const anyProject = "*"

// principal returns the request's principal, once the floor every page shares holds: the API's
// (a principal that may not read its own project, such as a token scoped to one service,
// reaches no page). It answers the refusal itself.
func (u *UI) principal(w http.ResponseWriter, r *http.Request) (auth.Principal, bool) {
	p, ok := auth.FromContext(r.Context())
	if !ok {
		u.fail(w, r, http.StatusUnauthorized, "Sign in at /signin to see this page.")
		return p, false
	}
	if !u.can(w, r, p, authz.ProjectRead, authz.Resource{Kind: "project"}) {
		return p, false
	}
	return p, true
}

// can asks the authorization point; on a refusal it answers the error page (404 for what the
// caller may not know of, 403 otherwise) and reports false.
func (u *UI) can(w http.ResponseWriter, r *http.Request, p auth.Principal, a authz.Action, res authz.Resource) bool {
	err := authz.Can(p, a, res)
	if err == nil {
		return true
	}
	var d *authz.Denied
	if errors.As(err, &d) {
		u.fail(w, r, d.Status, d.Reason)
	} else {
		u.fail(w, r, http.StatusForbidden, err.Error())
	}
	return false
}

// allowed is authz.Can as a yes or no, to decide whether to show a button.
func allowed(p auth.Principal, a authz.Action, res authz.Resource) bool {
	return authz.Can(p, a, res) == nil
}

// human is a short duration for people: milliseconds under a second, seconds under a minute.
func human(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	default:
		return d.Round(time.Minute).String()
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
