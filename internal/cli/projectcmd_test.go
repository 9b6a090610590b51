package cli_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

type projectJSON struct {
	ID                string `json:"id"`
	MaxConcurrentJobs int    `json:"max_concurrent_jobs"`
	MaxStorageBytes   int64  `json:"max_storage_bytes"`
}

type tokenJSON struct {
	Name       string     `json:"name"`
	Project    string     `json:"project"`
	Role       string     `json:"role"`
	Scope      string     `json:"scope"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	Hash       string     `json:"hash"`
}

// TestProjectAndTokenCommands: projects are made, listed and their quotas set on the data
// dir; a token names an existing project, a role and a lifetime, and token list shows them.
func TestProjectAndTokenCommands(t *testing.T) {
	dd := []string{"--data-dir", t.TempDir()}
	run := func(args ...string) runResult {
		t.Helper()
		return berth(t, nil, append(dd, args...)...)
	}
	if r := run("project", "create", "analytics", "--max-concurrent-jobs", "4", "--max-storage", "10GB"); r.code != 0 {
		t.Fatalf("project create: %d %s", r.code, r.stderr)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"project", "create", "analytics"}, "exists"},
		{[]string{"project", "create", "Bad_Name"}, "lowercase"},
		{[]string{"project", "create", "x", "--max-storage", "lots"}, "--max-storage"},
		{[]string{"project", "set", "nope", "--max-storage", "1GB"}, "no project"},
		{[]string{"project", "set", "analytics"}, "nothing to set"},
		{[]string{"token", "create", "--name", "ci", "--project", "nope"}, "--project"},
		{[]string{"token", "create", "--name", "ci", "--role", "owner"}, "--role"},
		{[]string{"token", "create", "--name", "ci", "--expires", "soon"}, "--expires"},
		{[]string{"token", "create", "--name", "ci", "--scope", "bucket:b"}, "--scope"},
		{[]string{"server", "--listen", "127.0.0.1:0", "--audit-retention", "a while"}, "--audit-retention"},
	} {
		if r := run(c.args...); r.code != 64 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("berth %v: %d %q, want 64 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
	if r := run("project", "set", "analytics", "--max-concurrent-jobs", "2"); r.code != 0 {
		t.Fatalf("project set: %d %s", r.code, r.stderr)
	}
	r := run("project", "list", "-o", "json")
	var ps []projectJSON
	if err := json.Unmarshal([]byte(r.stdout), &ps); err != nil || len(ps) != 2 {
		t.Fatalf("project list: %v %s", err, r.stdout)
	}
	if ps[0] != (projectJSON{"analytics", 2, 10 << 30}) || ps[1].ID != "default" {
		t.Fatalf("projects: %+v", ps)
	}
	if r := run("project", "list"); !strings.Contains(r.stdout, "MAX STORAGE") || !strings.Contains(r.stdout, "10.0GiB") {
		t.Fatalf("project list table:\n%s", r.stdout)
	}

	r = run("token", "create", "--name", "ci", "--project", "analytics", "--role", "project-admin", "--expires", "30d")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "berth_") {
		t.Fatalf("token create: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := run("token", "create", "--name", "old", "--role", "user"); r.code != 0 {
		t.Fatalf("token create --role user: %d %s", r.code, r.stderr)
	}
	if r := run("token", "create", "--name", "ci"); r.code != 64 || !strings.Contains(r.stderr, "exists") {
		t.Fatalf("a taken name: %d %s", r.code, r.stderr)
	}
	r = run("token", "list", "-o", "json")
	var toks []tokenJSON
	if err := json.Unmarshal([]byte(r.stdout), &toks); err != nil || len(toks) != 2 {
		t.Fatalf("token list: %v %s", err, r.stdout)
	}
	ci, old := toks[0], toks[1]
	if ci.Name != "ci" || ci.Project != "analytics" || ci.Role != "project-admin" || ci.ExpiresAt == nil ||
		time.Until(*ci.ExpiresAt) < 29*24*time.Hour || ci.Hash != "" || strings.Contains(r.stdout, "berth_") {
		t.Fatalf("ci listed as %+v", ci)
	}
	if old.Project != "default" || old.Role != "member" || old.ExpiresAt != nil {
		t.Fatalf("old listed as %+v", old)
	}
	r = run("token", "list")
	for _, col := range []string{"PROJECT", "ROLE", "EXPIRES", "LAST USED", "analytics", "project-admin"} {
		if !strings.Contains(r.stdout, col) {
			t.Errorf("token list table lacks %q:\n%s", col, r.stdout)
		}
	}
}

// TestAuditListThroughCLI: a member's refused request is in the log an admin lists with
// berth audit list; the member may not list it.
func TestAuditListThroughCLI(t *testing.T) {
	enginetest.Require(t)
	dataDir := t.TempDir()
	addr := freePort(t)
	s := startServer(t, dataDir, addr, "--audit-retention", "30d")
	dd := []string{"--data-dir", dataDir}
	if r := berth(t, nil, append(dd, "project", "create", "analytics")...); r.code != 0 {
		t.Fatalf("project create: %d %s", r.code, r.stderr)
	}
	r := berth(t, nil, append(dd, "token", "create", "--name", "alice", "--project", "analytics")...)
	if r.code != 0 {
		t.Fatalf("token create: %d %s", r.code, r.stderr)
	}
	alice := strings.TrimSpace(r.stdout)
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/projects", strings.NewReader(`{"id": "mine"}`))
	req.Header.Set("Authorization", "Bearer "+alice)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("a member made a project: %d", resp.StatusCode)
	}

	env := cliEnv(t, filepath.Join(t.TempDir(), "config.json"))
	admin := []string{"audit", "list", "--server", "http://" + addr, "--token", s.token}
	r = berth(t, env, append(admin, "--since", "1h", "--actor", "alice", "-o", "json")...)
	var es []struct {
		ActorName string `json:"actor_name"`
		Project   string `json:"project"`
		Action    string `json:"action"`
		Outcome   string `json:"outcome"`
		Status    int    `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &es); err != nil || r.code != 0 {
		t.Fatalf("audit list: %d %v %s %s", r.code, err, r.stdout, r.stderr)
	}
	if len(es) != 1 || es[0].ActorName != "alice" || es[0].Project != "analytics" || es[0].Action != "POST /api/v1/projects" ||
		es[0].Outcome != "denied" || es[0].Status != 403 {
		t.Fatalf("alice's entries: %+v", es)
	}
	if r := berth(t, env, admin...); r.code != 0 || !strings.Contains(r.stdout, "ACTION") || !strings.Contains(r.stdout, "alice") {
		t.Fatalf("audit list table: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := berth(t, env, append(admin, "--since", "yesterday")...); r.code != 64 || !strings.Contains(r.stderr, "--since") {
		t.Fatalf("a bad --since: %d %s", r.code, r.stderr)
	}
	if r := berth(t, env, "audit", "list", "--server", "http://"+addr, "--token", alice); r.code != 64 || !strings.Contains(r.stderr, "403") {
		t.Fatalf("a member lists the audit log: %d %s", r.code, r.stderr)
	}
}
