package cli_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/berthproject/berth/internal/api"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// scrape reads a metrics endpoint without a token.
func scrape(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// openAPISchema compiles one schema of the API's OpenAPI document.
func openAPISchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(api.OpenAPI()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("openapi.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("openapi.json#/components/schemas/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// TestRetryThroughServer: a block failing once (app_error) and then passing, submitted to a
// server, ends succeeded with two attempts, shown by `job get`; the job as the API answers it
// matches the OpenAPI document; the metrics listener answers without a token while /metrics
// on the API still needs one.
func TestRetryThroughServer(t *testing.T) {
	enginetest.Require(t)
	dataDir := t.TempDir()
	addr, maddr := freePort(t), freePort(t)
	s := startServer(t, dataDir, addr, "--metrics-listen", maddr)
	env := []string{"BERTH_SERVER=http://" + addr, "BERTH_TOKEN=" + s.token}
	dir := t.TempDir()
	spec := filepath.Join(dir, "block.yaml")
	os.WriteFile(spec, []byte(`name: flaky
language: shell
code: |
  echo "attempt $BERTH_ATTEMPT"
  if [ "$BERTH_ATTEMPT" = 1 ]; then exit 3; fi
  echo passed
retry: {max: 2, backoff: 200ms, on: [app_error]}
`), 0o644)
	r := berth(t, env, "job", "submit", "--wait", spec)
	if r.code != 0 || !strings.Contains(r.stdout, "passed") {
		t.Fatalf("submit --wait: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	var list []struct{ ID string }
	if r := berth(t, env, "job", "list", "-o", "json"); json.Unmarshal([]byte(r.stdout), &list) != nil || len(list) != 1 {
		t.Fatalf("job list: %s", r.stdout)
	}
	id := list[0].ID
	r = berth(t, env, "job", "get", id)
	if r.code != 0 || !strings.Contains(r.stdout+r.stderr, "attempts: 2") || !strings.Contains(r.stdout+r.stderr, "failed (app_error)") {
		t.Fatalf("job get: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	var raw string
	if code := s.callText("/api/v1/jobs/"+id, &raw); code != 200 {
		t.Fatalf("GET job: %d", code)
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := openAPISchema(t, "Job").Validate(v); err != nil {
		t.Fatalf("the job does not match the OpenAPI document: %v\n%s", err, raw)
	}
	var j struct {
		State    string
		Attempts []struct {
			Number int
			State  string
			Reason string
		}
	}
	json.Unmarshal([]byte(raw), &j)
	if j.State != "succeeded" || len(j.Attempts) != 2 || j.Attempts[0].Reason != "app_error" || j.Attempts[1].State != "succeeded" {
		t.Fatalf("job %s", raw)
	}
	// A user_error is not retried.
	os.WriteFile(spec, []byte("name: broken\nlanguage: shell\ncode: exit 1\nretry: {max: 3, backoff: 100ms}\n"), 0o644)
	if r := berth(t, env, "job", "submit", "--wait", spec); r.code != 1 || strings.Contains(r.stdout+r.stderr, "attempts:") {
		t.Fatalf("user_error: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}

	if code, _ := scrape(t, "http://"+addr+"/metrics"); code != http.StatusUnauthorized {
		t.Fatalf("/metrics on the API without a token: %d, want 401", code)
	}
	code, body := scrape(t, "http://"+maddr+"/metrics")
	if code != 200 {
		t.Fatalf("metrics listener: %d", code)
	}
	for _, want := range []string{"berth_queue_depth 0", "berth_queue_wait_seconds_count 2", `berth_jobs{state="succeeded"} 1`,
		`berth_storage_bytes{kind="files"} 0`, `berth_storage_bytes{kind="tables"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if code, _ := scrape(t, "http://"+maddr+"/api/v1/jobs"); code != http.StatusNotFound {
		t.Errorf("the metrics listener serves more than /metrics: %d", code)
	}
}
