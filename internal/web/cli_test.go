package web_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berthproject/berth/internal/job"
)

// The berth binary, built once for the tests that drive the dashboard with the CLI beside it.
var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

func berthCLI(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-web-cli-")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "berth")
		if out, err := exec.Command("go", "build", "-o", cliPath, "github.com/berthproject/berth/cmd/berth").CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

// submitCLI submits a block as a person does, with `berth job submit` against the fixture's
// server, and returns the queued job.
func (f *fixture) submitCLI(t *testing.T, token, name, code string) job.Job {
	t.Helper()
	dir := t.TempDir()
	spec := filepath.Join(dir, "block.yaml")
	if err := os.WriteFile(spec, []byte(fmt.Sprintf("name: %s\nlanguage: shell\nimage: %s\ncode: |\n%s", name, f.h.Img, indent(code))), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(berthCLI(t), "job", "submit", spec)
	cmd.Env = append(os.Environ(), "BERTH_SERVER="+f.srv.URL, "BERTH_TOKEN="+token, "BERTH_CONFIG="+filepath.Join(dir, "cli.json"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("berth job submit: %v\n%s%s", err, out.String(), errb.String())
	}
	id := strings.TrimSpace(out.String())
	j, err := f.h.M.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("the job berth job submit printed (%q): %v", id, err)
	}
	return j
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cliPath != "" {
		os.RemoveAll(filepath.Dir(cliPath))
	}
	os.Exit(code)
}
