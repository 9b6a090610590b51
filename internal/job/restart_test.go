package job_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/job/jobtest"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// newPrivateHarness is a job manager on an engine of the test's own, which the test may stop
// and restart.
func newPrivateHarness(t *testing.T, p *enginetest.Private, mutate func(*job.Config)) *harness {
	t.Helper()
	eng := p.Engine(t)
	img := p.Busybox(t, eng)
	return &harness{jobtest.On(t, eng, img, jobtest.Instance(), mutate, blockExecutors)}
}

// runningJob submits a job that runs for a while and returns once its container runs and has
// printed its first line.
func (h *harness) runningJob(t *testing.T, code string) job.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	j, err := h.M.Submit(ctx, job.Submission{Block: h.Block(code), BaseDir: h.Cfg.ShareRoots[0], Owner: "tester"})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	for {
		ts, err := h.Eng.List(ctx, map[string]string{runtime.LabelJob: j.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) == 1 && ts[0].Running && strings.Contains(h.Output(t, j.ID, "stdout"), "started") {
			return j
		}
		select {
		case <-ctx.Done():
			got, _ := h.M.Get(context.Background(), j.ID)
			t.Fatalf("the job's container never ran: %s/%s %s", got.State, got.Reason, got.Message)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// endsWithin waits for the job to end and fails the test when it is still not terminal after d.
func (h *harness) endsWithin(t *testing.T, id string, d time.Duration) job.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	j, err := h.M.Wait(ctx, id)
	if err != nil {
		got, _ := h.M.Get(context.Background(), id)
		t.Fatalf("the job is still %s %s after %s: %v", got.State, got.Message, d, err)
	}
	return j
}

// An engine restarted under a running job (stopped in order, or killed) ends the job failed
// with a reason that says so, not as out of memory or a berth shutdown, and leaves nothing.
func TestJobEndsClearlyWhenTheEngineRestarts(t *testing.T) {
	p := enginetest.StartPrivate(t)
	h := newPrivateHarness(t, p, nil)
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
	}{{"stopped", syscall.SIGTERM}, {"killed", syscall.SIGKILL}} {
		t.Run(tc.name, func(t *testing.T) {
			j := h.runningJob(t, "echo started; sleep 30")
			t0 := time.Now()
			p.Stop(t, tc.sig)
			time.Sleep(2 * time.Second) // the engine stays away for a while
			p.Start(t)
			j = h.endsWithin(t, j.ID, 90*time.Second)
			if j.State != job.StateFailed || j.Reason != job.ReasonInternal || !strings.Contains(j.Message, "container engine restarted") {
				t.Errorf("after the engine restarted the job is %s/%s %q; want failed/internal saying the container engine restarted", j.State, j.Reason, j.Message)
			}
			if took := time.Since(t0); took > 60*time.Second {
				t.Errorf("the job took %s to end after the restart", took.Round(time.Second))
			}
			if n := h.Containers(t, j.ID); n != 0 {
				t.Errorf("%d container(s) of the job left after the restart", n)
			}
		})
	}
}

// An engine that does not come back ends a running job within the bound, saying the engine
// is unreachable; the next start of berth removes what is left.
func TestJobEndsWhenTheEngineDoesNotComeBack(t *testing.T) {
	p := enginetest.StartPrivate(t)
	h := newPrivateHarness(t, p, func(c *job.Config) { c.EngineRetry = 5 * time.Second })
	j := h.runningJob(t, "echo started; sleep 60")
	p.Stop(t, syscall.SIGKILL)
	j = h.endsWithin(t, j.ID, 60*time.Second)
	if j.State != job.StateFailed || j.Reason != job.ReasonInternal || !strings.Contains(j.Message, "container engine did not answer") {
		t.Errorf("with the engine away the job is %s/%s %q; want failed/internal saying the engine did not answer", j.State, j.Reason, j.Message)
	}
	// The engine comes back; berth's next start removes the container left behind.
	p.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.M.Close(ctx)
	h.Start(t)
	if n := h.Containers(t, j.ID); n != 0 {
		t.Errorf("%d container(s) of the job left after berth started again", n)
	}
}
