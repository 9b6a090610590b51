package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// TestProjectColumns: `component register --shared` makes a component every project may use,
// and the lists say whose each component and job is.
func TestProjectColumns(t *testing.T) {
	eng := enginetest.Require(t)
	img := enginetest.Busybox(t, eng)
	s := startServer(t, t.TempDir(), freePort(t))
	env := []string{"BERTH_SERVER=http://" + s.addr, "BERTH_TOKEN=" + s.token}
	dir := t.TempDir()
	suffix := enginetest.Unique(t)
	for _, id := range []string{"pub-" + suffix, "own-" + suffix} {
		os.WriteFile(filepath.Join(dir, id+".json"), []byte(fmt.Sprintf(`{"id": %q, "image": %q}`, id, img)), 0o644)
	}
	r := berth(t, env, "component", "register", "--shared", filepath.Join(dir, "pub-"+suffix+".json"))
	if r.code != 0 || !strings.Contains(r.stdout, "shared with every project") {
		t.Fatalf("register --shared: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r = berth(t, env, "component", "register", filepath.Join(dir, "own-"+suffix+".json")); r.code != 0 {
		t.Fatalf("register: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = berth(t, env, "component", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "PROJECT") {
		t.Fatalf("component list: %d %q %q", r.code, r.stdout, r.stderr)
	}
	for id, project := range map[string]string{"pub-" + suffix: "shared", "own-" + suffix: "default"} {
		found := false
		for _, line := range strings.Split(r.stdout, "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == id {
				found = true
				if f[1] != project {
					t.Errorf("component %s listed in project %q, want %q:\n%s", id, f[1], project, r.stdout)
				}
			}
		}
		if !found {
			t.Errorf("component %s not listed:\n%s", id, r.stdout)
		}
	}
	var j struct{ ID string }
	if code := s.call("POST", "/api/v1/jobs", map[string]string{"spec": "name: p\nlanguage: shell\nimage: " + img + "\ncode: 'true'\n"}, &j); code != 201 {
		t.Fatalf("submit: %d", code)
	}
	r = berth(t, env, "job", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "PROJECT") {
		t.Fatalf("job list: %d %q %q", r.code, r.stdout, r.stderr)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == j.ID && f[1] != "default" {
			t.Errorf("job %s listed in project %q, want default:\n%s", j.ID, f[1], r.stdout)
		}
	}
	if !strings.Contains(r.stdout, j.ID) {
		t.Errorf("job %s not listed:\n%s", j.ID, r.stdout)
	}
}
