package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/block"
	"github.com/berthproject/berth/internal/component"
	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/job/jobtest"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
	"github.com/berthproject/berth/internal/service"
	"github.com/berthproject/berth/internal/storage"
	"github.com/berthproject/berth/internal/store"
)

// The route matrix: every route the server registers, called by every role of the owning
// project, by another project's admin, by a token scoped to a service and without a token,
// each on a fresh server holding one of each resource in project alpha. A route missing from
// matrixRules fails the test: a new route needs its rule here (and in authz).

// rule is what a route needs.
type rule struct {
	path   string // with the seeded resources' names
	body   string
	public bool   // no token needed (health, sign-in pages, the OpenAPI document)
	min    string // the least role in alpha that may call it
	// item: the path names one of alpha's resources (another project gets 404); otherwise
	// the route lists or makes things in the caller's own project.
	item bool
	// ownJob: the item is a job started by ann; another member of alpha may not change it.
	ownJob bool
	// blocks: an allowed call waits for a job that never runs (sync actions): a refusal
	// answers at once, so no answer within the client's timeout means it was let through.
	blocks bool
}

const (
	mxBucket = "in.c-alpha"
	mxTable  = "in.c-alpha.t"
	mxSvc    = "web-alpha"
	// mxImage is recorded in the store, not on the engine: removing it forgets the record.
	mxImage = "berth/gen:matrix-absent"
)

