package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// runResult is one `berth` invocation.
// callRaw is call that decodes the body whatever the status.
func (s *server) callRaw(method, path string, body any, out any) int {
	s.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, "http://"+s.addr+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	json.Unmarshal(data, out)
	return resp.StatusCode
}

func (s *server) callText(path string, out *string) int {
	s.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	*out = string(data)
	return resp.StatusCode
}

type runResult struct {
	code           int
	stdout, stderr string
}

func berth(t *testing.T, env []string, args ...string) runResult {
	t.Helper()
	return runBerth(t, env, nil, args...)
}

// berthIn runs the berth binary with stdin.
func berthIn(t *testing.T, env []string, stdin string, args ...string) runResult {
	t.Helper()
	return runBerth(t, env, strings.NewReader(stdin), args...)
}

func runBerth(t *testing.T, env []string, stdin io.Reader, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, berthBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("berth %v: %v", args, err)
	}
	return runResult{code, out.String(), errb.String()}
}

// lastJSON decodes the last JSON object printed on its own lines (berth run --json).
func lastJSON(t *testing.T, s string, v any) {
	t.Helper()
	for i := strings.LastIndex(s, "\n{\n"); i >= 0; i = strings.LastIndex(s[:i], "\n{\n") {
		if json.Unmarshal([]byte(s[i+1:]), v) == nil {
			return
		}
	}
	if strings.HasPrefix(s, "{") && json.Unmarshal([]byte(s), v) == nil {
		return
	}
	t.Fatalf("no JSON object at the end of:\n%s", s)
}

type runJob struct {
	ID            string `json:"id"`
	State         string `json:"state"`
	Image         string `json:"image"`
	ImageCacheHit bool   `json:"image_cache_hit"`
	OutputDir     string `json:"output_dir"`
}

