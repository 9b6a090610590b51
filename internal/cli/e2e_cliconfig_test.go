package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// cliEnv is an environment with no server or token from the caller's environment, an empty
// data dir (no admin token file to fall back on) and the CLI config at cfg.
func cliEnv(t *testing.T, cfg string) []string {
	return []string{"BERTH_SERVER=", "BERTH_TOKEN=", "BERTH_DATA_DIR=" + t.TempDir(), "BERTH_CONFIG=" + cfg}
}

// TestLoginContexts: a bad token at login is refused and nothing is stored; a good one is
// stored in a 0600 file (0700 folder), never printed, and later commands use it without flags;
// env beats the context; context list|use|remove and logout work; an unreachable server's
// message names the server and where it came from.
func TestLoginContexts(t *testing.T) {
	enginetest.Require(t)
	addr := freePort(t)
	s := startServer(t, t.TempDir(), addr)
	url := "http://" + addr
	cfg := filepath.Join(t.TempDir(), "conf", "berth", "config.json")
	env := cliEnv(t, cfg)

	r := berthIn(t, env, "", "login", "--server", url, "--token", "wrong")
	if r.code != 64 || !strings.Contains(r.stderr, "refused") || !strings.Contains(r.stderr, "nothing stored") {
		t.Fatalf("login with a bad token: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(cfg); !os.IsNotExist(err) {
		t.Fatalf("a refused login wrote the config: %v", err)
	}

	// The token on stdin, as the README types it.
	r = berthIn(t, env, s.token+"\n", "login", "--server", url)
	if r.code != 0 {
		t.Fatalf("login: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, s.token) {
		t.Fatalf("login printed the token: %q %q", r.stdout, r.stderr)
	}
	fi, err := os.Stat(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("config mode %v, want 0600", fi.Mode().Perm())
	}
	di, _ := os.Stat(filepath.Dir(cfg))
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("config folder mode %v, want 0700", di.Mode().Perm())
	}
	b, _ := os.ReadFile(cfg)
	if !strings.Contains(string(b), s.token) || !strings.Contains(string(b), url) {
		t.Fatalf("config does not hold server and token:\n%s", b)
	}

	// No flags, no env: the context is used.
	r = berth(t, env, "job", "list", "-o", "json")
	var jobs []map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &jobs) != nil {
		t.Fatalf("job list through the context: %d %q %q", r.code, r.stdout, r.stderr)
	}

	// Env beats the context: a wrong BERTH_TOKEN is used (and refused) although the context's
	// token is good; BERTH_SERVER pointing nowhere is tried and named.
	r = berth(t, append(env, "BERTH_TOKEN=wrong"), "job", "list")
	if r.code != 64 || !strings.Contains(strings.ToLower(r.stderr), "unauthorized") {
		t.Fatalf("BERTH_TOKEN should beat the context: %d %q", r.code, r.stderr)
	}
	dead := "http://" + freePort(t)
	r = berth(t, append(env, "BERTH_SERVER="+dead, "BERTH_TOKEN=x"), "job", "list")
	if r.code != 70 || !strings.Contains(r.stderr, dead) || !strings.Contains(r.stderr, "from BERTH_SERVER") ||
		!strings.Contains(r.stderr, "--server") || !strings.Contains(r.stderr, "berth login") {
		t.Fatalf("unreachable server from env: %d %q", r.code, r.stderr)
	}
	// And the flag beats env.
	r = berth(t, append(env, "BERTH_SERVER="+dead), "job", "list", "--server", url, "--token", s.token)
	if r.code != 0 {
		t.Fatalf("--server should beat BERTH_SERVER: %d %q", r.code, r.stderr)
	}

	// A second context pointing at a server that is not there.
	r = berthIn(t, env, "", "login", "--server", dead, "--token", "x", "--context", "dead")
	if r.code != 70 || !strings.Contains(r.stderr, dead) {
		t.Fatalf("login to a dead server: %d %q", r.code, r.stderr)
	}
	var c struct {
		Current  string                    `json:"current_context"`
		Contexts map[string]map[string]any `json:"contexts"`
	}
	b, _ = os.ReadFile(cfg)
	json.Unmarshal(b, &c)
	c.Contexts["dead"] = map[string]any{"server": dead, "token": "x"}
	c.Current = "dead"
	b, _ = json.Marshal(c)
	os.WriteFile(cfg, b, 0o600)
	r = berth(t, env, "service", "list")
	if r.code != 70 || !strings.Contains(r.stderr, dead) || !strings.Contains(r.stderr, `context "dead"`) {
		t.Fatalf("unreachable server from a context: %d %q", r.code, r.stderr)
	}

	r = berth(t, env, "context", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "default") || !strings.Contains(r.stdout, dead) || strings.Contains(r.stdout, s.token) {
		t.Fatalf("context list: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r = berth(t, env, "context", "use", "nope"); r.code != 64 || !strings.Contains(r.stderr, "dead, default") {
		t.Fatalf("context use of an unknown name: %d %q", r.code, r.stderr)
	}
	if r = berth(t, env, "context", "use", "default"); r.code != 0 {
		t.Fatalf("context use: %d %q", r.code, r.stderr)
	}
	if r = berth(t, env, "job", "list"); r.code != 0 {
		t.Fatalf("job list after context use: %d %q", r.code, r.stderr)
	}
	if r = berth(t, env, "context", "remove", "dead"); r.code != 0 {
		t.Fatalf("context remove: %d %q", r.code, r.stderr)
	}
	if r = berth(t, env, "logout"); r.code != 0 {
		t.Fatalf("logout: %d %q", r.code, r.stderr)
	}
	b, _ = os.ReadFile(cfg)
	if strings.Contains(string(b), s.token) {
		t.Fatalf("logout left the token in the config:\n%s", b)
	}
	if r = berth(t, env, "job", "list"); r.code != 64 || !strings.Contains(r.stderr, "berth login") {
		t.Fatalf("after logout: %d %q", r.code, r.stderr)
	}
}

// rfc3339 fails unless v is a string holding an RFC 3339 time.
func rfc3339(t *testing.T, what string, v any) {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%s: %T %v, want an RFC 3339 string", what, v, v)
	}
	if _, err := time.Parse(time.RFC3339, s); err != nil {
		t.Fatalf("%s: %q: %v", what, s, err)
	}
}

