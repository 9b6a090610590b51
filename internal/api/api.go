// Package api is berth's HTTP API: JSON under /api/v1, Server-Sent Events for live logs,
// /healthz and /metrics. Handlers are closures over the narrow interfaces they use.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/registry"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/service"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/storage"
	"github.com/berthproject/berth/internal/store"
	"github.com/berthproject/berth/internal/web"
)

// Jobs is what the API needs of the job manager.
type Jobs interface {
	Submit(ctx context.Context, s job.Submission) (job.Job, error)
	Get(ctx context.Context, id string) (job.Job, error)
	List(ctx context.Context, o job.ListOptions) ([]job.Job, error)
	Cancel(ctx context.Context, id string) (job.Job, error)
	Logs(ctx context.Context, id string, follow bool, fn func(job.LogChunk) error) error
	Counts(ctx context.Context) (map[job.State]int, error)
}

// Config configures the API.
type Config struct {
	// ShareRoot resolves relative mount sources of submitted specs (server --share-root).
	ShareRoot string
	// MaxBodyBytes caps a request body (default 32 MiB).
	MaxBodyBytes int64
	// KeepAlive is the interval of SSE keep-alive comments (default 15 s).
	KeepAlive time.Duration
	// PublicURL is the address users reach the server at (server --public-url); sign-in
	// links start with it. Empty: the request's own scheme and host.
	PublicURL string
}

// Deps are the API's collaborators.
type Deps struct {
	Jobs       Jobs
	Auth       *auth.Auth
	Log        *slog.Logger
	ImageStats func() (builds, hits, failures int64)
	// BuildLog returns the path of a generated image's stored build log.
	BuildLog func(hash string) (string, error)
	// Store and Storage serve components, configurations and storage (nil: those routes are off).
	Store   *store.Store
	Storage *storage.Storage
	// ImageExists checks a component's image is on the engine.
	ImageExists func(ctx context.Context, ref string) error
	// AllowForwardToken lets components opt in to receiving the caller's token
	// (server --allow-forward-token).
	AllowForwardToken bool
	// Services and Proxy serve long-running services (nil: those routes are off).
	Services *service.Manager
	Proxy    http.Handler
	// Sealer seals stored credentials (nil: they cannot be stored).
	Sealer Sealer
	// Metrics are served at /metrics (nil: the API makes its own, with what it sees itself).
	Metrics *Metrics
	// Registry issues an image registry's tokens at /api/v1/registry/token (nil: the route
	// answers 404).
	Registry *registry.Issuer
	// Images are the image records and their collector (nil: the image routes answer 503).
	Images Images
	// Engine is what the engine can enforce, probed at start (the dashboard's admin page
	// shows it; nil: not known).
	Engine *runtime.Capabilities
}

// Sealer encrypts secrets kept at rest.
type Sealer interface {
	Seal(plain []byte) ([]byte, error)
}

// Server is the API's http.Handler.
type Server struct {
	cfg     Config
	d       Deps
	handler http.Handler
	metrics *Metrics
	// routes are the patterns registered, in order (Routes).
	routes []string
}

var allStates = []job.State{job.StateQueued, job.StatePreparing, job.StateRunning, job.StateFinishing, job.StateCancelling,
	job.StateSucceeded, job.StateFailed, job.StateCancelled}