// matrixRules holds the seeded names; {job} and {token} are filled in per fixture.
var matrixRules = map[string]rule{
	"GET /metrics":                        {path: "/metrics", min: auth.RoleAdmin},
	"POST /api/v1/jobs":                   {path: "/api/v1/jobs", body: validSpec, min: auth.RoleMember},
	"GET /api/v1/jobs":                    {path: "/api/v1/jobs", min: auth.RoleReadOnly},
	"GET /api/v1/jobs/{id}":               {path: "/api/v1/jobs/{job}", min: auth.RoleReadOnly, item: true},
	"POST /api/v1/jobs/{id}/cancel":       {path: "/api/v1/jobs/{job}/cancel", min: auth.RoleMember, item: true, ownJob: true},
	"GET /api/v1/jobs/{id}/logs":          {path: "/api/v1/jobs/{job}/logs", min: auth.RoleReadOnly, item: true},
	"GET /api/v1/jobs/{id}/outputs":       {path: "/api/v1/jobs/{job}/outputs", min: auth.RoleReadOnly, item: true},
	"DELETE /api/v1/jobs/{id}":            {path: "/api/v1/jobs/{job}?force=true", min: auth.RoleMember, item: true, ownJob: true},
	"GET /api/v1/images/{hash}/build-log": {path: "/api/v1/images/{hash}/build-log", min: auth.RoleReadOnly, item: true},
	"GET /api/v1/images":                  {path: "/api/v1/images", min: auth.RoleAdmin},
	"DELETE /api/v1/images/{ref...}":      {path: "/api/v1/images/" + mxImage, min: auth.RoleAdmin},
	"POST /api/v1/images/gc":              {path: "/api/v1/images/gc?dry_run=true", min: auth.RoleAdmin},

	"POST /api/v1/components":                       {path: "/api/v1/components", body: `{"id": "comp-new", "image": "img:1"}`, min: auth.RoleProjectAdmin},
	"GET /api/v1/components":                        {path: "/api/v1/components", min: auth.RoleReadOnly},
	"DELETE /api/v1/components/{id}":                {path: "/api/v1/components/comp-a?force=true", min: auth.RoleProjectAdmin, item: true},
	"POST /api/v1/components/{id}/actions/{action}": {path: "/api/v1/components/comp-a/actions/list", body: `{}`, min: auth.RoleMember, item: true, blocks: true},
	"POST /api/v1/configs":                          {path: "/api/v1/configs", body: `{"id": "cfg-new", "component": "comp-a", "parameters": {}}`, min: auth.RoleMember},
	"GET /api/v1/configs":                           {path: "/api/v1/configs", min: auth.RoleReadOnly},
	"GET /api/v1/configs/{id}":                      {path: "/api/v1/configs/cfg-a", min: auth.RoleReadOnly, item: true},
	"GET /api/v1/configs/{id}/state":                {path: "/api/v1/configs/cfg-a/state", min: auth.RoleReadOnly, item: true},
	"POST /api/v1/configs/{id}/run":                 {path: "/api/v1/configs/cfg-a/run", min: auth.RoleMember, item: true},
	"DELETE /api/v1/configs/{id}":                   {path: "/api/v1/configs/cfg-a?force=true", min: auth.RoleMember, item: true},
	"PUT /api/v1/configs/{id}/credentials":          {path: "/api/v1/configs/cfg-a/credentials", body: `{"#token": "t"}`, min: auth.RoleMember, item: true},
	"GET /api/v1/configs/{id}/credentials":          {path: "/api/v1/configs/cfg-a/credentials", min: auth.RoleReadOnly, item: true},
	"DELETE /api/v1/configs/{id}/credentials":       {path: "/api/v1/configs/cfg-a/credentials", min: auth.RoleMember, item: true},

	"POST /api/v1/storage/buckets":                         {path: "/api/v1/storage/buckets", body: `{"id": "in.c-new"}`, min: auth.RoleMember},
	"GET /api/v1/storage/buckets":                          {path: "/api/v1/storage/buckets", min: auth.RoleReadOnly},
	"DELETE /api/v1/storage/buckets/{id}":                  {path: "/api/v1/storage/buckets/" + mxBucket + "?force=true", min: auth.RoleMember, item: true},
	"POST /api/v1/storage/buckets/{id}/shares":             {path: "/api/v1/storage/buckets/" + mxBucket + "/shares", body: `{"project": "beta"}`, min: auth.RoleProjectAdmin, item: true},
	"DELETE /api/v1/storage/buckets/{id}/shares/{project}": {path: "/api/v1/storage/buckets/" + mxBucket + "/shares/gamma", min: auth.RoleProjectAdmin, item: true},
	"GET /api/v1/storage/tables":                           {path: "/api/v1/storage/tables", min: auth.RoleReadOnly},
	"GET /api/v1/storage/tables/{id}":                      {path: "/api/v1/storage/tables/" + mxTable, min: auth.RoleReadOnly, item: true},
	"DELETE /api/v1/storage/tables/{id}":                   {path: "/api/v1/storage/tables/" + mxTable, min: auth.RoleMember, item: true},
	"POST /api/v1/storage/tables/{id}/import":              {path: "/api/v1/storage/tables/" + mxTable + "/import", body: "k,v\n2,b\n", min: auth.RoleMember, item: true},
	"GET /api/v1/storage/tables/{id}/export":               {path: "/api/v1/storage/tables/" + mxTable + "/export", min: auth.RoleReadOnly, item: true},
	"POST /api/v1/storage/files":                           {path: "/api/v1/storage/files?name=n.txt", body: "hello", min: auth.RoleMember},
	"GET /api/v1/storage/files":                            {path: "/api/v1/storage/files", min: auth.RoleReadOnly},
	"GET /api/v1/storage/files/{id}/download":              {path: "/api/v1/storage/files/{file}/download", min: auth.RoleReadOnly, item: true},
	"POST /api/v1/storage/files/{id}/tags":                 {path: "/api/v1/storage/files/{file}/tags", body: `{"tags": ["x"]}`, min: auth.RoleMember, item: true},
	"DELETE /api/v1/storage/files/{id}":                    {path: "/api/v1/storage/files/{file}", min: auth.RoleMember, item: true},
	"GET /api/v1/storage/usage":                            {path: "/api/v1/storage/usage", min: auth.RoleReadOnly},

	"POST /api/v1/services":                      {path: "/api/v1/services?name=web-new", body: "not a tar", min: auth.RoleMember},
	"GET /api/v1/services":                       {path: "/api/v1/services", min: auth.RoleReadOnly},
	"GET /api/v1/services/{name}":                {path: "/api/v1/services/" + mxSvc, min: auth.RoleReadOnly, item: true},
	"POST /api/v1/services/{name}/start":         {path: "/api/v1/services/" + mxSvc + "/start", min: auth.RoleMember, item: true},
	"POST /api/v1/services/{name}/stop":          {path: "/api/v1/services/" + mxSvc + "/stop", min: auth.RoleMember, item: true},
	"POST /api/v1/services/{name}/rebuild":       {path: "/api/v1/services/" + mxSvc + "/rebuild", min: auth.RoleMember, item: true},
	"GET /api/v1/services/{name}/logs":           {path: "/api/v1/services/" + mxSvc + "/logs", min: auth.RoleReadOnly, item: true},
	"GET /api/v1/services/{name}/build-log":      {path: "/api/v1/services/" + mxSvc + "/build-log", min: auth.RoleReadOnly, item: true},
	"GET /api/v1/services/{name}/context":        {path: "/api/v1/services/" + mxSvc + "/context", min: auth.RoleReadOnly, item: true},
	"DELETE /api/v1/services/{name}":             {path: "/api/v1/services/" + mxSvc, min: auth.RoleMember, item: true},
	"PUT /api/v1/packages/{pkg}/entities/{name}": {path: "/api/v1/packages/pkg/entities/Conn", body: `{"host": "db"}`, min: auth.RoleMember},

	"POST /api/v1/projects":       {path: "/api/v1/projects", body: `{"id": "gamma2"}`, min: auth.RoleAdmin},
	"GET /api/v1/projects":        {path: "/api/v1/projects", min: auth.RoleReadOnly},
	"PATCH /api/v1/projects/{id}": {path: "/api/v1/projects/alpha", body: `{"max_concurrent_jobs": 3}`, min: auth.RoleAdmin, item: true},
	"GET /api/v1/tokens":          {path: "/api/v1/tokens", min: auth.RoleProjectAdmin},
	"POST /api/v1/tokens":         {path: "/api/v1/tokens", body: `{"name": "new-tok", "role": "member"}`, min: auth.RoleProjectAdmin},
	"DELETE /api/v1/tokens/{id}":  {path: "/api/v1/tokens/{token}", min: auth.RoleProjectAdmin, item: true},
	"GET /api/v1/audit":           {path: "/api/v1/audit", min: auth.RoleProjectAdmin},
	"POST /api/v1/signin-links":   {path: "/api/v1/signin-links", body: `{"next": "/proxy/` + mxSvc + `/"}`, min: auth.RoleReadOnly},

	"GET /signin":              {path: "/signin", public: true},
	"POST /signin":             {path: "/signin", body: "token=nope", public: true},
	"GET /signin/link":         {path: "/signin/link?code=nope", public: true},
	"POST /signout":            {path: "/signout", public: true},
	"GET /api/v1/openapi.json": {path: "/api/v1/openapi.json", public: true},
	"GET /healthz":             {path: "/healthz", public: true},

	// The registry's token endpoint does its own HTTP Basic authentication.
	"GET /api/v1/registry/token": {path: "/api/v1/registry/token?service=reg&scope=repository:alpha/app:pull", public: true},
}