// TestOutputFormats: -o json and -o yaml parse back with real decoders and carry RFC 3339
// times; the table has human times and no <nil>; -o bogus fails naming the allowed values.
func TestOutputFormats(t *testing.T) {
	eng := enginetest.Require(t)
	img := enginetest.Busybox(t, eng)
	dataDir := t.TempDir()
	addr := freePort(t)
	s := startServer(t, dataDir, addr)
	env := append(cliEnv(t, filepath.Join(t.TempDir(), "config.json")), "BERTH_SERVER=http://"+addr, "BERTH_TOKEN="+s.token)

	spec := filepath.Join(t.TempDir(), "block.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf("name: formats\nlanguage: shell\nimage: %s\ncode: echo hi\n", img)), 0o644)
	r := berth(t, env, "job", "submit", "--wait", spec)
	if r.code != 0 {
		t.Fatalf("submit: %d %q %q", r.code, r.stdout, r.stderr)
	}

	r = berth(t, env, "job", "list", "-o", "yaml")
	var ylist []map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &ylist); err != nil || r.code != 0 || len(ylist) != 1 {
		t.Fatalf("job list -o yaml: %v %d\n%s", err, r.code, r.stdout)
	}
	rfc3339(t, "job list -o yaml created_at", ylist[0]["created_at"])
	rfc3339(t, "job list -o yaml finished_at", ylist[0]["finished_at"])
	id, _ := ylist[0]["id"].(string)

	r = berth(t, env, "job", "get", id, "-o", "json")
	var jget map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &jget); err != nil || jget["state"] != "succeeded" {
		t.Fatalf("job get -o json: %v\n%s", err, r.stdout)
	}
	rfc3339(t, "job get -o json started_at", jget["started_at"])
	r = berth(t, env, "job", "get", id, "-o", "yaml")
	var yget map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &yget); err != nil || yget["id"] != id || yget["state"] != "succeeded" {
		t.Fatalf("job get -o yaml: %v\n%s", err, r.stdout)
	}
	// The YAML document is the JSON one, key for key.
	jb, _ := json.Marshal(jget)
	yb, _ := json.Marshal(yget)
	if string(jb) != string(yb) {
		t.Fatalf("job get: yaml and json differ:\njson %s\nyaml %s", jb, yb)
	}
	r = berth(t, env, "job", "list")
	if r.code != 0 || !strings.Contains(r.stdout, " ago") || strings.Contains(r.stdout, "<nil>") {
		t.Fatalf("job list table: %q", r.stdout)
	}

	// Storage: a table loaded, then listed and got in each format.
	csv := filepath.Join(t.TempDir(), "t.csv")
	os.WriteFile(csv, []byte("id,n\n1,a\n2,b\n"), 0o644)
	if r = berth(t, env, "storage", "table", "load", "in.c-fmt.t", csv); r.code != 0 {
		t.Fatalf("table load: %d %q", r.code, r.stderr)
	}
	r = berth(t, env, "storage", "table", "get", "in.c-fmt.t", "-o", "yaml")
	var tget map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &tget); err != nil || tget["rows_count"] != 2 {
		t.Fatalf("table get -o yaml: %v %d %q %q", err, r.code, r.stdout, r.stderr)
	}
	rfc3339(t, "table get created", tget["created"])
	r = berth(t, env, "storage", "table", "list", "-o", "json")
	var tlist []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &tlist); err != nil || len(tlist) != 1 {
		t.Fatalf("table list -o json: %v %q", err, r.stdout)
	}
	r = berth(t, env, "storage", "bucket", "list", "-o", "yaml")
	var buckets []map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &buckets); err != nil || len(buckets) != 1 || buckets[0]["id"] != "in.c-fmt" || buckets[0]["project"] != "default" {
		t.Fatalf("bucket list -o yaml: %v %q", err, r.stdout)
	}
	for _, args := range [][]string{{"service", "list"}, {"component", "list"}, {"config", "list"}, {"storage", "file", "list"}, {"runtime", "list"}} {
		r = berth(t, env, append(args, "-o", "yaml")...)
		var items []any
		if err := yaml.Unmarshal([]byte(r.stdout), &items); err != nil || r.code != 0 {
			t.Fatalf("%v -o yaml: %v %d %q %q", args, err, r.code, r.stdout, r.stderr)
		}
	}

	// Tokens (read from the data dir): no <nil> in the table, RFC 3339 in YAML.
	r = berth(t, env, "--data-dir", dataDir, "token", "list")
	if r.code != 0 || strings.Contains(r.stdout, "<nil>") || !strings.Contains(r.stdout, "admin") || !strings.Contains(r.stdout, "REVOKED") {
		t.Fatalf("token list: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = berth(t, env, "--data-dir", dataDir, "token", "list", "-o", "yaml")
	var toks []map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &toks); err != nil || len(toks) == 0 {
		t.Fatalf("token list -o yaml: %v %q", err, r.stdout)
	}
	rfc3339(t, "token created_at", toks[0]["created_at"])
	if _, ok := toks[0]["hash"]; ok {
		t.Fatalf("token list shows the hash: %v", toks[0])
	}

	// An unknown format names the flag and the allowed values, and nothing is fetched.
	for _, args := range [][]string{{"job", "list"}, {"service", "get", "x"}, {"--data-dir", dataDir, "token", "list"}, {"context", "list"}} {
		r = berth(t, env, append(args, "-o", "bogus")...)
		if r.code != 64 || !strings.Contains(r.stderr, "--output") || !strings.Contains(r.stderr, "table, json, yaml") {
			t.Fatalf("%v -o bogus: %d %q", args, r.code, r.stderr)
		}
	}
}
