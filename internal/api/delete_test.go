package api

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/storage"
	"github.com/berthproject/berth/internal/store"
)

// deletingJobs is fakeJobs with the manager's Delete: an active job needs force.
type deletingJobs struct{ *fakeJobs }

func (d deletingJobs) Delete(ctx context.Context, id string, force bool) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	j, ok := d.jobs[id]
	if !ok {
		return nil, job.ErrNotFound
	}
	removed := []string{}
	if !j.State.Terminal() {
		if !force {
			return nil, job.ErrActive
		}
		removed = append(removed, "cancelled it")
	}
	delete(d.jobs, id)
	return append(removed, "workspace", "record"), nil
}

type delFixture struct {
	*fixture
	st *store.Store
	sg *storage.Storage
}

func newDelFixture(t *testing.T) *delFixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sg, err := storage.New(st, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := auth.New(st)
	admin, _, _ := a.Issue(ctx, "root", auth.RoleAdmin, "")
	user, _, _ := a.Issue(ctx, "ann", auth.RoleUser, "")
	fj := &fakeJobs{jobs: map[string]job.Job{}}
	s := New(Config{}, Deps{Jobs: deletingJobs{fj}, Auth: a, Store: st, Storage: sg})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &delFixture{fixture: &fixture{srv: srv, jobs: fj, admin: admin, user: user}, st: st, sg: sg}
}

func removedOf(t *testing.T, m map[string]any) string {
	t.Helper()
	rs, ok := m["removed"].([]any)
	if !ok || m["deleted"] == nil {
		t.Fatalf("not a delete answer: %v", m)
	}
	var parts []string
	for _, r := range rs {
		parts = append(parts, r.(string))
	}
	return strings.Join(parts, "; ")
}

func TestDeleteJobRoute(t *testing.T) {
	f := newDelFixture(t)
	f.jobs.jobs["jdone"] = job.Job{ID: "jdone", Owner: "ann", State: job.StateSucceeded}
	f.jobs.jobs["jrun"] = job.Job{ID: "jrun", Owner: "ann", State: job.StateRunning}
	f.jobs.jobs["jroot"] = job.Job{ID: "jroot", Owner: "root", State: job.StateSucceeded}
	f.jobs.jobs["jother"] = job.Job{ID: "jother", Owner: "bob", Project: "other", State: job.StateSucceeded}
	if code, m := f.do(t, "DELETE", "/api/v1/jobs/jroot", f.user, ""); code != 403 {
		t.Fatalf("another member's job: %d %v", code, m)
	}
	if code, m := f.do(t, "DELETE", "/api/v1/jobs/jother", f.user, ""); code != 404 {
		t.Fatalf("another project's job: %d %v", code, m)
	}
	code, m := f.do(t, "DELETE", "/api/v1/jobs/jdone", f.user, "")
	if code != 200 || m["deleted"] != "job jdone" || !strings.Contains(removedOf(t, m), "workspace") {
		t.Fatalf("delete: %d %v", code, m)
	}
	if code, _ := f.do(t, "GET", "/api/v1/jobs/jdone", f.user, ""); code != 404 {
		t.Fatalf("deleted job still there: %d", code)
	}
	code, m = f.do(t, "DELETE", "/api/v1/jobs/jrun", f.user, "")
	if c, field := errCode(m); code != 409 || c != "conflict" || field != "force" {
		t.Fatalf("running job without force: %d %v", code, m)
	}
	if code, m := f.do(t, "DELETE", "/api/v1/jobs/jrun?force=maybe", f.user, ""); code != 400 {
		t.Fatalf("bad force: %d %v", code, m)
	}
	code, m = f.do(t, "DELETE", "/api/v1/jobs/jrun?force=true", f.user, "")
	if code != 200 || !strings.Contains(removedOf(t, m), "cancelled") {
		t.Fatalf("running job with force: %d %v", code, m)
	}
}

