package cli_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// TestServerJobOutputsAndDelete: a block job's outputs come back through `job submit --out`
// and `job outputs`; deleting the job removes its folder; a running job is deleted only with
// --force, which cancels it first.
func TestServerJobOutputsAndDelete(t *testing.T) {
	enginetest.Require(t)
	dataDir := t.TempDir()
	addr := freePort(t)
	s := startServer(t, dataDir, addr)
	env := []string{"BERTH_SERVER=http://" + addr, "BERTH_TOKEN=" + s.token}

	spec := filepath.Join(t.TempDir(), "block.yaml")
	os.WriteFile(spec, []byte("name: outs\nlanguage: shell\ncode: |\n  mkdir -p /data/out/sub\n  echo one > /data/out/a.txt\n  echo two > /data/out/sub/b.txt\n"), 0o644)
	out1 := filepath.Join(t.TempDir(), "o1")
	r := berth(t, env, "job", "submit", "--out", out1, spec)
	if r.code != 0 {
		t.Fatalf("submit --out: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for rel, want := range map[string]string{"a.txt": "one\n", "sub/b.txt": "two\n"} {
		if b, err := os.ReadFile(filepath.Join(out1, rel)); err != nil || string(b) != want {
			t.Fatalf("submit --out: %s = %q, %v (stderr %s)", rel, b, err, r.stderr)
		}
	}
	if !strings.Contains(r.stderr, "berth job outputs ") || strings.Contains(r.stderr, dataDir) {
		t.Fatalf("the summary should say how to fetch the outputs, not the server's path:\n%s", r.stderr)
	}
	r = berth(t, env, "job", "list", "-o", "json")
	var list []struct{ ID, State string }
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 {
		t.Fatalf("job list: %v %s", err, r.stdout)
	}
	id := list[0].ID
	out2 := filepath.Join(t.TempDir(), "o2")
	if r = berth(t, env, "job", "outputs", id, "--out", out2); r.code != 0 {
		t.Fatalf("job outputs: %d %s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(out2, "sub", "b.txt")); err != nil || string(b) != "two\n" {
		t.Fatalf("job outputs: %q %v", b, err)
	}
	if r = berth(t, env, "job", "outputs", id, "--path", "a.txt"); r.code != 0 || r.stdout != "one\n" {
		t.Fatalf("job outputs --path: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r = berth(t, env, "job", "outputs", id, "--path", "../../admin-token"); r.code != 64 || strings.Contains(r.stdout, s.token) {
		t.Fatalf("job outputs --path escaping: %d %q %s", r.code, r.stdout, r.stderr)
	}

	jobDir := filepath.Join(dataDir, "jobs", id)
	if _, err := os.Stat(filepath.Join(jobDir, "out", "a.txt")); err != nil {
		t.Fatalf("the job's kept outputs are not where expected: %v", err)
	}
	r = berth(t, env, "job", "delete", id)
	if r.code != 0 || !strings.Contains(r.stdout, "deleted job "+id) || !strings.Contains(r.stdout, "kept outputs") {
		t.Fatalf("job delete: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(jobDir); !os.IsNotExist(err) {
		t.Fatalf("the job's folder is still there: %v", err)
	}
	if r = berth(t, env, "job", "get", id); r.code != 64 {
		t.Fatalf("job get after delete: %d %s", r.code, r.stderr)
	}

	// A running job: refused without --force; with it, cancelled, then deleted.
	os.WriteFile(spec, []byte("name: long\nlanguage: shell\ncode: sleep 60\n"), 0o644)
	r = berth(t, env, "job", "submit", spec)
	long := strings.TrimSpace(r.stdout)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		var j struct{ State string }
		s.call("GET", "/api/v1/jobs/"+long, nil, &j)
		if j.State == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s never ran: %s", long, j.State)
		}
	}
	if r = berth(t, env, "job", "delete", long); r.code != 64 || !strings.Contains(r.stderr, "running") || !strings.Contains(r.stderr, "force") {
		t.Fatalf("delete a running job: %d %s", r.code, r.stderr)
	}
	r = berth(t, env, "job", "delete", "--force", long)
	if r.code != 0 || !strings.Contains(r.stdout, "cancelled") {
		t.Fatalf("delete --force: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "jobs", long)); !os.IsNotExist(err) {
		t.Fatalf("the cancelled job's folder is still there: %v", err)
	}

	// Storage: a bucket holding a table is deleted only with --force; a file goes with its content.
	csv := filepath.Join(t.TempDir(), "people.csv")
	os.WriteFile(csv, []byte("id,name\n1,a\n2,b\n"), 0o644)
	if r = berth(t, env, "storage", "bucket", "create", "in.c-del"); r.code != 0 {
		t.Fatalf("bucket create: %d %s", r.code, r.stderr)
	}
	if r = berth(t, env, "storage", "table", "load", "in.c-del.people", csv); r.code != 0 {
		t.Fatalf("table load: %d %s", r.code, r.stderr)
	}
	if r = berth(t, env, "storage", "bucket", "delete", "in.c-del"); r.code != 64 || !strings.Contains(r.stderr, "in.c-del.people") || !strings.Contains(r.stderr, "force") {
		t.Fatalf("delete a bucket holding a table: %d %s", r.code, r.stderr)
	}
	if r = berth(t, env, "storage", "bucket", "delete", "--force", "in.c-del"); r.code != 0 || !strings.Contains(r.stdout, "table in.c-del.people") {
		t.Fatalf("bucket delete --force: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r = berth(t, env, "storage", "table", "get", "in.c-del.people"); r.code != 64 {
		t.Fatalf("table after its bucket went: %d %s", r.code, r.stdout)
	}
	if r = berth(t, env, "storage", "file", "upload", csv); r.code != 0 || !strings.HasPrefix(r.stdout, "file ") {
		t.Fatalf("file upload: %d %s %s", r.code, r.stdout, r.stderr)
	}
	fileID := strings.TrimSuffix(strings.Fields(r.stdout)[1], ":")
	if r = berth(t, env, "storage", "file", "delete", fileID, "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, `"deleted": "file `+fileID) {
		t.Fatalf("file delete -o json: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r = berth(t, env, "storage", "file", "download", fileID); r.code != 64 {
		t.Fatalf("download a deleted file: %d %s", r.code, r.stdout)
	}
}

// TestServiceDeleteRemovesWhatItMade: deleting a started service removes its container,
// image and network from the engine, and its record.
func TestServiceDeleteRemovesWhatItMade(t *testing.T) {
	eng, dataDir, name, instance := serviceSetup(t, "del")
	ctx := context.Background()
	addr := freePort(t)
	s := startServer(t, dataDir, addr)
	env := []string{"BERTH_SERVER=http://" + addr, "BERTH_TOKEN=" + s.token}
	if r := berth(t, env, "service", "create", "../../examples/service-echo", "--name", name); r.code != 0 {
		t.Fatalf("create: %d %s %s", r.code, r.stdout, r.stderr)
	}
	var v struct {
		Image          string `json:"image"`
		ImageState     string `json:"image_state"`
		ContainerState string `json:"container_state"`
	}
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		s.call("GET", "/api/v1/services/"+name, nil, &v)
		if v.ImageState == "READY" {
			break
		}
		if v.ImageState == "ERROR" || time.Now().After(deadline) {
			t.Fatalf("service: %+v", v)
		}
	}
	// The first request through the proxy starts it (its container and network).
	req, _ := http.NewRequest("GET", "http://"+addr+"/proxy/"+name+"/hi", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("through the proxy: %v %v", resp, err)
	}
	resp.Body.Close()
	sel := map[string]string{runtime.LabelService: name, runtime.LabelInstance: instance}
	tasks, _ := eng.List(ctx, sel)
	imgs, _ := eng.ListImages(ctx, sel)
	nets, _ := eng.ListNetworks(ctx, sel)
	if len(tasks) != 1 || len(imgs) != 1 || len(nets) != 1 {
		t.Fatalf("before delete: %d containers, %d images, %d networks", len(tasks), len(imgs), len(nets))
	}
	r := berth(t, env, "service", "delete", name)
	if r.code != 0 || !strings.Contains(r.stdout, "deleted service "+name) || !strings.Contains(r.stdout, "image berth/svc-"+name) ||
		!strings.Contains(r.stdout, "network ") || !strings.Contains(r.stdout, "container ") {
		t.Fatalf("service delete: %d %s %s", r.code, r.stdout, r.stderr)
	}
	tasks, _ = eng.List(ctx, sel)
	imgs, _ = eng.ListImages(ctx, sel)
	nets, _ = eng.ListNetworks(ctx, sel)
	if len(tasks) != 0 || len(imgs) != 0 || len(nets) != 0 {
		t.Fatalf("after delete: %d containers, %d images, %d networks left", len(tasks), len(imgs), len(nets))
	}
	if _, err := eng.InspectImage(ctx, v.Image); err == nil {
		t.Fatal("the service's image is still on the engine")
	}
	if code := s.call("GET", "/api/v1/services/"+name, nil, nil); code != 404 {
		t.Fatalf("service get after delete: %d", code)
	}
	if r := berth(t, env, "service", "delete", name); r.code != 64 {
		t.Fatalf("delete twice: %d %s", r.code, r.stderr)
	}
}

// TestTokenDeleteNeedsRevokeFirst: a working token is not deleted; a revoked one is, and is
// gone from the list.
func TestTokenDeleteNeedsRevokeFirst(t *testing.T) {
	dataDir := t.TempDir()
	dd := []string{"--data-dir", dataDir}
	if r := berth(t, nil, append(dd, "token", "create", "--name", "ci")...); r.code != 0 {
		t.Fatalf("create: %d %s", r.code, r.stderr)
	}
	r := berth(t, nil, append(dd, "token", "delete", "ci")...)
	if r.code != 64 || !strings.Contains(r.stderr, "revoke it first") {
		t.Fatalf("delete a working token: %d %s", r.code, r.stderr)
	}
	if r := berth(t, nil, append(dd, "token", "revoke", "ci")...); r.code != 0 {
		t.Fatalf("revoke: %d %s", r.code, r.stderr)
	}
	r = berth(t, nil, append(dd, "token", "delete", "ci")...)
	if r.code != 0 || !strings.Contains(r.stdout, "deleted token") || !strings.Contains(r.stdout, "(ci)") {
		t.Fatalf("delete a revoked token: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := berth(t, nil, append(dd, "token", "list", "-o", "json")...); strings.Contains(r.stdout, `"ci"`) {
		t.Fatalf("deleted token still listed: %s", r.stdout)
	}
	if r := berth(t, nil, append(dd, "token", "delete", "ci")...); r.code != 64 || !strings.Contains(r.stderr, "no token") {
		t.Fatalf("delete twice: %d %s", r.code, r.stderr)
	}
}
