package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// berthBinary builds cmd/berth once per test binary.
var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func berthBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-e2e-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "berth")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/berthproject/berth/cmd/berth").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// server is a berth server process under test.
type server struct {
	t       *testing.T
	cmd     *exec.Cmd
	addr    string
	dataDir string
	token   string
	log     *bytes.Buffer
}

func startServer(t *testing.T, dataDir, addr string, extra ...string) *server {
	t.Helper()
	s := &server{t: t, addr: addr, dataDir: dataDir, log: &bytes.Buffer{}}
	s.cmd = exec.Command(berthBinary(t), append([]string{"server", "--data-dir", dataDir, "--listen", addr,
		"--label", "berth.test=1", "--workers", "2"}, extra...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { s.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				s.cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.log.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not answer /healthz within 60s; log:\n%s", s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	tok, err := os.ReadFile(filepath.Join(dataDir, "admin-token"))
	if err != nil {
		t.Fatalf("admin token file: %v", err)
	}
	s.token = strings.TrimSpace(string(tok))
	return s
}

func (s *server) kill9() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
}

func (s *server) call(method, path string, body any, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+s.addr+path, rd)
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	if resp.StatusCode >= 300 {
		s.t.Logf("%s %s -> %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

type jobView struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// TestServerKilledMidJob: kill -9 of the server while a job runs; after a restart the job
// ends failed/internal and no berth container remains.
func TestServerKilledMidJob(t *testing.T) {
	eng := enginetest.Require(t)
	img := enginetest.Busybox(t, eng)
	dataDir := t.TempDir()
	addr := freePort(t)
	s := startServer(t, dataDir, addr)

	specYAML := fmt.Sprintf("name: sleeper\nlanguage: shell\nimage: %s\ncode: |\n  echo started\n  sleep 300\n", img)
	var j jobView
	if code := s.call("POST", "/api/v1/jobs", map[string]any{"spec": specYAML, "filename": "block.yaml"}, &j); code != 201 {
		t.Fatalf("submit: status %d", code)
	}
	// Leftovers from a failed run of this test are removed whatever happens.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tasks, _ := eng.List(ctx, map[string]string{runtime.LabelJob: j.ID})
		for _, task := range tasks {
			eng.Remove(ctx, task.ID)
		}
	})

	// Wait until the job is running and its container is up.
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s.call("GET", "/api/v1/jobs/"+j.ID, nil, &j)
		if j.State == "running" {
			tasks, err := eng.List(ctx, map[string]string{runtime.LabelJob: j.ID})
			if err == nil && len(tasks) == 1 && tasks[0].Running {
				break
			}
		} else if j.State != "queued" && j.State != "preparing" {
			t.Fatalf("job did not reach running: %+v", j)
		}
		if time.Now().After(deadline) {
			t.Fatalf("job's container not running within 60s: %+v", j)
		}
		time.Sleep(50 * time.Millisecond)
	}

	s.kill9()

	tasks, _ := eng.List(ctx, map[string]string{runtime.LabelJob: j.ID})
	if len(tasks) != 1 {
		t.Fatalf("after kill -9 the job's container should still be there (nobody removed it), got %d", len(tasks))
	}

	s2 := startServer(t, dataDir, addr)
	s2.call("GET", "/api/v1/jobs/"+j.ID, nil, &j)
	if j.State != "failed" || j.Reason != "internal" {
		t.Fatalf("after restart the job is %s/%s (%s), want failed/internal", j.State, j.Reason, j.Message)
	}
	tasks, _ = eng.List(ctx, map[string]string{runtime.LabelJob: j.ID})
	if len(tasks) != 0 {
		t.Fatalf("after restart %d berth container(s) of the job remain", len(tasks))
	}
}

// serviceSetup is what a test of a Python service through a server needs: the engine (the
// python base must be there: `make test` bootstraps it), a data dir with an instance id of the
// test's own (and its id), and a service name from prefix; whatever the server leaves of either on the
// engine is swept afterwards.
func serviceSetup(t *testing.T, prefix string) (eng *docker.Engine, dataDir, name, instance string) {
	t.Helper()
	eng = enginetest.Require(t)
	if _, err := eng.InspectImage(context.Background(), "berth/python:3.11"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the python base is missing: `make test` bootstraps it")
		}
		t.Skip("python base not built")
	}
	dataDir = t.TempDir()
	// The server takes the data dir's instance id from this file.
	instance = "test-" + enginetest.Unique(t)
	if err := os.WriteFile(filepath.Join(dataDir, "instance"), []byte(instance+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	name = prefix + "-" + enginetest.Unique(t)[:6]
	t.Cleanup(func() {
		eng.Sweep(context.Background(), map[string]string{runtime.LabelTest: "1", runtime.LabelInstance: instance})
		eng.Sweep(context.Background(), map[string]string{runtime.LabelTest: "1", runtime.LabelService: name})
	})
	return eng, dataDir, name, instance
}
