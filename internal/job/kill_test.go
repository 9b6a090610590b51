package job_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// TestKilledFromOutsideIsNotOOM: a job container killed with SIGKILL by someone else (not by
// berth's timeout or cancel, and with memory to spare) ends `killed`, naming the signal, never
// `oom`: OOM is what the engine reports, not a guess from exit 137.
func TestKilledFromOutsideIsNotOOM(t *testing.T) {
	h := newHarness(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	j, err := h.M.Submit(ctx, job.Submission{Block: h.Block("echo started; sleep 60")})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, h.M, j.ID, job.StateRunning)
	var tasks []runtime.TaskStatus
	for deadline := time.Now().Add(30 * time.Second); len(tasks) == 0 || !tasks[0].Running; {
		if time.Now().After(deadline) {
			t.Fatalf("the job's container never ran: %+v", tasks)
		}
		time.Sleep(20 * time.Millisecond)
		tasks, err = h.Eng.List(ctx, map[string]string{runtime.LabelJob: j.ID, runtime.LabelInstance: h.Instance})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(tasks[0].Name, h.Instance) {
		t.Errorf("container name %q does not carry the instance %s", tasks[0].Name, h.Instance)
	}
	enginetest.Kill(t, string(tasks[0].ID), "KILL")
	j, err = h.M.Wait(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != job.StateFailed || j.Reason != job.ReasonKilled {
		t.Fatalf("got %s/%s (%s), want failed/killed", j.State, j.Reason, j.Message)
	}
	if j.ExitCode == nil || *j.ExitCode != 137 {
		t.Errorf("exit code %v, want 137", j.ExitCode)
	}
	if !strings.Contains(j.Message, "signal 9 (SIGKILL)") || !strings.Contains(j.Message, "not by berth") {
		t.Errorf("message %q does not name the signal and who", j.Message)
	}
}
