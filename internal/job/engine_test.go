package job

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/store"
)

// harness is a job manager on the real engine, running blocks in the test busybox image.
type harness struct {
	m        *Manager
	eng      *docker.Engine
	st       *store.Store
	cfg      Config
	img      string
	instance string
}

func newHarness(t *testing.T, mutate func(*Config)) *harness {
	t.Helper()
	eng := enginetest.Require(t)
	img := enginetest.Busybox(t, eng)
	instance := testInstance()
	enginetest.Cleanup(t, eng, map[string]string{runtime.LabelTest: "1", runtime.LabelInstance: instance})
	return harnessOn(t, eng, img, instance, mutate)
}

func testInstance() string {
	var b [4]byte
	rand.Read(b[:])
	return "test-" + hex.EncodeToString(b[:])
}

// harnessOn is a started job manager of its own instance, store and data dir on eng, whose
// blocks run in img.
func harnessOn(t *testing.T, eng *docker.Engine, img, instance string, mutate func(*Config)) *harness {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "berth.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := DefaultConfig(filepath.Join(dir, "data"))
	cfg.Instance = instance
	cfg.ExtraLabels = enginetest.Labels(t)
	cfg.StopGrace = time.Second
	cfg.ShareRoots = []string{filepath.Join(dir, "share")}
	os.MkdirAll(cfg.ShareRoots[0], 0o755)
	if mutate != nil {
		mutate(&cfg)
	}
	h := &harness{eng: eng, st: st, cfg: cfg, img: img, instance: instance}
	h.start(t)
	return h
}

func (h *harness) start(t *testing.T) {
	t.Helper()
	images := image.NewManager(h.eng, image.DefaultConfig(), nil)
	m, err := New(h.cfg, h.st, h.eng, images, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.m = m
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		m.Close(ctx)
	})
}

// block is a shell block running code in the busybox image.
func (h *harness) block(code string) spec.Block {
	return spec.Block{Name: "t", Language: spec.LangShell, Image: h.img, Code: code}
}

func (h *harness) run(t *testing.T, b spec.Block) (Job, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	j, err := h.m.Submit(ctx, Submission{Block: b, BaseDir: h.cfg.ShareRoots[0], Owner: "tester"})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	j, err = h.m.Wait(ctx, j.ID)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return j, h.output(t, j.ID, "")
}

