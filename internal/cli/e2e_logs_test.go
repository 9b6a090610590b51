package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// writeBlock writes a shell block with code and returns its path.
func writeBlock(t *testing.T, code string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "block.yaml")
	b, _ := json.Marshal(map[string]any{"name": "t", "language": "shell", "code": code})
	if err := os.WriteFile(p, b, 0o644); err != nil { // JSON is YAML
		t.Fatal(err)
	}
	return p
}

type logChunk struct {
	Stream string    `json:"stream"`
	Text   string    `json:"text"`
	Time   time.Time `json:"time"`
}

// TestJobLogsTailAndSince: berth job logs --tail 3 prints the script's last 3 lines; --since
// drops what was written before; bad values are usage errors naming the flag.
func TestJobLogsTailAndSince(t *testing.T) {
	enginetest.Require(t)
	s := startServer(t, t.TempDir(), freePort(t))
	env := []string{"BERTH_SERVER=http://" + s.addr, "BERTH_TOKEN=" + s.token}
	r := berth(t, env, "job", "submit", "--wait", writeBlock(t, "for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; done; sleep 1; echo late"))
	if r.code != 0 {
		t.Fatalf("submit: %d %s %s", r.code, r.stdout, r.stderr)
	}
	var list []jobView
	if r := berth(t, env, "job", "list", "-o", "json"); json.Unmarshal([]byte(r.stdout), &list) != nil || len(list) != 1 {
		t.Fatalf("job list: %s", r.stdout)
	}
	id := list[0].ID
	if r := berth(t, env, "job", "logs", id, "--tail", "3"); r.code != 0 || r.stdout != "line 9\nline 10\nlate\n" {
		t.Fatalf("logs --tail 3: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// --since a time: the chunk times say when "late" was written.
	r = berth(t, env, "job", "logs", id, "-o", "json")
	var late time.Time
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var c logChunk
		if json.Unmarshal([]byte(line), &c) == nil && c.Text == "late\n" {
			late = c.Time
		}
	}
	if late.IsZero() {
		t.Fatalf("no late chunk in %s", r.stdout)
	}
	if r := berth(t, env, "job", "logs", id, "--since", late.Format(time.RFC3339Nano)); r.code != 0 || r.stdout != "late\n" {
		t.Fatalf("logs --since %s: exit %d, stdout %q", late.Format(time.RFC3339Nano), r.code, r.stdout)
	}
	if r := berth(t, env, "job", "logs", id, "--since", "1h", "--tail", "all"); r.code != 0 || !strings.HasPrefix(r.stdout, "line 1\n") {
		t.Fatalf("logs --since 1h: exit %d, stdout %q", r.code, r.stdout)
	}
	if r := berth(t, env, "job", "logs", id, "--since", "1ms"); r.code != 0 || r.stdout != "" {
		t.Fatalf("logs --since 1ms of an old job: exit %d, stdout %q", r.code, r.stdout)
	}
	if r := berth(t, env, "job", "logs", id, "--tail", "three"); r.code != 64 || !strings.Contains(r.stderr, "--tail") {
		t.Fatalf("--tail three: exit %d, stderr %q", r.code, r.stderr)
	}
	// The API names the parameter.
	var apiErr struct {
		Error struct{ Code, Field string } `json:"error"`
	}
	if code := s.callRaw("GET", "/api/v1/jobs/"+id+"/logs?since=soon", nil, &apiErr); code != 400 || apiErr.Error.Field != "since" {
		t.Fatalf("?since=soon: %d %+v", code, apiErr)
	}
}

// TestJobCancelThroughCLI: job cancel prints cancelling (not running) while the container is
// stopped; job get shows the live stage; job cancel --wait prints cancelled once it is gone.
func TestJobCancelThroughCLI(t *testing.T) {
	enginetest.Require(t)
	s := startServer(t, t.TempDir(), freePort(t))
	env := []string{"BERTH_SERVER=http://" + s.addr, "BERTH_TOKEN=" + s.token}
	// The script ignores SIGTERM: the stop takes the server's whole grace.
	r := berth(t, env, "job", "submit", "-o", "json", writeBlock(t, "trap '' TERM; echo started; while true; do sleep 0.1; done"))
	var j jobView
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || j.ID == "" {
		t.Fatalf("submit: %d %s %s", r.code, r.stdout, r.stderr)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		r = berth(t, env, "job", "get", j.ID)
		if strings.Contains(r.stdout, "running") && strings.Contains(r.stdout, " run ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never running: %s", r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "…") {
		t.Fatalf("job get does not mark the stage in progress:\n%s", r.stdout)
	}
	r = berth(t, env, "job", "cancel", j.ID)
	if r.code != 0 || r.stdout != j.ID+" cancelling\n" {
		t.Fatalf("cancel: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := berth(t, env, "job", "get", j.ID, "-o", "json"); !strings.Contains(r.stdout, `"state": "cancelling"`) && !strings.Contains(r.stdout, `"state": "cancelled"`) {
		t.Fatalf("job get after cancel: %s", r.stdout)
	}
	r = berth(t, env, "job", "cancel", "--wait", j.ID)
	if r.code != 0 || r.stdout != j.ID+" cancelled\n" {
		t.Fatalf("cancel --wait: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
