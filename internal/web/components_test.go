package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// componentImage builds a test component image on the test busybox: it says hello and saves
// {"last": "ok"} as its configuration's state. Removed at the test's end.
func (f *fixture) componentImage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+f.h.Img+"\nCOPY run.sh /run.sh\nENTRYPOINT [\"sh\", \"/run.sh\"]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "run.sh"), []byte("echo hello from the component\necho '{\"last\": \"ok\"}' > /data/out/state.json\n"), 0o644)
	ref := "berth/test-component:" + enginetest.Unique(t)
	if _, err := f.h.Eng.BuildImage(context.Background(), runtime.BuildSpec{ContextDir: dir, Tags: []string{ref}, Labels: enginetest.Labels(t)}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.h.Eng.RemoveImage(context.Background(), ref) })
	return ref
}

// registerComponent stores a component of image in the real store: private to project, or
// shared ("").
func (f *fixture) registerComponent(t *testing.T, project, id, image string) {
	t.Helper()
	body := fmt.Sprintf(`{"id": %q, "image": %q, "actions": ["list"]}`, id, image)
	if err := f.h.St.RegisterComponent(context.Background(), project, id, body); err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
}

// saveConfig saves a configuration through the API as token.
func (f *fixture) saveConfig(t *testing.T, token, body string) {
	t.Helper()
	if status, out := f.call(t, token, "POST", "/api/v1/configs", "application/json", []byte(body)); status != http.StatusCreated {
		t.Fatalf("save config %s: %d %s", body, status, out)
	}
}

// runConfig runs a configuration through the API as token and returns its job.
func (f *fixture) runConfig(t *testing.T, token, id string) job.Job {
	t.Helper()
	status, out := f.call(t, token, "POST", "/api/v1/configs/"+id+"/run", "", nil)
	if status != http.StatusCreated {
		t.Fatalf("run %s: %d %s", id, status, out)
	}
	var j job.Job
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatal(err)
	}
	return j
}

// TestComponentPages: the components page shows each project the shared components and its
// own, with its own configurations only; a configuration's page shows its parameters (secrets
// sealed, never their value), rows, versions, state, whether credentials are stored, its runs
// and Run (not to a read-only token); another project's configuration does not exist.
func TestComponentPages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	img := f.componentImage(t)
	f.registerComponent(t, "", "cmp-shared", img)
	f.registerComponent(t, "alpha", "cmp-alpha", img)
	f.registerComponent(t, "beta", "cmp-beta", img)
	f.saveConfig(t, f.alpha, `{"id": "cfg-alpha", "component": "cmp-shared", "name": "Alpha daily", "parameters": {"greeting": "hi", "#password": "s3cret-value"}}`)
	f.saveConfig(t, f.alpha, `{"id": "cfg-alpha", "component": "cmp-shared", "name": "Alpha daily", "parameters": {"greeting": "hello", "#password": "s3cret-value"}}`)
	f.saveConfig(t, f.alpha, `{"id": "cfg-rows", "component": "cmp-alpha", "rows": [{"id": "r-one", "name": "First row", "parameters": {"table": "one"}}, {"id": "r-two", "is_disabled": true}]}`)
	f.saveConfig(t, f.beta, `{"id": "cfg-beta", "component": "cmp-shared", "parameters": {"beta-only": "x"}}`)
	if err := f.h.St.PutCredentials(ctx, "cfg-alpha", []byte("sealed-bytes")); err != nil {
		t.Fatal(err)
	}
	run := f.runConfig(t, f.alpha, "cfg-alpha")
	if j := f.wait(t, run.ID); j.State != job.StateSucceeded {
		t.Fatalf("the configuration's run: %s %s %s", j.State, j.Reason, j.Message)
	}
	other := f.runConfig(t, f.beta, "cfg-beta")
	f.wait(t, other.ID)

	resp, body := f.page(t, f.alpha, "/ui/components")
	strictPage(t, "/ui/components", resp, body)
	for _, want := range []string{"cmp-shared", ">shared<", "cmp-alpha", "project alpha", img, "/ui/configs/cfg-alpha", "Alpha daily", "/ui/configs/cfg-rows", "/ui/jobs/" + run.ID} {
		if !strings.Contains(body, want) {
			t.Errorf("alpha's components page lacks %q", want)
		}
	}
	for _, not := range []string{"cmp-beta", "cfg-beta", other.ID} {
		if strings.Contains(body, not) {
			t.Errorf("alpha's components page shows beta's %q", not)
		}
	}
	_, body = f.page(t, f.beta, "/ui/components")
	if !strings.Contains(body, "cmp-beta") || !strings.Contains(body, "cfg-beta") || strings.Contains(body, "cmp-alpha") || strings.Contains(body, "cfg-alpha") {
		t.Errorf("beta's components page:\n%s", body)
	}
	_, body = f.page(t, f.admin, "/ui/components")
	for _, want := range []string{"cmp-alpha", "cmp-beta", "cfg-alpha", "cfg-beta"} {
		if !strings.Contains(body, want) {
			t.Errorf("the admin's components page lacks %q", want)
		}
	}

	resp, body = f.page(t, f.alpha, "/ui/configs/cfg-alpha")
	strictPage(t, "/ui/configs/cfg-alpha", resp, body)
	body = html.UnescapeString(body)
	for _, want := range []string{"Alpha daily", "cmp-shared", `"greeting": "hello"`, `"#password": "[sealed]"`, "Version 2 (current)", "Version 1",
		`"greeting": "hi"`, `"last": "ok"`, "stored (sealed) since", `data-post="/api/v1/configs/cfg-alpha/run"`, `data-job="` + run.ID + `" data-state="succeeded"`,
		`href="/ui/jobs/` + run.ID + `"`} {
		if !strings.Contains(body, want) {
			t.Errorf("cfg-alpha's page lacks %q", want)
		}
	}
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "s3cret-value") || strings.Contains(body, "sealed:v1:") || strings.Contains(body, "sealed-bytes") {
		t.Errorf("cfg-alpha's page: %d, shows a secret:\n%s", resp.StatusCode, body)
	}
	_, body = f.page(t, f.alpha, "/ui/configs/cfg-rows")
	body = html.UnescapeString(body)
	for _, want := range []string{"First row", "r-one", "r-two", "disabled", `"table": "one"`, "none stored", "Not run yet"} {
		if !strings.Contains(body, want) {
			t.Errorf("cfg-rows's page lacks %q", want)
		}
	}
	if resp, _ := f.page(t, f.alpha, "/ui/configs/cfg-beta"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("beta's configuration for alpha: %d, want 404", resp.StatusCode)
	}
	if resp, _ := f.page(t, f.alpha, "/ui/configs/no-such"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a configuration that does not exist: %d, want 404", resp.StatusCode)
	}
	resp, body = f.page(t, f.alphaRead, "/ui/configs/cfg-alpha")
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "data-post") || !strings.Contains(body, run.ID) {
		t.Errorf("cfg-alpha for a read-only token: %d, a Run button or no runs:\n%s", resp.StatusCode, body)
	}
}
