package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/storage"
)

// loadTable loads n rows (id, name) into table id of project through the storage package.
func (f *fixture) loadTable(t *testing.T, project, id string, n int) {
	t.Helper()
	rows := make([][]string, n)
	for i := range rows {
		rows[i] = []string{fmt.Sprint(i + 1), fmt.Sprintf("row-%03d", i+1)}
	}
	if err := f.stor.Load(context.Background(), f.stor.DB(), id, []string{"id", "name"}, rows, storage.LoadOptions{Project: project}); err != nil {
		t.Fatalf("load %s: %v", id, err)
	}
}

// TestStoragePages: the storage page lists the buckets, tables and files a token may read
// (its project's, not another's), a table's preview pages through its rows, and another
// project's table does not exist.
func TestStoragePages(t *testing.T) {
	f := newFixture(t)
	f.loadTable(t, "alpha", "in.c-alpha.sales", 120)
	f.loadTable(t, "beta", "in.c-beta.secret", 3)
	if status, out := f.call(t, f.alpha, "POST", "/api/v1/storage/files?name=report.txt&tag=monthly&tag=final", "application/octet-stream", []byte("hello")); status != http.StatusCreated {
		t.Fatalf("upload: %d %s", status, out)
	}
	resp, body := f.page(t, f.alpha, "/ui/storage")
	strictPage(t, "/ui/storage", resp, body)
	for _, want := range []string{"in.c-alpha", "in.c-alpha.sales", "120", "report.txt", "monthly", "final", "/api/v1/storage/files/", `data-upload="/api/v1/storage/files"`} {
		if !strings.Contains(body, want) {
			t.Errorf("alpha's storage page lacks %q", want)
		}
	}
	if strings.Contains(body, "in.c-beta") {
		t.Errorf("alpha sees beta's bucket")
	}
	_, body = f.page(t, f.alphaRead, "/ui/storage")
	if strings.Contains(body, "data-upload") {
		t.Errorf("a read-only token gets an upload form")
	}
	resp, body = f.page(t, f.alpha, "/ui/storage/tables/in.c-alpha.sales?page=3")
	strictPage(t, "table", resp, body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Rows 101–120 of 120") || !strings.Contains(body, "row-120") ||
		strings.Contains(body, "row-100<") || strings.Contains(body, `rel="next"`) || !strings.Contains(body, `?page=2" rel="prev"`) {
		t.Errorf("page 3 of the preview: %d\n%s", resp.StatusCode, body)
	}
	_, body = f.page(t, f.alpha, "/ui/storage/tables/in.c-alpha.sales")
	if !strings.Contains(body, "Rows 1–50 of 120") || !strings.Contains(body, "row-050") || strings.Contains(body, "row-051") || !strings.Contains(body, `?page=2" rel="next"`) {
		t.Errorf("page 1 of the preview:\n%s", body)
	}
	if resp, _ := f.page(t, f.alpha, "/ui/storage/tables/in.c-beta.secret"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("beta's table for alpha: %d, want 404", resp.StatusCode)
	}
	if _, body := f.page(t, f.admin, "/ui/storage?project=beta"); !strings.Contains(body, "in.c-beta.secret") || strings.Contains(body, "in.c-alpha.sales") {
		t.Errorf("an admin's storage page for beta:\n%s", body)
	}
}

// TestImagesAndAdminPages: the images page is the server's (an admin's), the admin page
// shows tokens, projects, the audit log, the engine and the version to an admin, and refuses
// a member.
func TestImagesAndAdminPages(t *testing.T) {
	f := newFixture(t)
	resp, body := f.page(t, f.admin, "/ui/images")
	strictPage(t, "/ui/images", resp, body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, f.h.Img) || !strings.Contains(body, "disk-meter") {
		t.Errorf("the images page: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := f.page(t, f.alpha, "/ui/images"); resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
		t.Errorf("the images page for a member: %d", resp.StatusCode)
	}
	resp, body = f.page(t, f.admin, "/ui/admin?actor=ann")
	strictPage(t, "/ui/admin", resp, body)
	for _, want := range []string{"ann", "reader", "bob", "alpha", "beta", `data-api="/api/v1/tokens"`, `data-api="/api/v1/projects"`,
		`data-method="DELETE"`, "Audit log", "berth-version", "Cgroup"} {
		if !strings.Contains(body, want) {
			t.Errorf("the admin page lacks %q", want)
		}
	}
	if resp, _ := f.page(t, f.alpha, "/ui/admin"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the admin page for a member: %d", resp.StatusCode)
	}
	// A project admin manages its own project's tokens and reads its audit log; it makes no
	// project and sees no other project's tokens.
	padmin, _, err := f.auth.IssueToken(context.Background(), auth.TokenSpec{Name: "pat", Project: "alpha", Role: auth.RoleProjectAdmin})
	if err != nil {
		t.Fatal(err)
	}
	resp, body = f.page(t, padmin, "/ui/admin")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-name="ann"`) || strings.Contains(body, `data-name="bob"`) ||
		strings.Contains(body, `data-api="/api/v1/projects"`) || !strings.Contains(body, "Audit log") || strings.Contains(body, `<option value="admin"`) {
		t.Errorf("a project admin's admin page: %d\n%s", resp.StatusCode, body)
	}
	if m := regexp.MustCompile(`data-name="root"[^\n]*\n(?:[^\n]*\n){0,7}`).FindString(body); m != "" {
		t.Errorf("a project admin sees the admin token: %s", m)
	}
	if resp, body := f.page(t, f.admin, "/ui/admin?since=yesterday"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Since: a time") {
		t.Errorf("a bad since: %d", resp.StatusCode)
	}
}

// TestJobPageExtras: a job's page offers its log as a file, a search box and a re-run that
// sends the same spec; the log file is the job's output.
func TestJobPageExtras(t *testing.T) {
	f := newFixture(t)
	j := f.submit(t, f.alpha, "rerun-me", "echo alpha-line\necho beta-line")
	f.wait(t, j.ID)
	resp, body := f.page(t, f.alpha, "/ui/jobs/"+j.ID)
	strictPage(t, "job", resp, body)
	for _, want := range []string{`id="log-search"`, "/ui/jobs/" + j.ID + "/log", `data-post="/api/v1/jobs"`, "data-body="} {
		if !strings.Contains(body, want) {
			t.Errorf("the job page lacks %q", want)
		}
	}
	// The re-run body is what POST /api/v1/jobs takes: it runs the same spec again.
	m := regexp.MustCompile(`data-body="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no re-run body in the page")
	}
	status, out := f.call(t, f.alpha, "POST", "/api/v1/jobs", "application/json", []byte(html.UnescapeString(m[1])))
	if status != http.StatusCreated {
		t.Fatalf("re-run: %d %s", status, out)
	}
	var again job.Job
	if err := json.Unmarshal([]byte(out), &again); err != nil {
		t.Fatal(err)
	}
	if done := f.wait(t, again.ID); done.State != job.StateSucceeded || done.Name != "rerun-me" || done.Block.Code != j.Block.Code {
		t.Errorf("the re-run: %s %s %q", done.State, done.Name, done.Block.Code)
	}
	if _, body := f.page(t, f.alphaRead, "/ui/jobs/"+j.ID); strings.Contains(body, "Run again") {
		t.Errorf("a read-only token may not re-run")
	}
	resp, body = f.page(t, f.alpha, "/ui/jobs/"+j.ID+"/log")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || !strings.Contains(body, "alpha-line\nbeta-line") {
		t.Errorf("the log file: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp, _ := f.page(t, f.beta, "/ui/jobs/"+j.ID+"/log"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("alpha's job log for beta: %d", resp.StatusCode)
	}
}
