package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// componentTags lists the tags of the images berth built for component id.
func componentTags(eng *docker.Engine, id string) []string {
	imgs, _ := eng.ListImages(context.Background(), map[string]string{runtime.LabelKind: runtime.KindComponent})
	var out []string
	for _, im := range imgs {
		for _, tag := range im.Tags {
			if strings.HasPrefix(tag, "berth/component-"+id+":") {
				out = append(out, tag)
			}
		}
	}
	return out
}

func removeComponentImages(eng *docker.Engine, id string) {
	for _, tag := range componentTags(eng, id) {
		eng.RemoveImage(context.Background(), tag)
	}
}

// TestComponentFlowThroughCLI: register a component built from a folder, create a
// configuration, run it, and find its outputs and state in storage; the caller's token is
// nowhere in the container's environment or files.
func TestComponentFlowThroughCLI(t *testing.T) {
	eng := enginetest.Require(t)
	img := enginetest.Busybox(t, eng)
	id := "e2e-" + enginetest.Unique(t)
	t.Cleanup(func() { removeComponentImages(eng, id) })
	s := startServer(t, t.TempDir(), freePort(t))
	env := []string{"BERTH_SERVER=http://" + s.addr, "BERTH_TOKEN=" + s.token}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+img+"\nCOPY run.sh /run.sh\nENTRYPOINT [\"sh\", \"/run.sh\"]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "run.sh"), []byte(`if grep -q '"action": "list"' /data/config.json; then
  echo '{"items": [1, 2], "p": '$(grep -c '"who": "me"' /data/config.json)'}'; exit 0
fi
if grep -q '"action": "text"' /data/config.json; then echo 'not json'; exit 0; fi
env > /tmp/dump
find /data -type f | while read f; do echo "== $f"; cat "$f"; done >> /tmp/dump
cp /tmp/dump /data/out/files/dump.txt
printf 'k,v\n1,a\n' > /data/out/tables/out.c-e2e.t.csv
echo '{"n": 1}' > /data/out/state.json
`), 0o644)
	comp := filepath.Join(t.TempDir(), "component.json")
	os.WriteFile(comp, []byte(`{"id": "`+id+`", "image": "", "actions": ["list", "text"]}`), 0o644)
	cfg := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(cfg, []byte(`{"id": "e2e-cfg", "component": "`+id+`", "parameters": {"a": 1}}`), 0o644)

	if r := berth(t, env, "component", "register", "--build", dir, comp); r.code != 0 {
		t.Fatalf("register: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := berth(t, env, "config", "create", cfg); r.code != 0 || !strings.Contains(r.stdout, "version 1") {
		t.Fatalf("config create: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := berth(t, env, "config", "run", "e2e-cfg", "--wait"); r.code != 0 {
		t.Fatalf("config run: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := berth(t, env, "storage", "table", "export", "out.c-e2e.t"); r.stdout != "k,v\n1,a\n" {
		t.Fatalf("output table: %q %s", r.stdout, r.stderr)
	}
	if r := berth(t, env, "config", "state", "e2e-cfg"); strings.TrimSpace(r.stdout) != `{"n": 1}` {
		t.Fatalf("state: %q", r.stdout)
	}
	r := berth(t, env, "storage", "file", "list", "-o", "json")
	var files []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &files); err != nil || len(files) != 1 {
		t.Fatalf("files: %v %s", err, r.stdout)
	}
	r = berth(t, env, "storage", "file", "download", "1")
	if !strings.Contains(r.stdout, "KBC_RUNID=") || !strings.Contains(r.stdout, "== /data/config.json") {
		t.Fatalf("the dump is not what the component saw:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, s.token) {
		t.Fatal("the caller's token reached the component")
	}
	// Sync actions answer with the component's JSON stdout, and refuse what is not JSON.
	if r := berth(t, env, "component", "action", id, "list", "--parameters", `{"who": "me"}`); r.code != 0 || strings.TrimSpace(r.stdout) != `{"items": [1, 2], "p": 1}` {
		t.Fatalf("sync action: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := berth(t, env, "component", "action", id, "text"); r.code == 0 || !strings.Contains(r.stderr, "not JSON") {
		t.Fatalf("non-JSON action output: %d %s", r.code, r.stderr)
	}
	if r := berth(t, env, "component", "action", id, "drop"); r.code != 64 || !strings.Contains(r.stderr, "allowed: list, text") {
		t.Fatalf("unknown action: %d %s", r.code, r.stderr)
	}
	// Giving the caller's token to a component needs the admin's --allow-forward-token.
	os.WriteFile(comp, []byte(`{"id": "`+id+`-fw", "image": "`+img+`", "forward_token": true}`), 0o644)
	if r := berth(t, env, "component", "register", comp); r.code != 64 || !strings.Contains(r.stderr, "--allow-forward-token") {
		t.Fatalf("forward_token without the server's allowance: %d %s", r.code, r.stderr)
	}
	// A configuration whose parameters fail the schema is refused, naming the path.
	os.WriteFile(comp, []byte(`{"id": "`+id+`", "image": "`+img+`", "schema": {"type": "object", "properties": {"n": {"type": "integer"}}}}`), 0o644)
	if r := berth(t, env, "component", "register", comp); r.code != 0 {
		t.Fatalf("re-register: %d %s", r.code, r.stderr)
	}
	os.WriteFile(cfg, []byte(`{"id": "e2e-bad", "component": "`+id+`", "parameters": {"n": "x"}}`), 0o644)
	if r := berth(t, env, "config", "create", cfg); r.code != 64 || !strings.Contains(r.stderr, "parameters.n") {
		t.Fatalf("schema failure: %d %s", r.code, r.stderr)
	}
}

// TestComponentImageFromGit: an image built from a git repository is reused on the same
// commit and rebuilt on a new one.
func TestComponentImageFromGit(t *testing.T) {
	eng := enginetest.Require(t)
	img := enginetest.Busybox(t, eng)
	id := "git-" + enginetest.Unique(t)
	t.Cleanup(func() { removeComponentImages(eng, id) })
	repo := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		c := exec.Command("git", append([]string{"-C", repo, "-c", "user.email=t@example.com", "-c", "user.name=t"}, args...)...)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	git("init", "-q")
	os.WriteFile(filepath.Join(repo, "Dockerfile"), []byte("FROM "+img+"\nCOPY run.sh /run.sh\nENTRYPOINT [\"sh\", \"/run.sh\"]\n"), 0o644)
	os.WriteFile(filepath.Join(repo, "run.sh"), []byte("echo v1\n"), 0o644)
	git("add", ".")
	git("commit", "-qm", "v1")

	s := startServer(t, t.TempDir(), freePort(t))
	env := []string{"BERTH_SERVER=http://" + s.addr, "BERTH_TOKEN=" + s.token}
	comp := filepath.Join(t.TempDir(), "component.json")
	os.WriteFile(comp, []byte(`{"id": "`+id+`", "image": ""}`), 0o644)
	r := berth(t, env, "component", "register", "--git", "file://"+repo, comp)
	if r.code != 0 || !strings.Contains(r.stderr, "building") {
		t.Fatalf("first register: %d %s", r.code, r.stderr)
	}
	r = berth(t, env, "component", "register", "--git", "file://"+repo, comp)
	if r.code != 0 || !strings.Contains(r.stderr, "up to date") || strings.Contains(r.stderr, "building") {
		t.Fatalf("same commit rebuilt: %d %s", r.code, r.stderr)
	}
	os.WriteFile(filepath.Join(repo, "run.sh"), []byte("echo v2\n"), 0o644)
	git("commit", "-qam", "v2")
	r = berth(t, env, "component", "register", "--git", repo, comp)
	if r.code != 0 || !strings.Contains(r.stderr, "building") {
		t.Fatalf("new commit not built: %d %s", r.code, r.stderr)
	}
	if n := len(componentTags(eng, id)); n != 2 {
		t.Fatalf("%d images for two commits", len(componentTags(eng, id)))
	}
}

// TestRowsAndCredentialsThroughCLI: a configuration with rows runs each enabled row through
// the server (or one by --row) with a state each; credentials stored with `config
// credentials set` reach the component, are hidden in its output and never read back.
func TestRowsAndCredentialsThroughCLI(t *testing.T) {
	eng := enginetest.Require(t)
	img := enginetest.Busybox(t, eng)
	id := "e2e-rows-" + enginetest.Unique(t)
	t.Cleanup(func() { removeComponentImages(eng, id) })
	dataDir := t.TempDir()
	s := startServer(t, dataDir, freePort(t))
	env := []string{"BERTH_SERVER=http://" + s.addr, "BERTH_TOKEN=" + s.token}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+img+"\nCOPY run.sh /run.sh\nENTRYPOINT [\"sh\", \"/run.sh\"]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "run.sh"), []byte(`echo "row=$KBC_CONFIGROWID region=$(tr -d ' \n' < /data/config.json | grep -o '"region":"[a-z]*"')"
echo "secret=$(tr -d ' \n' < /data/config.json | grep -o '"#token":"[^"]*"')"
echo "mode=$KBC_COMPONENT_RUN_MODE tokenid=${KBC_TOKENID:-none} tokendesc=${KBC_TOKENDESC:-none} token=${KBC_TOKEN:-none}"
echo "{\"seen\": \"$KBC_CONFIGROWID\"}" > /data/out/state.json
`), 0o644)
	comp := filepath.Join(t.TempDir(), "component.json")
	os.WriteFile(comp, []byte(`{"id": "`+id+`", "image": "", "forward_token_details": true}`), 0o644)
	cfg := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(cfg, []byte(`{"id": "rows-cfg", "component": "`+id+`", "parameters": {"region": "none"},
	  "rows": {"0": {"id": "eu", "parameters": {"region": "eu"}}, "1": {"id": "us", "is_disabled": true, "parameters": {"region": "us"}}}}`), 0o644)
	creds := filepath.Join(t.TempDir(), "oauth.json")
	os.WriteFile(creds, []byte(`{"#token": "tok-e2e-98765", "oauthVersion": "2.0"}`), 0o644)

	if r := berth(t, env, "component", "register", "--build", dir, comp); r.code != 0 {
		t.Fatalf("register: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := berth(t, env, "config", "create", cfg); r.code != 0 {
		t.Fatalf("config create: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := berth(t, env, "config", "credentials", "set", "rows-cfg", creds); r.code != 0 || strings.Contains(r.stdout, "tok-e2e") {
		t.Fatalf("credentials set: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := berth(t, env, "config", "credentials", "status", "rows-cfg"); !strings.Contains(r.stdout, `"stored": true`) && !strings.Contains(r.stdout, `"stored":true`) || strings.Contains(r.stdout, "tok-e2e") {
		t.Fatalf("credentials status: %q", r.stdout)
	}
	r := berth(t, env, "config", "run", "rows-cfg", "--wait")
	if r.code != 0 || !strings.Contains(r.stdout, `row=eu region="region":"eu"`) || strings.Contains(r.stdout, "row=us") {
		t.Fatalf("config run: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, `secret="#token":"[hidden]"`) || strings.Contains(r.stdout+r.stderr, "tok-e2e-98765") {
		t.Fatalf("the credentials did not arrive hidden:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "mode=run tokenid=tok_") || !strings.Contains(r.stdout, "tokendesc=admin token=none") {
		t.Fatalf("forward_token_details gave no token id and name, or gave the token:\n%s", r.stdout)
	}
	if r := berth(t, env, "config", "run", "rows-cfg", "--row", "us", "--debug", "--wait"); r.code != 0 || !strings.Contains(r.stdout, "row=us") || !strings.Contains(r.stdout, "mode=debug") {
		t.Fatalf("run --row us --debug: %d %s %s", r.code, r.stdout, r.stderr)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+"/api/v1/configs/rows-cfg/run?mode=fast", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var apiErr struct {
		Error struct{ Field, Message string }
	}
	json.Unmarshal(body, &apiErr)
	if resp.StatusCode != http.StatusUnprocessableEntity || apiErr.Error.Field != "mode" || !strings.Contains(apiErr.Error.Message, "debug") {
		t.Fatalf("an unknown mode: %d %s", resp.StatusCode, body)
	}
	if r := berth(t, env, "config", "state", "rows-cfg", "--row", "eu"); strings.TrimSpace(r.stdout) != `{"seen": "eu"}` {
		t.Fatalf("state of row eu: %q %s", r.stdout, r.stderr)
	}
	if r := berth(t, env, "config", "run", "rows-cfg", "--row", "nope"); r.code == 0 || !strings.Contains(r.stderr, "no row") {
		t.Fatalf("unknown row: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// Nothing on disk holds the credentials in plain text.
	db, _ := os.ReadFile(filepath.Join(dataDir, "berth.db"))
	if strings.Contains(string(db), "tok-e2e-98765") {
		t.Fatal("the database holds the credentials in plain text")
	}
}