// output is the job's stored output of one stream ("" for stdout+stderr).
func (h *harness) output(t *testing.T, id, stream string) string {
	t.Helper()
	var sb strings.Builder
	err := h.m.Logs(context.Background(), id, false, func(c LogChunk) error {
		if (stream == "" && c.Stream != "system") || c.Stream == stream {
			sb.WriteString(c.Text)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

func (h *harness) containers(t *testing.T, id string) int {
	t.Helper()
	ts, err := h.eng.List(context.Background(), map[string]string{runtime.LabelJob: id})
	if err != nil {
		t.Fatal(err)
	}
	return len(ts)
}

func TestJobSucceedsAndIsDurable(t *testing.T) {
	h := newHarness(t, nil)
	b := h.block("echo hello; echo oops >&2; echo result > /data/out/r.txt")
	b.Parameters = map[string]any{"n": 3}
	j, out := h.run(t, b)
	if j.State != StateSucceeded || j.ExitCode == nil || *j.ExitCode != 0 {
		t.Fatalf("state %s/%s exit %v: %s", j.State, j.Reason, j.ExitCode, j.Message)
	}
	if got := h.output(t, j.ID, "stdout"); got != "hello\n" {
		t.Errorf("stdout = %q", got)
	}
	if got := h.output(t, j.ID, "stderr"); got != "oops\n" {
		t.Errorf("stderr = %q (out %q)", got, out)
	}
	stages := map[string]bool{}
	for _, s := range j.Timings {
		stages[s.Stage] = true
	}
	for _, s := range []string{"image", "workspace", "start", "run", "outputs", "cleanup"} {
		if !stages[s] {
			t.Errorf("no timing for stage %s: %+v", s, j.Timings)
		}
	}
	if b, err := os.ReadFile(filepath.Join(j.OutputDir, "r.txt")); err != nil || string(b) != "result\n" {
		t.Errorf("output file: %q %v", b, err)
	}
	if n := h.containers(t, j.ID); n != 0 {
		t.Errorf("%d containers left for the job", n)
	}
	// The store is the truth: a new manager on the same store sees the same job.
	h.m.Close(context.Background())
	h.start(t)
	again, err := h.m.Get(context.Background(), j.ID)
	if err != nil || again.State != StateSucceeded || len(again.Timings) != len(j.Timings) {
		t.Fatalf("after restart: %+v %v", again, err)
	}
	if got := h.output(t, j.ID, "stdout"); got != "hello\n" {
		t.Errorf("stdout after restart = %q", got)
	}
}

func TestFailureReasons(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Workers = 2 })
	cases := []struct {
		name   string
		code   string
		limits spec.Limits
		reason Reason
		exit   int
	}{
		{"user error", "exit 1", spec.Limits{}, ReasonUserError, 1},
		{"app error", "exit 3", spec.Limits{}, ReasonAppError, 3},
		{"timeout", "sleep 60", spec.Limits{Timeout: spec.Duration(time.Second)}, ReasonTimeout, -2},
		// The shell holds 64 MiB in a variable against a 16 MiB limit.
		{"oom", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo ${#x}", spec.Limits{Memory: 16 << 20}, ReasonOOM, -2},
	}
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := h.block(c.code)
			b.Limits = c.limits
			j, out := h.run(t, b)
			if j.State != StateFailed || j.Reason != c.reason {
				t.Errorf("%s: got %s/%s (%s) exit %v out %q", c.name, j.State, j.Reason, j.Message, j.ExitCode, out)
			}
			if c.exit >= 0 && (j.ExitCode == nil || *j.ExitCode != c.exit) {
				t.Errorf("%s: exit code %v, want %d", c.name, j.ExitCode, c.exit)
			}
		}()
	}
	wg.Wait()
}

func TestCancel(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Workers = 1 })
	ctx := context.Background()
	running, err := h.m.Submit(ctx, Submission{Block: h.block("echo started; sleep 60")})
	if err != nil {
		t.Fatal(err)
	}
	queued, err := h.m.Submit(ctx, Submission{Block: h.block("echo never")})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, h.m, running.ID, StateRunning)
	// A queued job ends at once.
	j, err := h.m.Cancel(ctx, queued.ID)
	if err != nil || j.State != StateCancelled {
		t.Fatalf("cancel queued: %s %v", j.State, err)
	}
	if _, err := h.m.Cancel(ctx, queued.ID); !errors.Is(err, ErrTerminal) {
		t.Fatalf("cancel twice: %v, want ErrTerminal", err)
	}
	// A running job is stopped and its container removed.
	if _, err := h.m.Cancel(ctx, running.ID); err != nil {
		t.Fatal(err)
	}
	j, err = h.m.Wait(ctx, running.ID)
	if err != nil || j.State != StateCancelled || j.Reason != ReasonCancelled {
		t.Fatalf("cancel running: %s/%s %v", j.State, j.Reason, err)
	}
	if n := h.containers(t, running.ID); n != 0 {
		t.Errorf("%d containers left after cancel", n)
	}
}