// TestRunPythonExampleBuildsOnceThenReuses: `berth run` of the Python example with a dependency
// from the local index builds a generated image the first time and reuses it the second.
func TestRunPythonExampleBuildsOnceThenReuses(t *testing.T) {
	eng := enginetest.Require(t)
	data := t.TempDir()
	out := t.TempDir()
	args := []string{"--data-dir", data, "run", "--json", "--packages", "../../examples/packages",
		"../../examples/python-csv/block.yaml", "--out", out}
	ctx := context.Background()

	// Whatever an earlier run left, start from a missing generated image.
	r := berth(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("berth run exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	var j runJob
	lastJSON(t, r.stdout, &j)
	if !strings.HasPrefix(j.Image, "berth/gen:") {
		t.Fatalf("image %q is not a generated image", j.Image)
	}
	t.Cleanup(func() { eng.RemoveImage(context.Background(), j.Image) })
	if err := eng.RemoveImage(ctx, j.Image); err != nil {
		t.Fatal(err)
	}

	r = berth(t, nil, args...)
	if r.code != 0 || !strings.Contains(r.stderr, "built by this job") {
		t.Fatalf("first run: exit %d, want a build\nstderr:\n%s", r.code, r.stderr)
	}
	lastJSON(t, r.stdout, &j)
	if j.ImageCacheHit {
		t.Fatalf("first run reports a cache hit")
	}
	built, err := eng.InspectImage(ctx, j.Image)
	if err != nil {
		t.Fatal(err)
	}

	r = berth(t, nil, args...)
	if r.code != 0 || !strings.Contains(r.stderr, "cache hit, no build") {
		t.Fatalf("second run: exit %d, want a cache hit\nstderr:\n%s", r.code, r.stderr)
	}
	lastJSON(t, r.stdout, &j)
	again, err := eng.InspectImage(ctx, j.Image)
	if err != nil || again.ID != built.ID {
		t.Fatalf("second run used image %s, first built %s (%v)", again.ID, built.ID, err)
	}
	if !strings.Contains(r.stdout, "read 10 rows") {
		t.Errorf("script output missing:\n%s", r.stdout)
	}
	summary, err := os.ReadFile(filepath.Join(out, "summary.csv"))
	if err != nil || !strings.HasPrefix(string(summary), "region,count,total,mean") {
		t.Fatalf("summary.csv: %q %v", summary, err)
	}
}

// TestRunRExampleWithSystemPackage: an R block with a Debian system package and an R package
// from the local CRAN-style index runs.
func TestRunRExampleWithSystemPackage(t *testing.T) {
	eng := enginetest.Require(t)
	if _, err := eng.InspectImage(context.Background(), "berth/r:4.2"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the R base image is missing: `make test` bootstraps it (berth runtime bootstrap r)")
		}
		t.Skip("R base image not built (berth runtime bootstrap r)")
	}
	data := t.TempDir()
	r := berth(t, nil, "--data-dir", data, "run", "--json", "--packages", "../../examples/packages",
		"../../examples/r-summary/block.yaml")
	var j runJob
	if r.code == 0 {
		lastJSON(t, r.stdout, &j)
		t.Cleanup(func() { eng.RemoveImage(context.Background(), j.Image) })
	}
	if r.code != 0 || !strings.Contains(r.stdout, "sha1 of the values:") || !strings.Contains(r.stdout, "spread:") {
		t.Fatalf("berth run r-summary exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(j.OutputDir, "summary.txt")); err != nil || len(b) == 0 {
		t.Fatalf("summary.txt: %v", err)
	}
}

// TestServerJobThroughCLI: the server's API through the CLI: submit --wait, list, logs,
// metrics, and an invalid spec refused with the field named.
func TestServerJobThroughCLI(t *testing.T) {
	enginetest.Require(t)
	dataDir := t.TempDir()
	addr := freePort(t)
	s := startServer(t, dataDir, addr)
	env := []string{"BERTH_SERVER=http://" + addr, "BERTH_TOKEN=" + s.token}

	r := berth(t, env, "job", "submit", "--wait", "../../examples/shell-hello/block.yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "hello from") || !strings.Contains(r.stdout, `"greeting": "hello"`) {
		t.Fatalf("job submit --wait exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = berth(t, env, "job", "list", "-o", "json")
	var list []runJob
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 || list[0].State != "succeeded" {
		t.Fatalf("job list: %v %s", err, r.stdout)
	}
	r = berth(t, env, "job", "logs", list[0].ID)
	if r.code != 0 || !strings.Contains(r.stdout, "hello from") {
		t.Fatalf("job logs: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// A bad spec fails before anything runs, naming the field.
	bad := filepath.Join(t.TempDir(), "block.yaml")
	os.WriteFile(bad, []byte("name: x\nlanguage: cobol\ncode: echo\n"), 0o644)
	r = berth(t, env, "job", "submit", bad)
	if r.code != 64 || !strings.Contains(r.stderr, "language") {
		t.Fatalf("bad spec: exit %d, stderr %s", r.code, r.stderr)
	}
	// Without a token nothing but /healthz answers.
	r = berth(t, []string{"BERTH_SERVER=http://" + addr, "BERTH_TOKEN=wrong"}, "job", "list")
	if r.code == 0 || !strings.Contains(strings.ToLower(r.stderr), "unauthorized") {
		t.Fatalf("wrong token: exit %d, stderr %s", r.code, r.stderr)
	}
	// The API names the field of an invalid spec.
	var apiErr struct {
		Error struct{ Code, Field string } `json:"error"`
	}
	if code := s.callRaw("POST", "/api/v1/jobs", map[string]any{"spec": "name: x\nlanguage: cobol\ncode: echo\n", "filename": "b.yaml"}, &apiErr); code != 422 || apiErr.Error.Field != "language" {
		t.Fatalf("invalid spec: status %d, error %+v", code, apiErr)
	}
	var metrics string
	if code := s.callText("/metrics", &metrics); code != 200 {
		t.Fatalf("metrics: status %d", code)
	}
	if !strings.Contains(metrics, `berth_jobs{state="succeeded"} 1`) || !strings.Contains(metrics, "berth_job_duration_seconds") {
		t.Fatalf("metrics:\n%s", metrics)
	}
}
