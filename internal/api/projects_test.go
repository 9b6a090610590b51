package api

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/block"
	"github.com/berthproject/berth/internal/component"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/storage"
	"github.com/berthproject/berth/internal/store"
)

// jobsFixture is the API on a real store and a real job manager that is never started: jobs
// stay queued, which is all the authorization tests need of them (no engine).
type jobsFixture struct {
	*fixture
	st  *store.Store
	m   *job.Manager
	tok map[string]string // by token name
}

// newJobsFixture has two projects, alpha and beta; alpha has members ann and amy, project
// admin ada and reader rex; beta member bob and project admin bea; root is the admin (of the
// default project).
func newJobsFixture(t *testing.T) *jobsFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sg, err := storage.New(st, filepath.Join(dir, "storage"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"alpha", "beta"} {
		if err := st.CreateProject(ctx, store.Project{ID: p}); err != nil {
			t.Fatal(err)
		}
	}
	a := auth.New(st)
	tok := map[string]string{}
	for _, ts := range []auth.TokenSpec{
		{Name: "root", Role: auth.RoleAdmin},
		{Name: "ann", Project: "alpha", Role: auth.RoleMember},
		{Name: "amy", Project: "alpha", Role: auth.RoleMember},
		{Name: "ada", Project: "alpha", Role: auth.RoleProjectAdmin},
		{Name: "rex", Project: "alpha", Role: auth.RoleReadOnly},
		{Name: "bob", Project: "beta", Role: auth.RoleMember},
		{Name: "bea", Project: "beta", Role: auth.RoleProjectAdmin},
	} {
		plain, _, err := a.IssueToken(ctx, ts)
		if err != nil {
			t.Fatal(err)
		}
		tok[ts.Name] = plain
	}
	cfg := job.DefaultConfig(filepath.Join(dir, "data"))
	cfg.Instance = "api-test"
	cfg.Executors = map[string]job.Executor{job.KindBlock: block.New(), job.KindComponent: component.New(component.Config{Storage: sg})}
	m, err := job.New(cfg, st, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{}, Deps{Jobs: m, Auth: a, Store: st, Storage: sg,
		BuildLog: func(h string) (string, error) {
			p := filepath.Join(dir, h+".log")
			return p, os.WriteFile(p, []byte("Step 1/1 : FROM busybox\n"), 0o644)
		}})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &jobsFixture{fixture: &fixture{srv: srv, admin: tok["root"], user: tok["ann"]}, st: st, m: m, tok: tok}
}

// submit submits a block as who and returns the job's id.
func (f *jobsFixture) submit(t *testing.T, who string) string {
	t.Helper()
	code, m := f.do(t, "POST", "/api/v1/jobs", f.tok[who], validSpec)
	if code != 201 {
		t.Fatalf("%s submits: %d %v", who, code, m)
	}
	return m["id"].(string)
}

