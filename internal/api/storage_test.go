package api

import (
	"context"
	"io"
	"net/http"
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

// projFixture is a real API over a real store and storage with two projects, p1 and p2, and
// tokens of each: a member, a project admin, a read-only token; and a server admin.
type projFixture struct {
	*fixture
	st               *store.Store
	sg               *storage.Storage
	a1, a2, pa1, ro1 string // member p1, member p2, project-admin p1, read-only p1
	pa2, serverAdmin string
	issue            func(spec auth.TokenSpec) string
}

func newProjFixture(t *testing.T) *projFixture {
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
	for _, p := range []string{"p1", "p2"} {
		if err := st.CreateProject(ctx, store.Project{ID: p}); err != nil {
			t.Fatal(err)
		}
	}
	a := auth.New(st)
	issue := func(spec auth.TokenSpec) string {
		tok, _, err := a.IssueToken(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	s := New(Config{}, Deps{Jobs: &fakeJobs{jobs: map[string]job.Job{}}, Auth: a, Store: st, Storage: sg})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	f := &projFixture{fixture: &fixture{srv: srv}, st: st, sg: sg, issue: issue,
		a1:          issue(auth.TokenSpec{Name: "ann", Project: "p1", Role: auth.RoleMember}),
		a2:          issue(auth.TokenSpec{Name: "bob", Project: "p2", Role: auth.RoleMember}),
		pa1:         issue(auth.TokenSpec{Name: "pam", Project: "p1", Role: auth.RoleProjectAdmin}),
		pa2:         issue(auth.TokenSpec{Name: "pat", Project: "p2", Role: auth.RoleProjectAdmin}),
		ro1:         issue(auth.TokenSpec{Name: "rob", Project: "p1", Role: auth.RoleReadOnly}),
		serverAdmin: issue(auth.TokenSpec{Name: "root", Role: auth.RoleAdmin}),
	}
	return f
}

// raw sends a body and returns the status and the body as text.
func (f *projFixture) raw(t *testing.T, method, path, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func ids(m map[string]any, key, field string) []string {
	var out []string
	list, _ := m[key].([]any)
	for _, x := range list {
		v := x.(map[string]any)[field]
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case float64:
			out = append(out, strconv.FormatInt(int64(v), 10))
		}
	}
	return out
}

func errMessage(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

// TestStorageProjectsIsolated: two projects' tokens on one server: neither lists, reads,
// writes or deletes the other's buckets, tables and files; a bucket id stays server-wide;
// everything listed names its project; an admin sees both and filters by ?project=.
func TestStorageProjectsIsolated(t *testing.T) {
	f := newProjFixture(t)
	// p1 makes a bucket, a table and a file.
	if code, m := f.do(t, "POST", "/api/v1/storage/buckets", f.a1, `{"id": "in.c-one"}`); code != 201 || m["project"] != "p1" {
		t.Fatalf("create bucket: %d %v", code, m)
	}
	if code, m := f.do(t, "POST", "/api/v1/storage/tables/in.c-one.t/import", f.a1, "id,v\n1,a\n2,b\n"); code != 200 || m["project"] != "p1" {
		t.Fatalf("import: %d %v", code, m)
	}
	// A table imported into a bucket that does not exist yet makes it in the caller's project.
	if code, m := f.do(t, "POST", "/api/v1/storage/tables/in.c-two.t/import", f.a2, "x\n1\n"); code != 200 || m["project"] != "p2" {
		t.Fatalf("import p2: %d %v", code, m)
	}
	code, m := f.do(t, "POST", "/api/v1/storage/files?name=a.txt&tag=x", f.a1, "hello")
	if code != 201 || m["project"] != "p1" {
		t.Fatalf("upload: %d %v", code, m)
	}
	fid := strconv.FormatInt(int64(m["id"].(float64)), 10)

	// The bucket id is server-wide: p2 cannot take it.
	code, m = f.do(t, "POST", "/api/v1/storage/buckets", f.a2, `{"id": "in.c-one"}`)
	if c, _ := errCode(m); code != 409 || c != "conflict" || errMessage(m) != "bucket id in.c-one is in use by another project" {
		t.Fatalf("p2 takes p1's bucket id: %d %v", code, m)
	}
	// Nor by importing into it.
	if code, body := f.raw(t, "POST", "/api/v1/storage/tables/in.c-one.x/import", f.a2, "x\n1\n"); code != 404 && code != 409 {
		t.Fatalf("p2 imports into p1's bucket: %d %s", code, body)
	}

	// Lists: each sees its own only, every entry names its project.
	_, m = f.do(t, "GET", "/api/v1/storage/buckets", f.a2, "")
	if got := strings.Join(ids(m, "buckets", "id"), ","); got != "in.c-two" {
		t.Fatalf("p2's buckets: %v", m)
	}
	if got := strings.Join(ids(m, "buckets", "project"), ","); got != "p2" {
		t.Fatalf("p2's buckets' projects: %v", m)
	}
	_, m = f.do(t, "GET", "/api/v1/storage/tables", f.a2, "")
	if got := strings.Join(ids(m, "tables", "id"), ","); got != "in.c-two.t" {
		t.Fatalf("p2's tables: %v", m)
	}
	_, m = f.do(t, "GET", "/api/v1/storage/tables?bucket=in.c-one", f.a2, "")
	if got := ids(m, "tables", "id"); len(got) != 0 {
		t.Fatalf("p2 lists p1's bucket: %v", m)
	}
	_, m = f.do(t, "GET", "/api/v1/storage/files", f.a2, "")
	if got := ids(m, "files", "id"); len(got) != 0 {
		t.Fatalf("p2's files: %v", m)
	}
	_, m = f.do(t, "GET", "/api/v1/storage/files", f.a1, "")
	if got := strings.Join(ids(m, "files", "project"), ","); got != "p1" {
		t.Fatalf("p1's files: %v", m)
	}

	// p2 cannot read, write or delete p1's: the answers say not found, as for what is absent.
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/storage/tables/in.c-one.t", ""},
		{"GET", "/api/v1/storage/tables/in.c-one.t/export", ""},
		{"POST", "/api/v1/storage/tables/in.c-one.t/import", "id,v\n9,z\n"},
		{"DELETE", "/api/v1/storage/tables/in.c-one.t", ""},
		{"DELETE", "/api/v1/storage/buckets/in.c-one?force=true", ""},
		{"POST", "/api/v1/storage/buckets/in.c-one/shares", `{"project": "p2"}`},
		{"GET", "/api/v1/storage/files/" + fid + "/download", ""},
		{"POST", "/api/v1/storage/files/" + fid + "/tags", `{"tags": ["mine"]}`},
		{"DELETE", "/api/v1/storage/files/" + fid, ""},
	} {
		for _, tok := range []string{f.a2, f.pa2} {
			if code, body := f.raw(t, c.method, c.path, tok, c.body); code != 404 {
				t.Errorf("p2: %s %s: %d %s, want 404", c.method, c.path, code, body)
			}
		}
	}
	if got := exportOf(t, f.sg, "in.c-one.t"); got != "id,v\n1,a\n2,b\n" {
		t.Fatalf("p1's table changed: %q", got)
	}
	if fl, _ := f.sg.GetFile(context.Background(), mustID(t, fid)); strings.Join(fl.Tags, ",") != "x" {
		t.Fatalf("p1's file changed: %v", fl.Tags)
	}

	// p1's read-only token reads but does not write.
	if code, _ := f.raw(t, "GET", "/api/v1/storage/tables/in.c-one.t/export", f.ro1, ""); code != 200 {
		t.Fatalf("read-only export: %d", code)
	}
	if code, _ := f.raw(t, "POST", "/api/v1/storage/tables/in.c-one.t/import", f.ro1, "id\n1\n"); code != 403 {
		t.Fatalf("read-only import: %d", code)
	}

	// The server admin sees both, and filters by project.
	_, m = f.do(t, "GET", "/api/v1/storage/buckets", f.serverAdmin, "")
	if got := strings.Join(ids(m, "buckets", "id"), ","); got != "in.c-one,in.c-two" {
		t.Fatalf("admin's buckets: %v", m)
	}
	_, m = f.do(t, "GET", "/api/v1/storage/buckets?project=p2", f.serverAdmin, "")
	if got := strings.Join(ids(m, "buckets", "id"), ","); got != "in.c-two" {
		t.Fatalf("admin's buckets of p2: %v", m)
	}
	_, m = f.do(t, "GET", "/api/v1/storage/tables?project=p1", f.serverAdmin, "")
	if got := strings.Join(ids(m, "tables", "id"), ","); got != "in.c-one.t" {
		t.Fatalf("admin's tables of p1: %v", m)
	}
	_, m = f.do(t, "GET", "/api/v1/storage/files?project=p1", f.serverAdmin, "")
	if got := ids(m, "files", "id"); len(got) != 1 {
		t.Fatalf("admin's files of p1: %v", m)
	}

	// p1's member deletes its own.
	if code, body := f.raw(t, "DELETE", "/api/v1/storage/files/"+fid, f.a1, ""); code != 200 {
		t.Fatalf("p1 deletes its file: %d %s", code, body)
	}
	if code, body := f.raw(t, "DELETE", "/api/v1/storage/buckets/in.c-one?force=true", f.a1, ""); code != 200 {
		t.Fatalf("p1 deletes its bucket: %d %s", code, body)
	}
}

// TestStorageBucketSharing: a bucket shared with another project is listed and readable
// there, never writable; only the owner's project admin shares; unsharing takes it away.
func TestStorageBucketSharing(t *testing.T) {
	f := newProjFixture(t)
	if code, body := f.raw(t, "POST", "/api/v1/storage/tables/in.c-shared.t/import", f.a1, "id\n1\n"); code != 200 {
		t.Fatalf("import: %d %s", code, body)
	}
	// A member may not share; the project must exist; the owner's project admin shares.
	if code, m := f.do(t, "POST", "/api/v1/storage/buckets/in.c-shared/shares", f.a1, `{"project": "p2"}`); code != 403 {
		t.Fatalf("member shares: %d %v", code, m)
	}
	code, m := f.do(t, "POST", "/api/v1/storage/buckets/in.c-shared/shares", f.pa1, `{"project": "nope"}`)
	if _, field := errCode(m); code != 422 || field != "project" {
		t.Fatalf("share with no such project: %d %v", code, m)
	}
	code, m = f.do(t, "POST", "/api/v1/storage/buckets/in.c-shared/shares", f.pa1, `{"project": "p2"}`)
	if code != 200 || m["project"] != "p1" || strings.Join(anyStrings(m["shared_with"]), ",") != "p2" {
		t.Fatalf("share: %d %v", code, m)
	}

	// p2 lists and reads it, with its owner and shares.
	_, m = f.do(t, "GET", "/api/v1/storage/buckets", f.a2, "")
	if got := strings.Join(ids(m, "buckets", "id"), ","); got != "in.c-shared" {
		t.Fatalf("p2's buckets: %v", m)
	}
	if b := m["buckets"].([]any)[0].(map[string]any); b["project"] != "p1" || strings.Join(anyStrings(b["shared_with"]), ",") != "p2" {
		t.Fatalf("shared bucket as p2 sees it: %v", b)
	}
	_, m = f.do(t, "GET", "/api/v1/storage/tables", f.a2, "")
	if got := strings.Join(ids(m, "tables", "id"), ","); got != "in.c-shared.t" {
		t.Fatalf("p2's tables: %v", m)
	}
	if code, body := f.raw(t, "GET", "/api/v1/storage/tables/in.c-shared.t/export", f.a2, ""); code != 200 || body != "id\n1\n" {
		t.Fatalf("p2 exports: %d %q", code, body)
	}
	// Not writable: no import, no delete, no sharing on.
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/v1/storage/tables/in.c-shared.t/import", "id\n2\n"},
		{"POST", "/api/v1/storage/tables/in.c-shared.new/import", "id\n2\n"},
		{"DELETE", "/api/v1/storage/tables/in.c-shared.t", ""},
		{"DELETE", "/api/v1/storage/buckets/in.c-shared?force=true", ""},
		{"POST", "/api/v1/storage/buckets/in.c-shared/shares", `{"project": "default"}`},
		{"DELETE", "/api/v1/storage/buckets/in.c-shared/shares/p2", ""},
	} {
		if code, body := f.raw(t, c.method, c.path, f.pa2, c.body); code < 400 {
			t.Errorf("p2: %s %s: %d %s, want a refusal", c.method, c.path, code, body)
		}
	}
	if got := exportOf(t, f.sg, "in.c-shared.t"); got != "id\n1\n" {
		t.Fatalf("the shared table changed: %q", got)
	}
	if _, err := f.sg.GetTable(context.Background(), f.sg.DB(), "in.c-shared.new"); err == nil {
		t.Fatal("p2 made a table in the shared bucket")
	}

	// Unshare: gone from p2.
	if code, m := f.do(t, "DELETE", "/api/v1/storage/buckets/in.c-shared/shares/p2", f.pa1, ""); code != 200 || len(anyStrings(m["shared_with"])) != 0 {
		t.Fatalf("unshare: %d %v", code, m)
	}
	if code, m := f.do(t, "DELETE", "/api/v1/storage/buckets/in.c-shared/shares/p2", f.pa1, ""); code != 404 {
		t.Fatalf("unshare twice: %d %v", code, m)
	}
	_, m = f.do(t, "GET", "/api/v1/storage/buckets", f.a2, "")
	if got := ids(m, "buckets", "id"); len(got) != 0 {
		t.Fatalf("p2 still lists it: %v", m)
	}
	if code, _ := f.raw(t, "GET", "/api/v1/storage/tables/in.c-shared.t/export", f.a2, ""); code != 404 {
		t.Fatalf("p2 still reads it: %d", code)
	}
}

// TestStorageQuota: a project's max_storage_bytes refuses an import or an upload that would
// exceed it (413 quota_exceeded naming the quota, the usage and the limit) and keeps nothing
// of it; usage is reported per project.
func TestStorageQuota(t *testing.T) {
	f := newProjFixture(t)
	ctx := context.Background()
	limit := int64(100)
	if err := f.st.SetProjectQuotas(ctx, "p1", nil, &limit); err != nil {
		t.Fatal(err)
	}
	if code, body := f.raw(t, "POST", "/api/v1/storage/tables/in.c-q.t/import", f.a1, "id,v\n1,a\n2,b\n"); code != 200 {
		t.Fatalf("small import: %d %s", code, body)
	}
	code, m := f.do(t, "GET", "/api/v1/storage/usage", f.a1, "")
	used, _ := m["bytes"].(float64)
	if code != 200 || m["project"] != "p1" || m["limit"] != float64(100) || used <= 0 || used > 100 {
		t.Fatalf("usage: %d %v", code, m)
	}
	// Over the quota: refused, and the table is as it was.
	code, m = f.do(t, "POST", "/api/v1/storage/tables/in.c-q.t/import?incremental=1", f.a1, "id,v\n3,"+strings.Repeat("x", 200)+"\n")
	if c, _ := errCode(m); code != 413 || c != "quota_exceeded" || !strings.Contains(errMessage(m), "100") ||
		!strings.Contains(errMessage(m), strconv.Itoa(int(used))) || !strings.Contains(errMessage(m), "p1") {
		t.Fatalf("import over the quota: %d %v", code, m)
	}
	if got := exportOf(t, f.sg, "in.c-q.t"); got != "id,v\n1,a\n2,b\n" {
		t.Fatalf("after a refused import: %q", got)
	}
	// A new table in a new bucket over the quota: neither is kept.
	if code, body := f.raw(t, "POST", "/api/v1/storage/tables/in.c-q2.big/import", f.a1, "v\n"+strings.Repeat("y", 300)+"\n"); code != 413 {
		t.Fatalf("new table over the quota: %d %s", code, body)
	}
	if _, err := f.sg.GetBucket(ctx, f.sg.DB(), "in.c-q2"); err == nil {
		t.Fatal("the refused import's bucket was kept")
	}
	// An upload over the quota: refused, nothing listed.
	code, m = f.do(t, "POST", "/api/v1/storage/files?name=big.bin", f.a1, strings.Repeat("z", 500))
	if c, _ := errCode(m); code != 413 || c != "quota_exceeded" {
		t.Fatalf("upload over the quota: %d %v", code, m)
	}
	if fs, _ := f.sg.Files(ctx, storage.FileQuery{Project: "p1"}); len(fs) != 0 {
		t.Fatalf("the refused upload was kept: %v", fs)
	}
	// p2 has no quota: the same upload is fine there, and does not count for p1.
	if code, m := f.do(t, "POST", "/api/v1/storage/files?name=big.bin", f.a2, strings.Repeat("z", 500)); code != 201 {
		t.Fatalf("p2 upload: %d %v", code, m)
	}
	if _, m := f.do(t, "GET", "/api/v1/storage/usage", f.a1, ""); m["bytes"] != used {
		t.Fatalf("p1's usage moved: %v", m)
	}
	if _, m := f.do(t, "GET", "/api/v1/storage/usage", f.a2, ""); m["bytes"] != float64(500) || m["limit"] != float64(0) {
		t.Fatalf("p2's usage: %v", m)
	}
	// Only an admin asks for another project's usage.
	if code, _ := f.do(t, "GET", "/api/v1/storage/usage?project=p1", f.a2, ""); code != 404 {
		t.Fatalf("p2 reads p1's usage: %d", code)
	}
	if code, m := f.do(t, "GET", "/api/v1/storage/usage?project=p1", f.serverAdmin, ""); code != 200 || m["bytes"] != used {
		t.Fatalf("admin reads p1's usage: %d %v", code, m)
	}
}

func exportOf(t *testing.T, sg *storage.Storage, id string) string {
	t.Helper()
	var b strings.Builder
	if _, _, err := sg.Export(context.Background(), id, &b, storage.ExportOptions{}); err != nil {
		t.Fatalf("export %s: %v", id, err)
	}
	return b.String()
}

func mustID(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func anyStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