// caller is who calls a route in the matrix.
type caller struct {
	name    string // the token's name in the fixture ("" for no token)
	role    string
	project string
	scoped  bool
}

var matrixCallers = []caller{
	{"root", auth.RoleAdmin, "default", false},
	{"ada", auth.RoleProjectAdmin, "alpha", false},
	{"ann", auth.RoleMember, "alpha", false}, // started the seeded job
	{"amy", auth.RoleMember, "alpha", false},
	{"rex", auth.RoleReadOnly, "alpha", false},
	{"bea", auth.RoleProjectAdmin, "beta", false},
	{"web", auth.RoleMember, "alpha", true}, // scoped to service:web-alpha
	{"", "", "", false},
}

var mxRank = map[string]int{auth.RoleReadOnly: 1, auth.RoleMember: 2, auth.RoleProjectAdmin: 3, auth.RoleAdmin: 4}

// expect is what c should get from a route under rule r: "ok" (anything but 401, 403, 404),
// "any" (a public route: whatever it answers, never a server error), or a status.
func expect(r rule, c caller) string {
	switch {
	case r.public:
		return "any"
	case c.name == "":
		return "401"
	case c.scoped:
		if r.path == "/api/v1/signin-links" {
			return "ok"
		}
		return "403"
	case c.role == auth.RoleAdmin:
		return "ok"
	case c.project != "alpha" && r.item:
		return "404"
	case mxRank[c.role] < mxRank[r.min]:
		return "403"
	case r.ownJob && c.name != "ann" && mxRank[c.role] < mxRank[auth.RoleProjectAdmin]:
		return "403"
	}
	return "ok"
}