func waitState(t *testing.T, m *Manager, id string, s State) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		j, err := m.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == s {
			return
		}
		if j.State.Terminal() {
			t.Fatalf("job %s ended %s/%s (%s) before reaching %s", id, j.State, j.Reason, j.Message, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("job %s never reached %s", id, s)
}

func TestWorkerPoolLimitsConcurrency(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Workers = 2 })
	ctx := context.Background()
	var ids []string
	for i := 0; i < 3; i++ {
		j, err := h.m.Submit(ctx, Submission{Block: h.block("sleep 2")})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	maxActive, sawTwo := 0, false
	for {
		c, err := h.m.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		active := c[StatePreparing] + c[StateRunning] + c[StateFinishing]
		if active > maxActive {
			maxActive = active
		}
		if active == 2 && c[StateQueued] == 1 {
			sawTwo = true
		}
		if c[StateSucceeded]+c[StateFailed] == 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if maxActive > 2 || !sawTwo {
		t.Fatalf("max active %d (want 2), saw two running with one queued: %v", maxActive, sawTwo)
	}
	for _, id := range ids {
		if j, _ := h.m.Get(ctx, id); j.State != StateSucceeded {
			t.Errorf("job %s: %s/%s", id, j.State, j.Reason)
		}
	}
}

func TestOutputLiveCappedAndRedacted(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.LogCap = 2000 })
	ctx := context.Background()
	b := h.block(`echo "first token=$API_KEY"; sleep 2; i=0; while [ $i -lt 300 ]; do echo "line $i"; i=$((i+1)); done; echo "last $API_KEY"`)
	b.Env = map[string]spec.EnvVar{"API_KEY": {Value: "s3cr3t-value", Secret: true}, "PLAIN": {Value: "x"}}
	j, err := h.m.Submit(ctx, Submission{Block: b})
	if err != nil {
		t.Fatal(err)
	}
	// Live: the first line arrives while the job still runs.
	first := make(chan LogChunk, 1)
	go h.m.Logs(ctx, j.ID, true, func(c LogChunk) error {
		if c.Stream == "stdout" {
			select {
			case first <- c:
			default:
			}
		}
		return nil
	})
	select {
	case c := <-first:
		if cur, _ := h.m.Get(ctx, j.ID); cur.State.Terminal() {
			t.Errorf("first line arrived only after the job ended")
		}
		if c.Text != "first token=[hidden]\n" {
			t.Errorf("first line %q", c.Text)
		}
	case <-time.After(time.Minute):
		t.Fatal("no live output")
	}
	j, err = h.m.Wait(ctx, j.ID)
	if err != nil || j.State != StateSucceeded {
		t.Fatalf("%s %v", j.State, err)
	}
	var all strings.Builder
	h.m.Logs(ctx, j.ID, false, func(c LogChunk) error { all.WriteString(c.Text); return nil })
	out := all.String()
	if n := len([]rune(out)); n > 2000 {
		t.Errorf("kept %d characters, cap 2000", n)
	}
	if strings.Contains(out, "s3cr3t") {
		t.Errorf("secret in stored output")
	}
	if !strings.Contains(out, "last [hidden]\n") || strings.Contains(out, "line 0\n") {
		t.Errorf("cap should keep the tail: %q", out[len(out)-100:])
	}
}

func TestReconcile(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	// A job a crashed berth left running, with its container gone.
	now := time.Now().UTC()
	gone := Job{ID: newID(), Name: "gone", State: StateRunning, CreatedAt: now, StartedAt: &now, Block: h.block("true")}
	row := toRow(gone)
	row.Block = `{"name":"gone","language":"shell","code":"true"}`
	if err := h.st.InsertJob(ctx, row); err != nil {
		t.Fatal(err)
	}
	// A job container no job owns, and one of a job left running whose container survived.
	orphan := h.sleeper(t, "orphan-job")
	survivor := Job{ID: newID(), Name: "survivor", State: StateRunning, CreatedAt: now, StartedAt: &now}
	row = toRow(survivor)
	row.Block = `{"name":"survivor","language":"shell","code":"sleep 600"}`
	if err := h.st.InsertJob(ctx, row); err != nil {
		t.Fatal(err)
	}
	h.sleeper(t, survivor.ID)

	h.m.Close(ctx)
	h.start(t)
	for _, id := range []string{gone.ID, survivor.ID} {
		j, err := h.m.Get(ctx, id)
		if err != nil || j.State != StateFailed || j.Reason != ReasonInternal {
			t.Errorf("job %s after reconcile: %s/%s %v", id, j.State, j.Reason, err)
		}
		if n := h.containers(t, id); n != 0 {
			t.Errorf("job %s: %d containers remain", id, n)
		}
	}
	if ts, _ := h.eng.List(ctx, map[string]string{runtime.LabelJob: "orphan-job"}); len(ts) != 0 {
		t.Errorf("orphan container %s not removed", orphan)
	}
}

// sleeper starts a job-labelled container of this harness's instance.
func (h *harness) sleeper(t *testing.T, jobID string) runtime.TaskID {
	t.Helper()
	labels := enginetest.Labels(t)
	labels[runtime.LabelKind] = runtime.KindJob
	labels[runtime.LabelJob] = jobID
	labels[runtime.LabelInstance] = h.instance
	id, err := h.eng.Start(context.Background(), runtime.TaskSpec{Image: h.img, Cmd: []string{"sleep", "600"}, Labels: labels, Network: "none"})
	if err != nil {
		t.Fatal(err)
	}
	return id
}