// New builds the API.
func New(cfg Config, d Deps) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 32 << 20
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if d.Log == nil {
		d.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{cfg: cfg, d: d}
	if d.Metrics == nil {
		d.Metrics = NewMetrics()
	}
	s.d, s.metrics = d, d.Metrics
	s.registerCollectors(d.Metrics)

	api := router{http.NewServeMux(), &s.routes}
	metricsHandler := d.Metrics.Handler()
	api.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		// The whole server's figures (every project's jobs): an admin's, or --metrics-listen's.
		if s.can(w, r, authz.ServerRead, authz.Resource{Kind: "metrics"}) {
			metricsHandler.ServeHTTP(w, r)
		}
	})
	api.HandleFunc("POST /api/v1/jobs", s.handleSubmit)
	api.HandleFunc("GET /api/v1/jobs", s.handleList)
	api.HandleFunc("GET /api/v1/jobs/{id}", s.handleGet)
	api.HandleFunc("POST /api/v1/jobs/{id}/cancel", s.handleCancel)
	api.HandleFunc("GET /api/v1/jobs/{id}/logs", s.handleLogs)
	api.HandleFunc("GET /api/v1/jobs/{id}/outputs", s.handleOutputs)
	s.routesDelete(api)
	api.HandleFunc("GET /api/v1/images/{hash}/build-log", s.handleBuildLog)
	s.routesImages(api)
	s.routesComponents(api)
	s.routesServices(api)
	s.routesAdmin(api)
	s.routesAudit(api)

	root := router{http.NewServeMux(), &s.routes}
	s.routesSignin(root, api)
	s.routesRegistry(root)
	root.HandleFunc("GET /api/v1/openapi.json", handleOpenAPI)
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	// The API's floor, beside each handler's own question: a principal that may not read its
	// own project (a token scoped to one service, which authz lets reach only that service's
	// proxy and make a sign-in link) reaches no API route but the sign-in links, even one a
	// handler forgot to ask about.
	var protected http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := auth.FromContext(r.Context()); ok && !(r.Method == http.MethodPost && r.URL.Path == "/api/v1/signin-links") {
			if !s.can(w, r, authz.ProjectRead, authz.Resource{Kind: "project"}) {
				return
			}
		}
		api.ServeHTTP(w, r)
	})
	proxy := d.Proxy
	if proxy != nil {
		proxy = withoutCredentials(proxy)
	}
	if d.Auth != nil {
		protected = d.Auth.Middleware(noteRequest(protected))
		if proxy != nil {
			proxy = d.Auth.Middleware(proxy)
		}
	}
	// The dashboard: its pages behind the same sign-in (an unauthenticated browser is sent to
	// /signin?next=…), its assets open. Like the proxy, they are not API routes.
	wd := web.Deps{Jobs: d.Jobs, Services: d.Services, BuildLog: d.BuildLog, Log: d.Log, Storage: d.Storage, Engine: d.Engine}
	if d.Images != nil {
		wd.Images = d.Images
	}
	if d.Store != nil && d.Auth != nil {
		wd.Store = d.Store
	}
	ui := web.New(wd)
	var pages http.Handler = ui
	if d.Auth != nil {
		pages = d.Auth.Middleware(pages)
	}
	root.ServeMux.Handle("GET /{$}", pages)
	root.ServeMux.Handle("/ui/", pages)
	root.ServeMux.Handle("GET /ui/static/", ui.Static())
	if proxy != nil {
		// The proxy and the catch-all are not API routes: they are registered on the mux itself,
		// outside Routes (the OpenAPI document describes the proxy in words).
		root.ServeMux.Handle("/proxy/", proxy)
	}
	root.ServeMux.Handle("/", methodNotAllowedJSON(protected))
	s.handler = s.audited(root, api.ServeMux)
	return s
}

// router is a mux that remembers the patterns registered on it, so the routes the server
// serves are listed in one place (Routes) that the OpenAPI test walks.
type router struct {
	*http.ServeMux
	patterns *[]string
}

func (m router) Handle(pattern string, h http.Handler) {
	*m.patterns = append(*m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

func (m router) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// Routes are the method patterns the server registered ("GET /api/v1/jobs/{id}"), in order:
// those of the API (authenticated) and of the root (/healthz, sign-in, the OpenAPI document).
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

// ServeHTTP serves the API, logging each request at debug.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.d.Log.Enabled(r.Context(), slog.LevelDebug) {
		// No status recorder, clock reads or log attributes for a line nobody keeps.
		s.handler.ServeHTTP(w, r)
		return
	}
	t0 := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: 200}
	s.handler.ServeHTTP(rec, r)
	s.d.Log.Debug("http", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(t0))
}

// ObserveJob records a finished job: its duration, and how long it waited in the queue.
func (s *Server) ObserveJob(j job.Job) {
	s.auditJob(j)
	if j.StartedAt == nil || j.FinishedAt == nil {
		return
	}
	s.metrics.jobDuration.WithLabelValues(string(j.State), string(j.Reason)).Observe(j.FinishedAt.Sub(*j.StartedAt).Seconds())
	if !j.CreatedAt.IsZero() && !j.StartedAt.Before(j.CreatedAt) {
		s.metrics.queueWait.Observe(j.StartedAt.Sub(j.CreatedAt).Seconds())
	}
}

// MetricsHandler serves the metrics without asking for a token: for `server --metrics-listen`,
// a listener of its own on a loopback or internal address.
func (s *Server) MetricsHandler() http.Handler { return s.metrics.Handler() }

// submitRequest is the body of POST /api/v1/jobs.
type submitRequest struct {
	Spec     string            `json:"spec"`
	Filename string            `json:"filename"`
	Files    map[string]string `json:"files"`
}