// matrixFixture is a server with every part on, on a real store and engine, holding in project
// alpha one of each resource.
type matrixFixture struct {
	*fixture
	server           *Server
	tok              map[string]string
	job, file, token string
	hash             string
}

func newMatrixFixture(t *testing.T) *matrixFixture {
	t.Helper()
	ctx := context.Background()
	eng := enginetest.Require(t)
	dir := t.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sealer := jobtest.Sealer(t)
	st.SetSealer(sealer)
	sg, err := storage.New(st, filepath.Join(dir, "storage"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"alpha", "beta", "gamma"} {
		if err := st.CreateProject(ctx, store.Project{ID: p}); err != nil {
			t.Fatal(err)
		}
	}
	a := auth.New(st)
	f := &matrixFixture{tok: map[string]string{}}
	for _, ts := range []auth.TokenSpec{
		{Name: "root", Role: auth.RoleAdmin},
		{Name: "ada", Project: "alpha", Role: auth.RoleProjectAdmin},
		{Name: "ann", Project: "alpha", Role: auth.RoleMember},
		{Name: "amy", Project: "alpha", Role: auth.RoleMember},
		{Name: "rex", Project: "alpha", Role: auth.RoleReadOnly},
		{Name: "bea", Project: "beta", Role: auth.RoleProjectAdmin},
		{Name: "web", Project: "alpha", Role: auth.RoleMember, Scope: "service:" + mxSvc},
		{Name: "victim", Project: "alpha", Role: auth.RoleMember},
	} {
		plain, tok, err := a.IssueToken(ctx, ts)
		if err != nil {
			t.Fatal(err)
		}
		f.tok[ts.Name] = plain
		if ts.Name == "victim" {
			f.token = tok.ID
		}
	}
	cfg := job.DefaultConfig(filepath.Join(dir, "data"))
	cfg.Instance = "api-matrix"
	cfg.Executors = map[string]job.Executor{job.KindBlock: block.New(), job.KindComponent: component.New(component.Config{Storage: sg, Sealer: sealer})}
	m, err := job.New(cfg, st, nil, nil, nil) // never started: jobs stay queued
	if err != nil {
		t.Fatal(err)
	}
	scfg := service.DefaultConfig(filepath.Join(dir, "services"), "api-matrix-"+enginetest.Unique(t))
	scfg.ExtraLabels = enginetest.Labels(t)
	svcs := service.New(scfg, st, eng, nil)
	t.Cleanup(svcs.Close)
	if err := st.PutImageRecord(ctx, store.ImageRecord{Ref: mxImage, Kind: image.KindGenerated, LastUsed: time.Now()}); err != nil {
		t.Fatal(err)
	}
	images := image.NewCollector(image.NewRecords(eng, st, "api-matrix-"+enginetest.Unique(t), nil), image.Policy{Limit: 1 << 50, Low: 1 << 49})
	s := New(Config{ShareRoot: "/share"}, Deps{Jobs: m, Auth: a, Store: st, Storage: sg, Services: svcs, Sealer: sealer,
		Images: images, Proxy: http.NotFoundHandler(), ImageStats: func() (int64, int64, int64) { return 0, 0, 0 },
		BuildLog: func(h string) (string, error) {
			p := filepath.Join(dir, h+".log")
			return p, os.WriteFile(p, []byte("Step 1/1 : FROM busybox\n"), 0o644)
		}})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	f.fixture, f.server = &fixture{srv: srv}, s

	// One of each resource in alpha, made by its people through the API.
	mustDo := func(method, path, who, body string) map[string]any {
		t.Helper()
		code, out := f.do(t, method, path, f.tok[who], body)
		if code/100 != 2 {
			t.Fatalf("seed %s %s as %s: %d %v", method, path, who, code, out)
		}
		return out
	}
	f.job = mustDo("POST", "/api/v1/jobs", "ann", validSpec)["id"].(string)
	j, err := m.Get(ctx, f.job)
	if err != nil {
		t.Fatal(err)
	}
	f.hash = j.SpecHash
	if f.hash == "" {
		f.hash = "h-" + f.job
		st.DB.ExecContext(ctx, `UPDATE jobs SET spec_hash = ? WHERE id = ?`, f.hash, f.job)
	}
	mustDo("POST", "/api/v1/components", "ada", `{"id": "comp-a", "image": "img:1", "actions": ["list"]}`)
	mustDo("POST", "/api/v1/configs", "ann", `{"id": "cfg-a", "component": "comp-a", "parameters": {}}`)
	mustDo("PUT", "/api/v1/configs/cfg-a/credentials", "ann", `{"#token": "s3cret"}`)
	mustDo("POST", "/api/v1/storage/buckets", "ann", `{"id": "`+mxBucket+`"}`)
	mustDo("POST", "/api/v1/storage/tables/"+mxTable+"/import", "ann", "k,v\n1,a\n")
	mustDo("POST", "/api/v1/storage/buckets/"+mxBucket+"/shares", "ada", `{"project": "gamma"}`)
	f.file = fmt.Sprint(mustDo("POST", "/api/v1/storage/files?name=a.txt", "ann", "hello")["id"])
	// The service is stored as created; its build log and context are where the manager keeps them.
	now := time.Now().UTC()
	if err := st.PutService(ctx, store.ServiceRow{Name: mxSvc, Package: mxSvc, Project: "alpha", Port: 8080, ContainerJSON: `{"on_demand": true}`,
		ImageState: service.ImageError, ImageReason: "seeded", ImageChangedAt: now, ContainerState: service.Stopped,
		ContainerChangedAt: now, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(svcs.BuildLogPath(mxSvc)), 0o755)
	os.WriteFile(svcs.BuildLogPath(mxSvc), []byte("Step 1/1\n"), 0o644)
	os.WriteFile(svcs.ContextPath(mxSvc), []byte("tar"), 0o644)
	if err := svcs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestRouteMatrix calls every registered route as every caller and checks the status.
func TestRouteMatrix(t *testing.T) {
	probe := newMatrixFixture(t)
	routes := probe.server.Routes()
	for _, pattern := range routes {
		if _, ok := matrixRules[pattern]; !ok {
			t.Errorf("route %s has no rule in the matrix: add it to matrixRules (and its action to authz)", pattern)
		}
	}
	for pattern := range matrixRules {
		if !contains(routes, pattern) {
			t.Errorf("matrixRules has %s, which the server does not register", pattern)
		}
	}
	if t.Failed() {
		return
	}
	for _, pattern := range routes {
		r := matrixRules[pattern]
		method, _, _ := strings.Cut(pattern, " ")
		for _, c := range matrixCallers {
			want := expect(r, c)
			who := c.name
			if who == "" {
				who = "no-token"
			}
			t.Run(pattern+"/"+who, func(t *testing.T) {
				f := probe
				if want == "ok" && method != http.MethodGet {
					f = newMatrixFixture(t) // an allowed change must not change the next caller's world
				}
				path := strings.NewReplacer("{job}", f.job, "{file}", f.file, "{token}", f.token, "{hash}", f.hash).Replace(r.path)
				code, body, err := f.call(method, path, f.tok[c.name], r.body, r.blocks)
				switch {
				case err != nil && r.blocks && want == "ok" && errors.Is(err, context.DeadlineExceeded):
					// let through: it waits for its job
				case err != nil:
					t.Fatalf("%s %s: %v", method, path, err)
				case want == "any" && code >= 500:
					t.Fatalf("%s %s: %d %s", method, path, code, body)
				case want == "any":
				case want == "ok" && (code == 401 || code == 403 || code == 404):
					t.Fatalf("%s %s as %s (%s of %s): %d %s, want it let through", method, path, who, c.role, c.project, code, body)
				case want != "ok" && fmt.Sprint(code) != want:
					t.Fatalf("%s %s as %s (%s of %s): %d %s, want %s", method, path, who, c.role, c.project, code, body, want)
				}
			})
		}
	}
}

// call makes one request; a blocking route gets a short deadline.
func (f *matrixFixture) call(method, path, token, body string, blocks bool) (int, string, error) {
	ctx := context.Background()
	if blocks {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 1500*time.Millisecond)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method != http.MethodGet {
		req.Header.Set("Origin", f.srv.URL) // a same-origin form post, as a browser sends it
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 160))
	return resp.StatusCode, string(b), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
