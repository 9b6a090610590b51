package cli_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// TestTwoProjectsThroughCLI: two teams on one server, driven through the CLI. Neither sees,
// runs, changes or maps the other's jobs, configurations, tables, files, services or
// entities; a bucket shared by one is readable and not writable from the other; an admin sees
// both; the audit log shows every action with its actor.
func TestTwoProjectsThroughCLI(t *testing.T) {
	eng := enginetest.Require(t)
	img := enginetest.Busybox(t, eng)
	u := enginetest.Unique(t)[:6]
	dataDir := t.TempDir()
	instance := "test-" + enginetest.Unique(t)
	if err := os.WriteFile(filepath.Join(dataDir, "instance"), []byte(instance+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	svc := "proj-" + u
	t.Cleanup(func() {
		eng.Sweep(context.Background(), map[string]string{runtime.LabelTest: "1", runtime.LabelInstance: instance})
		eng.Sweep(context.Background(), map[string]string{runtime.LabelTest: "1", runtime.LabelService: svc})
	})
	comp := "e2e-proj-" + u
	t.Cleanup(func() { removeComponentImages(eng, comp) })
	s := startServer(t, dataDir, freePort(t))
	local := func(args ...string) runResult {
		t.Helper()
		r := berth(t, nil, append(args, "--data-dir", dataDir)...)
		if r.code != 0 {
			t.Fatalf("berth %v: %d %s %s", args, r.code, r.stdout, r.stderr)
		}
		return r
	}
	local("project", "create", "p1")
	local("project", "create", "p2")
	env := func(tok string) []string {
		return []string{"BERTH_SERVER=http://" + s.addr, "BERTH_TOKEN=" + tok, "BERTH_CONFIG=" + filepath.Join(dataDir, "no-cli-config.json")}
	}
	admin := env(s.token)
	tokenOf := func(name, project, role string) []string {
		return env(strings.TrimSpace(local("token", "create", "--name", name, "--project", project, "--role", role).stdout))
	}
	ann, ada, bob := tokenOf("ann", "p1", "member"), tokenOf("ada", "p1", "project-admin"), tokenOf("bob", "p2", "member")
	ok := func(who []string, args ...string) runResult {
		t.Helper()
		r := berth(t, who, args...)
		if r.code != 0 {
			t.Fatalf("berth %v: %d %s %s", args, r.code, r.stdout, r.stderr)
		}
		return r
	}
	// refused: the server said no (exit 64) with a message containing want.
	refused := func(who []string, want string, args ...string) {
		t.Helper()
		r := berth(t, who, args...)
		if r.code != 64 || !strings.Contains(r.stderr, want) {
			t.Fatalf("berth %v: want exit 64 with %q, got %d %s %s", args, want, r.code, r.stdout, r.stderr)
		}
	}

	// The admin registers a component every project may use: it copies its input table out.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+img+"\nCOPY run.sh /run.sh\nENTRYPOINT [\"sh\", \"/run.sh\"]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "run.sh"), []byte("cp /data/in/tables/t.csv /data/out/tables/copy.csv\n"), 0o644)
	compFile := filepath.Join(t.TempDir(), "component.json")
	os.WriteFile(compFile, []byte(`{"id": "`+comp+`"}`), 0o644)
	ok(admin, "component", "register", "--shared", "--build", dir, compFile)
	config := func(id, in, out string) string {
		p := filepath.Join(t.TempDir(), id+".json")
		os.WriteFile(p, []byte(`{"id": "`+id+`", "component": "`+comp+`", "storage": {
			"input": {"tables": [{"source": "`+in+`", "destination": "t.csv"}]},
			"output": {"tables": [{"source": "copy.csv", "destination": "`+out+`"}]}}}`), 0o644)
		return p
	}

	// Project p1: a bucket, a table, a file, a configuration run, an entity, a service.
	csv := filepath.Join(t.TempDir(), "t.csv")
	os.WriteFile(csv, []byte("k,v\n1,a\n"), 0o644)
	ok(ann, "storage", "bucket", "create", "in.c-a")
	ok(ann, "storage", "table", "load", "in.c-a.t", csv)
	ok(ann, "storage", "file", "upload", csv, "--tag", "p1")
	ok(ann, "config", "create", config("cfg-a-"+u, "in.c-a.t", "out.c-a.copy"))
	ok(ann, "config", "run", "cfg-a-"+u, "--wait")
	if r := ok(ann, "storage", "table", "export", "out.c-a.copy"); r.stdout != "k,v\n1,a\n" {
		t.Fatalf("p1's output: %q", r.stdout)
	}
	ok(ann, "service", "entity", "pkg-"+u, "Conn", `{"password": "p1-only"}`)
	svcDir := t.TempDir()
	os.WriteFile(filepath.Join(svcDir, "Dockerfile"), []byte("FROM "+img+"\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\"]\n"), 0o644)
	os.WriteFile(filepath.Join(svcDir, "container.json"), []byte(`{"on_demand": true}`), 0o644)
	ok(ann, "service", "create", svcDir, "--name", svc, "--package", "pkg-"+u)
	var annJobs []struct {
		ID      string `json:"id"`
		Project string `json:"project"`
		Owner   string `json:"owner"`
		State   string `json:"state"`
	}
	json.Unmarshal([]byte(ok(ann, "job", "list", "-o", "json").stdout), &annJobs)
	if len(annJobs) != 1 || annJobs[0].Project != "p1" || annJobs[0].State != "succeeded" {
		t.Fatalf("p1's jobs: %+v", annJobs)
	}
	annJob := annJobs[0].ID
	var files []struct {
		ID json.Number `json:"id"`
	}
	json.Unmarshal([]byte(ok(ann, "storage", "file", "list", "-o", "json").stdout), &files)
	if len(files) != 1 {
		t.Fatalf("p1's files: %+v", files)
	}
	annFile := files[0].ID.String()

	// Project p2 sees none of it, and can touch none of it.
	for _, list := range [][]string{{"job", "list"}, {"config", "list"}, {"storage", "bucket", "list"},
		{"storage", "table", "list"}, {"storage", "file", "list"}, {"service", "list"}} {
		r := ok(bob, append(list, "-o", "json")...)
		for _, p1thing := range []string{annJob, "cfg-a-", "in.c-a", `"project": "p1"`, svc} {
			if strings.Contains(r.stdout, p1thing) {
				t.Fatalf("p2's %v shows p1's %s:\n%s", list, p1thing, r.stdout)
			}
		}
	}
	refused(bob, "not found", "job", "get", annJob)
	refused(bob, "not found", "job", "logs", annJob)
	refused(bob, "not found", "job", "cancel", annJob)
	refused(bob, "not found", "job", "delete", annJob)
	refused(bob, "not found", "config", "get", "cfg-a-"+u)
	refused(bob, "not found", "config", "run", "cfg-a-"+u)
	refused(bob, "not found", "config", "delete", "cfg-a-"+u)
	refused(bob, "not found", "storage", "table", "export", "in.c-a.t")
	refused(bob, "not found", "storage", "table", "load", "in.c-a.t", csv)
	refused(bob, "not found", "storage", "table", "delete", "in.c-a.t")
	refused(bob, "not found", "storage", "file", "download", annFile)
	refused(bob, "not found", "storage", "file", "delete", annFile)
	refused(bob, "not found", "service", "get", svc)
	refused(bob, "not found", "service", "start", svc)
	refused(bob, "not found", "service", "delete", svc)
	refused(bob, "in use", "storage", "bucket", "create", "in.c-a")
	if code := proxyStatus(t, s.addr, svc, bob); code != http.StatusNotFound {
		t.Fatalf("p2 through the proxy to p1's service: %d, want 404", code)
	}
	// p2's service cannot name p1's entity, nor take p1's service name.
	bobSvc := t.TempDir()
	os.WriteFile(filepath.Join(bobSvc, "Dockerfile"), []byte("FROM "+img+"\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\"]\n"), 0o644)
	os.WriteFile(filepath.Join(bobSvc, "container.json"), []byte(`{"on_demand": true, "env": {"DB": "#{x.pkg-`+u+`:Conn}"}}`), 0o644)
	refused(bob, "Conn", "service", "create", bobSvc, "--name", svc+"-b", "--package", "pkg-"+u)
	os.WriteFile(filepath.Join(bobSvc, "container.json"), []byte(`{"on_demand": true}`), 0o644)
	refused(bob, "taken", "service", "create", bobSvc, "--name", svc)
	// p2's configuration mapping p1's table fails as a missing table would.
	ok(bob, "config", "create", config("cfg-b-"+u, "in.c-a.t", "out.c-b.copy"))
	if r := berth(t, bob, "config", "run", "cfg-b-"+u, "--wait"); r.code != 1 || !strings.Contains(r.stdout+r.stderr, "not in project p2 or shared with it") {
		t.Fatalf("p2 mapping p1's table: %d %s %s", r.code, r.stdout, r.stderr)
	}

	// p1's project admin shares the bucket: p2 reads it, maps it, and still cannot write it.
	refused(ann, "project-admin", "storage", "bucket", "share", "in.c-a", "--project", "p2")
	ok(ada, "storage", "bucket", "share", "in.c-a", "--project", "p2")
	if r := ok(bob, "storage", "table", "export", "in.c-a.t"); r.stdout != "k,v\n1,a\n" {
		t.Fatalf("p2 reading the shared table: %q", r.stdout)
	}
	refused(bob, "read-only", "storage", "table", "load", "in.c-a.t", csv)
	refused(bob, "read-only", "storage", "table", "delete", "in.c-a.t")
	ok(bob, "config", "run", "cfg-b-"+u, "--wait")
	if r := ok(bob, "storage", "table", "export", "out.c-b.copy"); r.stdout != "k,v\n1,a\n" {
		t.Fatalf("p2's output from the shared table: %q", r.stdout)
	}
	refused(ann, "not found", "storage", "table", "export", "out.c-b.copy")

	// The admin sees both projects.
	all := ok(admin, "job", "list", "-o", "json").stdout
	if !strings.Contains(all, `"p1"`) || !strings.Contains(all, `"p2"`) {
		t.Fatalf("the admin's job list lacks a project:\n%s", all)
	}
	buckets := ok(admin, "storage", "bucket", "list", "-o", "json").stdout
	if !strings.Contains(buckets, "in.c-a") || !strings.Contains(buckets, "out.c-b") {
		t.Fatalf("the admin's bucket list lacks a project's bucket:\n%s", buckets)
	}

	// The audit log has every action above, with its actor.
	var entries []struct {
		ActorName string `json:"actor_name"`
		Project   string `json:"project"`
		Action    string `json:"action"`
		Resource  string `json:"resource"`
		Outcome   string `json:"outcome"`
	}
	if err := json.Unmarshal([]byte(ok(admin, "audit", "list", "--limit", "1000", "-o", "json").stdout), &entries); err != nil {
		t.Fatal(err)
	}
	has := func(actor, action, outcome string) {
		t.Helper()
		for _, e := range entries {
			if e.ActorName == actor && e.Action == action && e.Outcome == outcome {
				return
			}
		}
		t.Errorf("the audit log has no %s entry by %s for %s", outcome, actor, action)
	}
	has("admin", "POST /api/v1/components", "ok")
	has("ann", "POST /api/v1/storage/buckets", "ok")
	has("ann", "POST /api/v1/storage/tables/{id}/import", "ok")
	has("ann", "POST /api/v1/storage/files", "ok")
	has("ann", "POST /api/v1/configs", "ok")
	has("ann", "POST /api/v1/configs/{id}/run", "ok")
	has("ann", "PUT /api/v1/packages/{pkg}/entities/{name}", "ok")
	has("ann", "POST /api/v1/services", "ok")
	has("ann", "job.finished", "ok")
	has("bob", "POST /api/v1/jobs/{id}/cancel", "denied")
	has("bob", "DELETE /api/v1/jobs/{id}", "denied")
	has("bob", "POST /api/v1/configs/{id}/run", "denied")
	has("bob", "POST /api/v1/storage/tables/{id}/import", "denied")
	has("bob", "POST /api/v1/services/{name}/start", "denied")
	has("bob", "job.finished", "error")
	has("bob", "job.finished", "ok")
	has("ann", "POST /api/v1/storage/buckets/{id}/shares", "denied")
	has("ada", "POST /api/v1/storage/buckets/{id}/shares", "ok")
	// A project admin reads its own project's log only; a member reads none.
	own := ok(ada, "audit", "list", "--limit", "1000", "-o", "json").stdout
	if strings.Contains(own, `"actor_name": "bob"`) || !strings.Contains(own, `"actor_name": "ann"`) {
		t.Fatalf("p1's project admin reads another project's entries, or not its own:\n%s", own)
	}
	refused(bob, "project-admin", "audit", "list")
}

// proxyStatus is the status of GET /proxy/<name>/ with the token in env.
func proxyStatus(t *testing.T, addr, name string, env []string) int {
	t.Helper()
	var tok string
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "BERTH_TOKEN="); ok {
			tok = v
		}
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/proxy/"+name+"/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
