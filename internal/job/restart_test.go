package job

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// newPrivateHarness is a job manager on an engine of the test's own, which the test may stop
// and restart.
func newPrivateHarness(t *testing.T, p *enginetest.Private, mutate func(*Config)) *harness {
	t.Helper()
	eng := p.Engine(t)
	img := p.Busybox(t, eng)
	return harnessOn(t, eng, img, testInstance(), mutate)
}

// runningJob submits a job that runs for a while and returns once its container runs and has
// printed its first line.
func (h *harness) runningJob(t *testing.T, code string) Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	j, err := h.m.Submit(ctx, Submission{Block: h.block(code), BaseDir: h.cfg.ShareRoots[0], Owner: "tester"})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	for {
		ts, err := h.eng.List(ctx, map[string]string{runtime.LabelJob: j.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) == 1 && ts[0].Running && strings.Contains(h.output(t, j.ID, "stdout"), "started") {
			return j
		}
		select {
		case <-ctx.Done():
			got, _ := h.m.Get(context.Background(), j.ID)
			t.Fatalf("the job's container never ran: %s/%s %s", got.State, got.Reason, got.Message)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// endsWithin waits for the job to end and fails the test when it is still not terminal after d.
func (h *harness) endsWithin(t *testing.T, id string, d time.Duration) Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	j, err := h.m.Wait(ctx, id)
	if err != nil {
		got, _ := h.m.Get(context.Background(), id)
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
			if j.State != StateFailed || j.Reason != ReasonInternal || !strings.Contains(j.Message, "container engine restarted") {
				t.Errorf("after the engine restarted the job is %s/%s %q; want failed/internal saying the container engine restarted", j.State, j.Reason, j.Message)
			}
			if took := time.Since(t0); took > 60*time.Second {
				t.Errorf("the job took %s to end after the restart", took.Round(time.Second))
			}
			if n := h.containers(t, j.ID); n != 0 {
				t.Errorf("%d container(s) of the job left after the restart", n)
			}
		})
	}
}

// An engine that does not come back ends a running job within the bound, saying the engine
// is unreachable; the next start of berth removes what is left.
func TestJobEndsWhenTheEngineDoesNotComeBack(t *testing.T) {
	p := enginetest.StartPrivate(t)
	h := newPrivateHarness(t, p, func(c *Config) { c.EngineRetry = 5 * time.Second })
	j := h.runningJob(t, "echo started; sleep 60")
	p.Stop(t, syscall.SIGKILL)
	j = h.endsWithin(t, j.ID, 60*time.Second)
	if j.State != StateFailed || j.Reason != ReasonInternal || !strings.Contains(j.Message, "container engine did not answer") {
		t.Errorf("with the engine away the job is %s/%s %q; want failed/internal saying the engine did not answer", j.State, j.Reason, j.Message)
	}
	// The engine comes back; berth's next start removes the container left behind.
	p.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.m.Close(ctx)
	h.start(t)
	if n := h.containers(t, j.ID); n != 0 {
		t.Errorf("%d container(s) of the job left after berth started again", n)
	}
}