func jobIDs(t *testing.T, m map[string]any) []string {
	t.Helper()
	list, ok := m["jobs"].([]any)
	if !ok {
		t.Fatalf("not a job list: %v", m)
	}
	var ids []string
	for _, j := range list {
		ids = append(ids, j.(map[string]any)["id"].(string))
	}
	return ids
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestProjectsIsolateJobs(t *testing.T) {
	f := newJobsFixture(t)
	annJob, amyJob, bobJob := f.submit(t, "ann"), f.submit(t, "amy"), f.submit(t, "bob")

	// A job is its submitter's project's, and says so.
	if code, m := f.do(t, "GET", "/api/v1/jobs/"+annJob, f.tok["ann"], ""); code != 200 || m["project"] != "alpha" {
		t.Fatalf("ann's job: %d %v", code, m)
	}
	if j, _ := f.m.Get(context.Background(), bobJob); j.Project != "beta" {
		t.Fatalf("bob's job is of project %q", j.Project)
	}

	// Neither project sees, reads the output of, cancels or deletes the other's jobs: 404, as
	// for a job that does not exist.
	for _, c := range []struct{ who, id string }{{"ann", bobJob}, {"ada", bobJob}, {"rex", bobJob}, {"bob", annJob}, {"bea", amyJob}} {
		for _, req := range []struct{ method, path string }{
			{"GET", "/api/v1/jobs/" + c.id},
			{"GET", "/api/v1/jobs/" + c.id + "/logs"},
			{"GET", "/api/v1/jobs/" + c.id + "/outputs"},
			{"POST", "/api/v1/jobs/" + c.id + "/cancel"},
			{"DELETE", "/api/v1/jobs/" + c.id + "?force=true"},
		} {
			if code, m := f.do(t, req.method, req.path, f.tok[c.who], ""); code != 404 {
				t.Errorf("%s %s %s: %d %v, want 404", c.who, req.method, req.path, code, m)
			}
		}
	}

	// Lists: a project's members see all its jobs (not only their own), nothing of another's;
	// ?owner= still narrows; ?project= of another project is 404; the admin sees all.
	_, m := f.do(t, "GET", "/api/v1/jobs", f.tok["ann"], "")
	if ids := jobIDs(t, m); len(ids) != 2 || !has(ids, annJob) || !has(ids, amyJob) {
		t.Errorf("ann's list %v, want %s and %s", ids, annJob, amyJob)
	}
	_, m = f.do(t, "GET", "/api/v1/jobs?owner=amy", f.tok["rex"], "")
	if ids := jobIDs(t, m); len(ids) != 1 || ids[0] != amyJob {
		t.Errorf("rex's list ?owner=amy %v, want %s", ids, amyJob)
	}
	_, m = f.do(t, "GET", "/api/v1/jobs", f.tok["bob"], "")
	if ids := jobIDs(t, m); len(ids) != 1 || ids[0] != bobJob {
		t.Errorf("bob's list %v, want %s", ids, bobJob)
	}
	if code, m := f.do(t, "GET", "/api/v1/jobs?project=beta", f.tok["ann"], ""); code != 404 {
		t.Errorf("ann lists beta's jobs: %d %v", code, m)
	}
	_, m = f.do(t, "GET", "/api/v1/jobs", f.admin, "")
	if ids := jobIDs(t, m); len(ids) != 3 {
		t.Errorf("the admin's list %v, want all 3", ids)
	}
	_, m = f.do(t, "GET", "/api/v1/jobs?project=beta", f.admin, "")
	if ids := jobIDs(t, m); len(ids) != 1 || ids[0] != bobJob {
		t.Errorf("the admin's list ?project=beta %v, want %s", ids, bobJob)
	}

	// A reader cannot submit; a member cannot cancel or delete another member's job (403: it
	// may see it), a project admin can, and the admin can anywhere.
	if code, _ := f.do(t, "POST", "/api/v1/jobs", f.tok["rex"], validSpec); code != 403 {
		t.Errorf("a reader submits: %d", code)
	}
	if code, m := f.do(t, "POST", "/api/v1/jobs/"+amyJob+"/cancel", f.tok["ann"], ""); code != 403 {
		t.Errorf("ann cancels amy's job: %d %v", code, m)
	}
	if code, m := f.do(t, "DELETE", "/api/v1/jobs/"+amyJob+"?force=true", f.tok["ann"], ""); code != 403 {
		t.Errorf("ann deletes amy's job: %d %v", code, m)
	}
	if code, m := f.do(t, "POST", "/api/v1/jobs/"+annJob+"/cancel", f.tok["ann"], ""); code != 200 || m["state"] != "cancelled" {
		t.Errorf("ann cancels her own job: %d %v", code, m)
	}
	if code, m := f.do(t, "POST", "/api/v1/jobs/"+amyJob+"/cancel", f.tok["ada"], ""); code != 200 || m["state"] != "cancelled" {
		t.Errorf("alpha's project admin cancels amy's job: %d %v", code, m)
	}
	if code, m := f.do(t, "DELETE", "/api/v1/jobs/"+amyJob, f.tok["ada"], ""); code != 200 {
		t.Errorf("alpha's project admin deletes amy's job: %d %v", code, m)
	}
	if code, m := f.do(t, "POST", "/api/v1/jobs/"+bobJob+"/cancel", f.admin, ""); code != 200 || m["state"] != "cancelled" {
		t.Errorf("the admin cancels bob's job: %d %v", code, m)
	}
}

func TestBuildLogOfProjectsImages(t *testing.T) {
	f := newJobsFixture(t)
	ctx := context.Background()
	id := f.submit(t, "ann")
	row, err := f.st.GetJob(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	row.SpecHash = "0123abcd"
	if err := f.st.UpdateJob(ctx, row); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		who, hash string
		want      int
	}{
		{"ann", "0123abcd", 200}, {"rex", "0123abcd", 200}, // a job of alpha used it
		{"bob", "0123abcd", 404}, {"ann", "ffff0000", 404}, // no job of the caller's project did
		{"root", "ffff0000", 200}, // the admin reads any
	} {
		if code, _, body := f.raw(t, "GET", "/api/v1/images/"+c.hash+"/build-log", f.tok[c.who]); code != c.want {
			t.Errorf("%s reads the build log of %s: %d %s, want %d", c.who, c.hash, code, body, c.want)
		}
	}
}

const compBody = `{"id": %q, "image": "busybox:1.36", "actions": ["probe"]}`

func componentIDs(t *testing.T, m map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, c := range m["components"].([]any) {
		c := c.(map[string]any)
		out[c["id"].(string)] = c["project"].(string)
	}
	return out
}

func TestComponentsSharedAndPrivate(t *testing.T) {
	f := newJobsFixture(t)
	reg := func(who, id, query string) (int, map[string]any) {
		return f.do(t, "POST", "/api/v1/components"+query, f.tok[who], fmt.Sprintf(compBody, id))
	}
	// Shared: an admin's to register; private: a project admin's, in its project.
	if code, m := reg("ada", "ex-shared", "?shared=true"); code != 403 {
		t.Fatalf("a project admin registers a shared component: %d %v", code, m)
	}
	if code, m := reg("root", "ex-shared", "?shared=true"); code != 201 || m["shared"] != true {
		t.Fatalf("the admin registers a shared component: %d %v", code, m)
	}
	if code, m := reg("ann", "ex-alpha", ""); code != 403 {
		t.Fatalf("a member registers a component: %d %v", code, m)
	}
	if code, m := reg("ada", "ex-alpha", ""); code != 201 || m["project"] != "alpha" {
		t.Fatalf("alpha's project admin registers ex-alpha: %d %v", code, m)
	}
	if code, m := reg("bea", "ex-beta", ""); code != 201 {
		t.Fatalf("beta's project admin registers ex-beta: %d %v", code, m)
	}
	// An id is server-wide: taken by another project (or a shared component) is 409; its own
	// project registers it again (a new definition).
	if code, m := reg("bea", "ex-alpha", ""); code != 409 {
		t.Fatalf("beta takes alpha's component id: %d %v", code, m)
	}
	if code, m := reg("bea", "ex-shared", ""); code != 409 {
		t.Fatalf("beta takes a shared component's id: %d %v", code, m)
	}
	if code, m := reg("ada", "ex-alpha", ""); code != 201 {
		t.Fatalf("alpha registers ex-alpha again: %d %v", code, m)
	}

	// Lists: shared + own project's; the admin all.
	_, m := f.do(t, "GET", "/api/v1/components", f.tok["rex"], "")
	if got := componentIDs(t, m); len(got) != 2 || got["ex-shared"] != "" || got["ex-alpha"] != "alpha" {
		t.Errorf("alpha's components: %v", got)
	}
	_, m = f.do(t, "GET", "/api/v1/components", f.tok["bob"], "")
	if got := componentIDs(t, m); len(got) != 2 || got["ex-beta"] != "beta" {
		t.Errorf("beta's components: %v", got)
	}
	_, m = f.do(t, "GET", "/api/v1/components", f.admin, "")
	if got := componentIDs(t, m); len(got) != 3 {
		t.Errorf("the admin's components: %v", got)
	}

	// Another project's component is not there: its sync actions and its deletion are 404;
	// a shared one's deletion is the admin's (403).
	if code, m := f.do(t, "POST", "/api/v1/components/ex-alpha/actions/probe", f.tok["bob"], ""); code != 404 {
		t.Errorf("bob runs alpha's component's action: %d %v", code, m)
	}
	if code, m := f.do(t, "DELETE", "/api/v1/components/ex-alpha", f.tok["bea"], ""); code != 404 {
		t.Errorf("beta deletes alpha's component: %d %v", code, m)
	}
	if code, m := f.do(t, "DELETE", "/api/v1/components/ex-shared", f.tok["bea"], ""); code != 403 {
		t.Errorf("a project admin deletes a shared component: %d %v", code, m)
	}
	if code, m := f.do(t, "DELETE", "/api/v1/components/ex-beta", f.tok["bea"], ""); code != 200 {
		t.Errorf("beta deletes its component: %d %v", code, m)
	}
}

func TestConfigsBelongToTheirProject(t *testing.T) {
	f := newJobsFixture(t)
	ctx := context.Background()
	f.st.PutComponent(ctx, "ex-shared", fmt.Sprintf(compBody, "ex-shared"))
	f.st.RegisterComponent(ctx, "alpha", "ex-alpha", fmt.Sprintf(compBody, "ex-alpha"))
	save := func(who, id, comp string) (int, map[string]any) {
		return f.do(t, "POST", "/api/v1/configs", f.tok[who], fmt.Sprintf(`{"id": %q, "component": %q, "parameters": {}}`, id, comp))
	}
	if code, m := save("ann", "a-1", "ex-alpha"); code != 201 {
		t.Fatalf("ann saves a configuration of alpha's component: %d %v", code, m)
	}
	if code, m := save("ann", "a-2", "ex-shared"); code != 201 {
		t.Fatalf("ann saves a configuration of a shared component: %d %v", code, m)
	}
	// Another project's component is not registered as far as beta knows.
	if code, m := save("bob", "b-1", "ex-alpha"); code != 422 {
		t.Fatalf("bob saves a configuration of alpha's component: %d %v", code, m)
	}
	if code, m := save("bob", "b-1", "ex-shared"); code != 201 {
		t.Fatalf("bob saves a configuration of a shared component: %d %v", code, m)
	}
	// A configuration id is server-wide.
	if code, m := save("bob", "a-1", "ex-shared"); code != 409 {
		t.Fatalf("bob takes alpha's configuration id: %d %v", code, m)
	}
	if row, _ := f.st.GetConfig(ctx, "a-1"); row.Project != "alpha" || row.ComponentID != "ex-alpha" {
		t.Fatalf("a-1 after bob's try: %+v", row)
	}

	// Everything of another project's configuration is 404.
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/api/v1/configs/a-1", ""},
		{"GET", "/api/v1/configs/a-1/state", ""},
		{"POST", "/api/v1/configs/a-1/run", ""},
		{"GET", "/api/v1/configs/a-1/credentials", ""},
		{"PUT", "/api/v1/configs/a-1/credentials", `{"token": "x"}`},
		{"DELETE", "/api/v1/configs/a-1/credentials", ""},
		{"DELETE", "/api/v1/configs/a-1", ""},
	} {
		if code, m := f.do(t, req.method, req.path, f.tok["bea"], req.body); code != 404 {
			t.Errorf("bea %s %s: %d %v, want 404", req.method, req.path, code, m)
		}
	}
	_, m := f.do(t, "GET", "/api/v1/configs", f.tok["bob"], "")
	if list := m["configs"].([]any); len(list) != 1 || list[0].(map[string]any)["project"] != "beta" {
		t.Errorf("bob's configurations: %v", m)
	}
	_, m = f.do(t, "GET", "/api/v1/configs", f.tok["rex"], "")
	if list := m["configs"].([]any); len(list) != 2 {
		t.Errorf("rex's configurations: %v", m)
	}
	_, m = f.do(t, "GET", "/api/v1/configs", f.admin, "")
	if list := m["configs"].([]any); len(list) != 3 {
		t.Errorf("the admin's configurations: %v", m)
	}

	// A run is a job of the configuration's project, whoever starts it.
	code, m := f.do(t, "POST", "/api/v1/configs/a-2/run", f.tok["ann"], "")
	if code != 201 || m["project"] != "alpha" {
		t.Fatalf("ann runs a-2: %d %v", code, m)
	}
	code, m = f.do(t, "POST", "/api/v1/configs/b-1/run", f.admin, "")
	if code != 201 || m["project"] != "beta" {
		t.Fatalf("the admin runs b-1: %d %v", code, m)
	}
	if code, m := f.do(t, "GET", "/api/v1/jobs/"+m["id"].(string), f.tok["ann"], ""); code != 404 {
		t.Errorf("ann reads the run of beta's configuration: %d %v", code, m)
	}
	// A member of the project deletes it.
	if code, m := f.do(t, "DELETE", "/api/v1/configs/a-1", f.tok["amy"], ""); code != 200 {
		t.Errorf("amy deletes a-1: %d %v", code, m)
	}
}
