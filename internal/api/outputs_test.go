package api

import (
	"archive/tar"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/job"
)

func (f *fixture) raw(t *testing.T, method, path, token string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// outputsJob adds a finished job owned by owner whose out/ holds a file, a nested file and
// a link pointing out of the folder (when withLink).
func outputsJob(t *testing.T, f *fixture, id, owner string, withLink bool) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "jobs", id, "out")
	os.MkdirAll(filepath.Join(out, "sub"), 0o755)
	os.WriteFile(filepath.Join(out, "result.csv"), []byte("a,b\n1,2\n"), 0o644)
	os.WriteFile(filepath.Join(out, "sub", "note.txt"), []byte("deep\n"), 0o644)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("not yours"), 0o644)
	if withLink {
		os.Symlink(secret, filepath.Join(out, "leak"))
	}
	f.jobs.mu.Lock()
	project := "default"
	if owner == "root" {
		project = "ops" // the admin's job is of another project than ann's
	}
	f.jobs.jobs[id] = job.Job{ID: id, Owner: owner, Project: project, State: job.StateSucceeded, Kind: job.KindBlock, OutputDir: out}
	f.jobs.mu.Unlock()
	return out
}

func TestOutputsTarAndFile(t *testing.T) {
	f := newFixture(t)
	outputsJob(t, f, "jout", "ann", false)
	code, h, body := f.raw(t, "GET", "/api/v1/jobs/jout/outputs", f.user)
	if code != 200 || h.Get("Content-Type") != "application/x-tar" {
		t.Fatalf("tar: %d %s %s", code, h.Get("Content-Type"), body)
	}
	got := map[string]string{}
	tr := tar.NewReader(strings.NewReader(string(body)))
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		b, _ := io.ReadAll(tr)
		got[hd.Name] = string(b)
	}
	want := map[string]string{"result.csv": "a,b\n1,2\n", "sub/": "", "sub/note.txt": "deep\n"}
	if len(got) != len(want) {
		t.Fatalf("tar entries %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("tar entry %s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}

	code, _, body = f.raw(t, "GET", "/api/v1/jobs/jout/outputs?path=sub/note.txt", f.user)
	if code != 200 || string(body) != "deep\n" {
		t.Fatalf("one file: %d %q", code, body)
	}
	for _, bad := range []string{"../../secret", "/etc/passwd", "sub/../result.csv", "", "./result.csv"} {
		code, m := f.do(t, "GET", "/api/v1/jobs/jout/outputs?path="+bad, f.user, "")
		if c, field := errCode(m); code != 400 || c != "bad_request" || field != "path" {
			t.Errorf("path %q: %d %v", bad, code, m)
		}
	}
	if code, m := f.do(t, "GET", "/api/v1/jobs/jout/outputs?path=nope.txt", f.user, ""); code != 404 {
		t.Errorf("absent file: %d %v", code, m)
	}
	if code, m := f.do(t, "GET", "/api/v1/jobs/jout/outputs?path=sub", f.user, ""); code != 422 {
		t.Errorf("a folder as a file: %d %v", code, m)
	}
}

func TestOutputsRefuseLinksAndStrangers(t *testing.T) {
	f := newFixture(t)
	outputsJob(t, f, "jlink", "ann", true)
	code, m := f.do(t, "GET", "/api/v1/jobs/jlink/outputs", f.user, "")
	if c, _ := errCode(m); code != 422 || c != "refused" || !strings.Contains(m["error"].(map[string]any)["message"].(string), "leak") {
		t.Fatalf("tar with a link: %d %v", code, m)
	}
	code, _, body := f.raw(t, "GET", "/api/v1/jobs/jlink/outputs?path=leak", f.user)
	if code != 422 || strings.Contains(string(body), "not yours") {
		t.Fatalf("a link as a file: %d %s", code, body)
	}
	// Another project's job is not there at all, as for GET /api/v1/jobs/{id}.
	outputsJob(t, f, "jroot", "root", false)
	if code, m := f.do(t, "GET", "/api/v1/jobs/jroot/outputs", f.user, ""); code != 404 {
		t.Fatalf("another's outputs: %d %v", code, m)
	}
	if code, _, _ := f.raw(t, "GET", "/api/v1/jobs/jroot/outputs", f.admin); code != 200 {
		t.Fatalf("the admin reads any job's outputs: %d", code)
	}
	// A job that kept nothing: 404 saying so.
	f.jobs.jobs["jnone"] = job.Job{ID: "jnone", Owner: "ann", State: job.StateFailed, Kind: job.KindBlock}
	code, m = f.do(t, "GET", "/api/v1/jobs/jnone/outputs", f.user, "")
	if code != 404 || !strings.Contains(m["error"].(map[string]any)["message"].(string), "kept no outputs") {
		t.Fatalf("no outputs: %d %v", code, m)
	}
	f.jobs.jobs["jrun"] = job.Job{ID: "jrun", Owner: "ann", State: job.StateRunning, Kind: job.KindBlock}
	code, m = f.do(t, "GET", "/api/v1/jobs/jrun/outputs", f.user, "")
	if code != 409 || !strings.Contains(m["error"].(map[string]any)["message"].(string), "running") {
		t.Fatalf("running job: %d %v", code, m)
	}
}