func (s *Server) handleSubmit(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if !s.can(w, r, authz.JobSubmit, authz.Resource{Kind: "job", Project: p.Project}) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	var req submitRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the request is larger than %d bytes", s.cfg.MaxBodyBytes), "")
			return
		}
		writeError(w, http.StatusBadRequest, "bad_request", "the body must be JSON {spec, filename, files}: "+err.Error(), "")
		return
	}
	if strings.TrimSpace(req.Spec) == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "spec is empty: send the block's YAML as \"spec\"", "spec")
		return
	}
	if req.Filename == "" {
		req.Filename = "block.yaml"
	}
	blk, err := spec.ParseBlock([]byte(req.Spec), req.Filename)
	if err != nil {
		s.submitError(w, err)
		return
	}
	files := map[string][]byte{}
	for k, v := range req.Files {
		files[k] = []byte(v)
	}
	j, err := s.d.Jobs.Submit(r.Context(), job.Submission{Block: *blk, Files: files, BaseDir: s.cfg.ShareRoot,
		Owner: p.Name, Project: p.Project})
	if err != nil {
		s.submitError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, j)
}

func (s *Server) submitError(w http.ResponseWriter, err error) {
	var ve *spec.ValidationError
	var pe *job.PolicyError
	switch {
	case errors.As(err, &ve):
		writeProblems(w, "invalid_spec", ve)
	case errors.As(err, &pe):
		writeError(w, http.StatusUnprocessableEntity, "policy_violation", pe.Error(), pe.Field)
	default:
		s.d.Log.Error("submit job", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not store the job", "")
	}
}

// anyProject is no project's id (ids are lowercase letters, digits and '-'): asking authz
// whether it is visible asks whether the caller sees every project.
const anyProject = "*"

// handleList lists the jobs of the caller's project, or of every project for whom sees them
// all (an admin), who may narrow it with ?project=. ?owner= narrows it to one token's jobs.
func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	q := r.URL.Query()
	var o job.ListOptions
	if st := q.Get("state"); st != "" {
		ok := false
		for _, a := range allStates {
			ok = ok || string(a) == st
		}
		if !ok {
			names := make([]string, len(allStates))
			for i, a := range allStates {
				names[i] = string(a)
			}
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("state %q: allowed: %s", st, strings.Join(names, ", ")), "state")
			return
		}
		o.State = job.State(st)
	}
	o.Limit = 100
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "bad_request", "limit: a number from 1 to 1000", "limit")
			return
		}
		o.Limit = n
	}
	o.Owner = q.Get("owner")
	o.Project = q.Get("project")
	if o.Project == "" && !authz.Visible(p, anyProject) {
		o.Project = p.Project
	}
	if o.Project != "" && !s.can(w, r, authz.JobRead, authz.Resource{Kind: "project", ID: o.Project, Project: o.Project}) {
		return
	}
	jobs, err := s.d.Jobs.List(r.Context(), o)
	if err != nil {
		s.d.Log.Error("list jobs", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not list jobs", "")
		return
	}
	if jobs == nil {
		jobs = []job.Job{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": jobs})
}

// jobFor returns the job of the path's id if the principal may do a on it; it answers the
// error itself (404 for a job of another project, as for one that does not exist).
func (s *Server) jobFor(w http.ResponseWriter, r *http.Request, a authz.Action) (job.Job, bool) {
	id := r.PathValue("id")
	j, err := s.d.Jobs.Get(r.Context(), id)
	if errors.Is(err, job.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no job "+id, "id")
		return j, false
	}
	if err != nil {
		s.d.Log.Error("get job", "job", id, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not read the job", "")
		return j, false
	}
	if !s.can(w, r, a, authz.Resource{Kind: "job", ID: j.ID, Project: jobProject(j), Owner: j.Owner}) {
		return j, false
	}
	return j, true
}

// jobProject is the project owning j: the default project for a job stored before projects.
func jobProject(j job.Job) string {
	if j.Project == "" {
		return store.DefaultProject
	}
	return j.Project
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	if j, ok := s.jobFor(w, r, authz.JobRead); ok {
		writeJSON(w, http.StatusOK, j)
	}
}

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	j, ok := s.jobFor(w, r, authz.JobCancel)
	if !ok {
		return
	}
	id := j.ID
	j, err := s.d.Jobs.Cancel(r.Context(), id)
	if errors.Is(err, job.ErrTerminal) {
		msg := fmt.Sprintf("job %s already ended", id)
		if j.State != "" {
			msg += " (" + string(j.State) + ")"
		}
		writeError(w, http.StatusConflict, "conflict", msg, "")
		return
	}
	if errors.Is(err, job.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no job "+id, "id")
		return
	}
	if err != nil {
		s.d.Log.Error("cancel job", "job", id, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "could not cancel the job", "")
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request) {
	j, ok := s.jobFor(w, r, authz.JobRead)
	if !ok {
		return
	}
	win, ok := logWindow(w, r)
	if !ok {
		return
	}
	follow := r.URL.Query().Get("follow") == "1" || r.URL.Query().Get("follow") == "true" ||
		strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	win.Follow = follow
	if !follow {
		chunks := []job.LogChunk{}
		err := s.jobLogs(r.Context(), j.ID, win, func(c job.LogChunk) error { chunks = append(chunks, c); return nil })
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal", "could not read the output", "")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"chunks": chunks})
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "internal", "streaming unsupported", "")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fl.Flush()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	events := make(chan job.LogChunk, 256)
	done := make(chan error, 1)
	go func() {
		done <- s.jobLogs(ctx, j.ID, win, func(c job.LogChunk) error {
			select {
			case events <- c:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	tick := time.NewTicker(s.cfg.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case c := <-events:
			writeEvent(w, c.Stream, c)
			fl.Flush()
		case <-tick.C:
			io.WriteString(w, ": keep-alive\n\n")
			fl.Flush()
		case <-ctx.Done():
			return
		case err := <-done:
			// Drain what the follower queued before it returned.
		drain:
			for {
				select {
				case c := <-events:
					writeEvent(w, c.Stream, c)
				default:
					break drain
				}
			}
			if err != nil && ctx.Err() != nil {
				return
			}
			if final, err := s.d.Jobs.Get(context.WithoutCancel(ctx), j.ID); err == nil {
				writeEvent(w, "end", final)
			}
			fl.Flush()
			return
		}
	}
}

// handleBuildLog serves a generated image's build log as text (a job's spec_hash names it): to
// an admin, or to a project one of whose jobs used the image; to anyone else it does not exist.
func (s *Server) handleBuildLog(w http.ResponseWriter, r *http.Request) {
	p, hash := principal(r), r.PathValue("hash")
	// An image has no owner: it is the caller's project's to read when one of its jobs used it,
	// and nobody's ("-", no project's id) otherwise, which authz answers 404 but to an admin.
	owner := "-"
	if s.d.Store != nil {
		used, err := s.d.Store.ProjectUsedImage(r.Context(), p.Project, hash)
		if err != nil {
			s.internal(w, "read build log", err)
			return
		}
		if used {
			owner = p.Project
		}
	}
	if !s.can(w, r, authz.ImageRead, authz.Resource{Kind: "image", ID: hash, Project: owner}) {
		return
	}
	if s.d.BuildLog == nil {
		writeError(w, http.StatusNotFound, "not_found", "build logs are not kept by this server", "")
		return
	}
	path, err := s.d.BuildLog(hash)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "no build log for "+hash, "hash")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	http.ServeFile(w, r, path)
}

func writeEvent(w io.Writer, event string, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// writeProblems answers 422 with every problem of a spec, naming the first one's field.
func writeProblems(w http.ResponseWriter, code string, ve *spec.ValidationError) {
	field := ""
	if len(ve.Problems) > 0 {
		field = ve.Problems[0].Field
	}
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": map[string]any{
		"code": code, "message": ve.Error(), "field": field, "problems": ve.Problems}})
}

func writeError(w http.ResponseWriter, status int, code, msg, field string) {
	e := map[string]string{"code": code, "message": msg}
	if field != "" {
		e["field"] = field
	}
	writeJSON(w, status, map[string]any{"error": e})
}

// methodNotAllowedJSON turns the mux's plain-text 404 and 405 into JSON errors.
func methodNotAllowedJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&jsonErrors{ResponseWriter: w, r: r}, r)
	})
}

type jsonErrors struct {
	http.ResponseWriter
	r        *http.Request
	replaced bool
}

func (j *jsonErrors) WriteHeader(status int) {
	// The mux's own 404 and 405 are plain text; answer them as JSON like everything else.
	if !strings.HasPrefix(j.Header().Get("Content-Type"), "application/json") && !j.replaced {
		switch status {
		case http.StatusMethodNotAllowed:
			j.replaced = true
			writeError(j.ResponseWriter, status, "method_not_allowed", j.r.Method+" is not allowed on "+j.r.URL.Path, "")
			return
		case http.StatusNotFound:
			j.replaced = true
			writeError(j.ResponseWriter, status, "not_found", "no such route: "+j.r.Method+" "+j.r.URL.Path, "")
			return
		}
	}
	j.ResponseWriter.WriteHeader(status)
}

func (j *jsonErrors) Write(b []byte) (int, error) {
	if j.replaced {
		return len(b), nil
	}
	return j.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (hijacking, flushing).
func (j *jsonErrors) Unwrap() http.ResponseWriter { return j.ResponseWriter }

func (j *jsonErrors) Flush() {
	if f, ok := j.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

// Unwrap lets http.ResponseController reach the connection (WebSocket upgrades through the proxy).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