func TestDeleteComponentsAndConfigs(t *testing.T) {
	f := newDelFixture(t)
	ctx := context.Background()
	f.st.PutComponent(ctx, "ex-a", `{"id":"ex-a"}`)
	f.st.PutComponent(ctx, "ex-b", `{"id":"ex-b"}`)
	if _, err := f.st.PutConfig(ctx, "c1", "ex-a", `{"parameters":{}}`); err != nil {
		t.Fatal(err)
	}
	f.st.PutCredentials(ctx, "c1", []byte("sealed"))
	if code, m := f.do(t, "DELETE", "/api/v1/components/ex-a", f.user, ""); code != 403 {
		t.Fatalf("a user deletes a component: %d %v", code, m)
	}
	code, m := f.do(t, "DELETE", "/api/v1/components/ex-a", f.admin, "")
	if code != 409 || !strings.Contains(m["error"].(map[string]any)["message"].(string), "c1") {
		t.Fatalf("component in use: %d %v", code, m)
	}
	if code, m := f.do(t, "DELETE", "/api/v1/components/ex-b", f.admin, ""); code != 200 || m["deleted"] != "component ex-b" {
		t.Fatalf("unused component: %d %v", code, m)
	}
	if _, err := f.st.GetComponent(ctx, "ex-b"); err == nil {
		t.Fatal("component ex-b still stored")
	}
	code, m = f.do(t, "DELETE", "/api/v1/configs/c1", f.admin, "")
	if code != 200 || !strings.Contains(removedOf(t, m), "credentials") {
		t.Fatalf("config: %d %v", code, m)
	}
	if _, err := f.st.GetConfig(ctx, "c1"); err == nil {
		t.Fatal("config c1 still stored")
	}
	if _, _, err := f.st.GetCredentials(ctx, "c1"); err == nil {
		t.Fatal("config c1's credentials still stored")
	}
	if code, _ := f.do(t, "DELETE", "/api/v1/configs/c1", f.admin, ""); code != 404 {
		t.Fatalf("config twice: %d", code)
	}
	// With force, a component goes with the configurations using it.
	f.st.PutConfig(ctx, "c2", "ex-a", `{"parameters":{}}`)
	code, m = f.do(t, "DELETE", "/api/v1/components/ex-a?force=true", f.admin, "")
	if code != 200 || !strings.Contains(removedOf(t, m), "configuration c2") {
		t.Fatalf("component with force: %d %v", code, m)
	}
	if _, err := f.st.GetConfig(ctx, "c2"); err == nil {
		t.Fatal("config c2 still stored")
	}
}

func TestDeleteStorage(t *testing.T) {
	f := newDelFixture(t)
	ctx := context.Background()
	db := f.sg.DB()
	if err := f.sg.CreateBucket(ctx, db, "", "in.c-main"); err != nil {
		t.Fatal(err)
	}
	f.sg.CreateBucket(ctx, db, "", "in.c-empty")
	if err := f.sg.Load(ctx, db, "in.c-main.people", []string{"id", "name"}, [][]string{{"1", "a"}, {"2", "b"}}, storage.LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	// Deleting takes a member of the bucket's project: a read-only token is refused.
	ro, _, _ := auth.New(f.st).Issue(ctx, "reader", auth.RoleReadOnly, "")
	if code, m := f.do(t, "DELETE", "/api/v1/storage/buckets/in.c-main", ro, ""); code != 403 {
		t.Fatalf("a read-only token deletes a bucket: %d %v", code, m)
	}
	code, m := f.do(t, "DELETE", "/api/v1/storage/buckets/in.c-main", f.admin, "")
	if code != 409 || !strings.Contains(m["error"].(map[string]any)["message"].(string), "in.c-main.people") {
		t.Fatalf("bucket not empty: %d %v", code, m)
	}
	code, m = f.do(t, "DELETE", "/api/v1/storage/tables/in.c-main.people", f.admin, "")
	if code != 200 || !strings.Contains(removedOf(t, m), "2 row(s)") {
		t.Fatalf("table: %d %v", code, m)
	}
	if _, err := f.sg.GetTable(ctx, db, "in.c-main.people"); err == nil {
		t.Fatal("table still there")
	}
	var n int
	db.QueryRow(`SELECT COUNT(*) FROM storage_rows WHERE table_id = 'in.c-main.people'`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d rows left behind", n)
	}
	if code, m := f.do(t, "DELETE", "/api/v1/storage/buckets/in.c-empty", f.admin, ""); code != 200 {
		t.Fatalf("empty bucket: %d %v", code, m)
	}
	f.sg.Load(ctx, db, "in.c-main.t2", []string{"x"}, [][]string{{"1"}}, storage.LoadOptions{})
	code, m = f.do(t, "DELETE", "/api/v1/storage/buckets/in.c-main?force=true", f.admin, "")
	if code != 200 || !strings.Contains(removedOf(t, m), "table in.c-main.t2") {
		t.Fatalf("bucket with force: %d %v", code, m)
	}
	if bs, _ := f.sg.ListBuckets(ctx); len(bs) != 0 {
		t.Fatalf("buckets left: %v", bs)
	}

	file, err := f.sg.UploadFile(ctx, "a.txt", strings.NewReader("hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	code, m = f.do(t, "DELETE", "/api/v1/storage/files/"+strconv.FormatInt(file.ID, 10), f.admin, "")
	if code != 200 || !strings.Contains(removedOf(t, m), "5 bytes") {
		t.Fatalf("file: %d %v", code, m)
	}
	if _, _, err := f.sg.OpenFile(ctx, file.ID); err == nil {
		t.Fatal("file still there")
	}
	if code, _ := f.do(t, "DELETE", "/api/v1/storage/files/"+strconv.FormatInt(file.ID, 10), f.admin, ""); code != 404 {
		t.Fatalf("file twice: %d", code)
	}
	if code, _ := f.do(t, "DELETE", "/api/v1/storage/files/abc", f.admin, ""); code != 400 {
		t.Fatalf("bad file id: %d", code)
	}
	if code, _ := f.do(t, "DELETE", "/api/v1/storage/tables/in.c-x.nope", f.admin, ""); code != 404 {
		t.Fatalf("absent table: %d", code)
	}
}
