package job_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/block"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/job/jobtest"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
	"github.com/berthproject/berth/internal/spec"
)

// harness is a job manager on the real engine (jobtest), running blocks.
type harness struct{ *jobtest.Harness }

func blockExecutors(*jobtest.Harness) map[string]job.Executor {
	return map[string]job.Executor{job.KindBlock: block.New()}
}

func newHarness(t *testing.T, mutate func(*job.Config)) *harness {
	t.Helper()
	return &harness{jobtest.New(t, mutate, blockExecutors)}
}

func TestJobSucceedsAndIsDurable(t *testing.T) {
	h := newHarness(t, nil)
	b := h.Block("echo hello; echo oops >&2; echo result > /data/out/r.txt")
	b.Parameters = map[string]any{"n": 3}
	j, out := h.Run(t, b)
	if j.State != job.StateSucceeded || j.ExitCode == nil || *j.ExitCode != 0 {
		t.Fatalf("state %s/%s exit %v: %s", j.State, j.Reason, j.ExitCode, j.Message)
	}
	if got := h.Output(t, j.ID, "stdout"); got != "hello\n" {
		t.Errorf("stdout = %q", got)
	}
	if got := h.Output(t, j.ID, "stderr"); got != "oops\n" {
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
	if n := h.Containers(t, j.ID); n != 0 {
		t.Errorf("%d containers left for the job", n)
	}
	// The store is the truth: a new manager on the same store sees the same job.
	h.M.Close(context.Background())
	h.Start(t)
	again, err := h.M.Get(context.Background(), j.ID)
	if err != nil || again.State != job.StateSucceeded || len(again.Timings) != len(j.Timings) {
		t.Fatalf("after restart: %+v %v", again, err)
	}
	if got := h.Output(t, j.ID, "stdout"); got != "hello\n" {
		t.Errorf("stdout after restart = %q", got)
	}
}

func TestFailureReasons(t *testing.T) {
	h := newHarness(t, func(c *job.Config) { c.Workers = 2 })
	cases := []struct {
		name   string
		code   string
		limits spec.Limits
		reason job.Reason
		exit   int
	}{
		{"user error", "exit 1", spec.Limits{}, job.ReasonUserError, 1},
		{"app error", "exit 3", spec.Limits{}, job.ReasonAppError, 3},
		{"timeout", "sleep 60", spec.Limits{Timeout: spec.Duration(time.Second)}, job.ReasonTimeout, -2},
		// The shell holds 64 MiB in a variable against a 16 MiB limit.
		{"oom", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo ${#x}", spec.Limits{Memory: 16 << 20}, job.ReasonOOM, -2},
	}
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := h.Block(c.code)
			b.Limits = c.limits
			j, out := h.Run(t, b)
			if j.State != job.StateFailed || j.Reason != c.reason {
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
	h := newHarness(t, func(c *job.Config) { c.Workers = 1 })
	ctx := context.Background()
	running, err := h.M.Submit(ctx, job.Submission{Block: h.Block("echo started; sleep 60")})
	if err != nil {
		t.Fatal(err)
	}
	queued, err := h.M.Submit(ctx, job.Submission{Block: h.Block("echo never")})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, h.M, running.ID, job.StateRunning)
	// A queued job ends at once.
	j, err := h.M.Cancel(ctx, queued.ID)
	if err != nil || j.State != job.StateCancelled {
		t.Fatalf("cancel queued: %s %v", j.State, err)
	}
	if _, err := h.M.Cancel(ctx, queued.ID); !errors.Is(err, job.ErrTerminal) {
		t.Fatalf("cancel twice: %v, want ErrTerminal", err)
	}
	// A running job is stopped and its container removed.
	if _, err := h.M.Cancel(ctx, running.ID); err != nil {
		t.Fatal(err)
	}
	j, err = h.M.Wait(ctx, running.ID)
	if err != nil || j.State != job.StateCancelled || j.Reason != job.ReasonCancelled {
		t.Fatalf("cancel running: %s/%s %v", j.State, j.Reason, err)
	}
	if n := h.Containers(t, running.ID); n != 0 {
		t.Errorf("%d containers left after cancel", n)
	}
}

func waitState(t *testing.T, m *job.Manager, id string, s job.State) {
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
	h := newHarness(t, func(c *job.Config) { c.Workers = 2 })
	ctx := context.Background()
	var ids []string
	for i := 0; i < 3; i++ {
		j, err := h.M.Submit(ctx, job.Submission{Block: h.Block("sleep 2")})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	maxActive, sawTwo := 0, false
	for {
		c, err := h.M.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		active := c[job.StatePreparing] + c[job.StateRunning] + c[job.StateFinishing]
		if active > maxActive {
			maxActive = active
		}
		if active == 2 && c[job.StateQueued] == 1 {
			sawTwo = true
		}
		if c[job.StateSucceeded]+c[job.StateFailed] == 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if maxActive > 2 || !sawTwo {
		t.Fatalf("max active %d (want 2), saw two running with one queued: %v", maxActive, sawTwo)
	}
	for _, id := range ids {
		if j, _ := h.M.Get(ctx, id); j.State != job.StateSucceeded {
			t.Errorf("job %s: %s/%s", id, j.State, j.Reason)
		}
	}
}

func TestOutputLiveCappedAndRedacted(t *testing.T) {
	h := newHarness(t, func(c *job.Config) { c.LogCap = 2000 })
	ctx := context.Background()
	b := h.Block(`echo "first token=$API_KEY"; sleep 2; i=0; while [ $i -lt 300 ]; do echo "line $i"; i=$((i+1)); done; echo "last $API_KEY"`)
	b.Env = map[string]spec.EnvVar{"API_KEY": {Value: "s3cr3t-value", Secret: true}, "PLAIN": {Value: "x"}}
	j, err := h.M.Submit(ctx, job.Submission{Block: b})
	if err != nil {
		t.Fatal(err)
	}
	// Live: the first line arrives while the job still runs.
	first := make(chan job.LogChunk, 1)
	go h.M.Logs(ctx, j.ID, true, func(c job.LogChunk) error {
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
		if cur, _ := h.M.Get(ctx, j.ID); cur.State.Terminal() {
			t.Errorf("first line arrived only after the job ended")
		}
		if c.Text != "first token=[hidden]\n" {
			t.Errorf("first line %q", c.Text)
		}
	case <-time.After(time.Minute):
		t.Fatal("no live output")
	}
	j, err = h.M.Wait(ctx, j.ID)
	if err != nil || j.State != job.StateSucceeded {
		t.Fatalf("%s %v", j.State, err)
	}
	var all strings.Builder
	h.M.Logs(ctx, j.ID, false, func(c job.LogChunk) error { all.WriteString(c.Text); return nil })
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
	gone := job.Job{ID: job.NewID(), Name: "gone", State: job.StateRunning, CreatedAt: now, StartedAt: &now, Block: h.Block("true")}
	row := job.ToRow(gone)
	row.Block = `{"name":"gone","language":"shell","code":"true"}`
	if err := h.St.InsertJob(ctx, row); err != nil {
		t.Fatal(err)
	}
	// A job container no job owns, and one of a job left running whose container survived.
	orphan := h.sleeper(t, "orphan-job")
	survivor := job.Job{ID: job.NewID(), Name: "survivor", State: job.StateRunning, CreatedAt: now, StartedAt: &now}
	row = job.ToRow(survivor)
	row.Block = `{"name":"survivor","language":"shell","code":"sleep 600"}`
	if err := h.St.InsertJob(ctx, row); err != nil {
		t.Fatal(err)
	}
	h.sleeper(t, survivor.ID)

	h.M.Close(ctx)
	h.Start(t)
	for _, id := range []string{gone.ID, survivor.ID} {
		j, err := h.M.Get(ctx, id)
		if err != nil || j.State != job.StateFailed || j.Reason != job.ReasonInternal {
			t.Errorf("job %s after reconcile: %s/%s %v", id, j.State, j.Reason, err)
		}
		if n := h.Containers(t, id); n != 0 {
			t.Errorf("job %s: %d containers remain", id, n)
		}
	}
	if ts, _ := h.Eng.List(ctx, map[string]string{runtime.LabelJob: "orphan-job"}); len(ts) != 0 {
		t.Errorf("orphan container %s not removed", orphan)
	}
}

// sleeper starts a job-labelled container of this harness's instance.
func (h *harness) sleeper(t *testing.T, jobID string) runtime.TaskID {
	t.Helper()
	labels := enginetest.Labels(t)
	labels[runtime.LabelKind] = runtime.KindJob
	labels[runtime.LabelJob] = jobID
	labels[runtime.LabelInstance] = h.Instance
	id, err := h.Eng.Start(context.Background(), runtime.TaskSpec{Image: h.Img, Cmd: []string{"sleep", "600"}, Labels: labels, Network: "none"})
	if err != nil {
		t.Fatal(err)
	}
	return id
}
