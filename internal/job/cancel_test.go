package job_test

import (
	"context"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/job"
)

// runStage is the job's run stage as a reader sees it, if it has begun.
func runStage(j job.Job) (job.StageTiming, bool) {
	for _, t := range j.Timings {
		if t.Stage == "run" {
			return t, true
		}
	}
	return job.StageTiming{}, false
}

// TestCancelIsHonestAndStageTimesLive: a running job's run stage shows its time so far, and
// it grows; a cancel answers cancelling (stored at once), the job is seen cancelling — never
// running again — while its container is stopped, and cancelled only once the container is
// gone.
func TestCancelIsHonestAndStageTimesLive(t *testing.T) {
	// The script ignores SIGTERM, so the stop takes the whole grace.
	h := newHarness(t, func(c *job.Config) { c.StopGrace = 2 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	j, err := h.M.Submit(ctx, job.Submission{Block: h.Block("trap '' TERM; echo started; while true; do sleep 0.1; done")})
	if err != nil {
		t.Fatal(err)
	}
	var first job.StageTiming
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the run stage never began: %+v", j)
		}
		if j, err = h.M.Get(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
		if st, ok := runStage(j); ok {
			first = st
			break
		}
	}
	if !first.InProgress || j.State != job.StateRunning {
		t.Fatalf("job %s, run stage %+v: want running with the stage in progress", j.State, first)
	}
	time.Sleep(400 * time.Millisecond)
	j, _ = h.M.Get(ctx, j.ID)
	later, _ := runStage(j)
	if !later.InProgress || later.DurationMS < first.DurationMS+300 {
		t.Fatalf("run stage went from %.0f ms to %.0f ms in 400 ms (in progress %v): not live", first.DurationMS, later.DurationMS, later.InProgress)
	}

	j, err = h.M.Cancel(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != job.StateCancelling {
		t.Fatalf("cancel answered %s, want cancelling", j.State)
	}
	t0 := time.Now()
	sawContainer := false
	for {
		n := h.Containers(t, j.ID)
		if j, err = h.M.Get(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
		if j.State.Terminal() {
			if j.State != job.StateCancelled || j.Reason != job.ReasonCancelled {
				t.Fatalf("ended %s/%s (%s), want cancelled", j.State, j.Reason, j.Message)
			}
			if n := h.Containers(t, j.ID); n != 0 {
				t.Fatalf("cancelled with %d containers left", n)
			}
			break
		}
		if j.State != job.StateCancelling {
			t.Fatalf("after the cancel the job is %s, want cancelling until it ends", j.State)
		}
		sawContainer = sawContainer || n > 0
		if time.Since(t0) > time.Minute {
			t.Fatal("the cancel never ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !sawContainer || time.Since(t0) < time.Second {
		t.Fatalf("cancelling lasted %s (container seen: %v): the grace is 2 s", time.Since(t0), sawContainer)
	}
	for _, st := range j.Timings {
		if st.InProgress {
			t.Fatalf("a finished job has a stage in progress: %+v", j.Timings)
		}
	}
	if j.FinishedAt == nil {
		t.Fatal("cancelled job has no finish time")
	}
}

// TestReconcileEndsACancellingJobCancelled: a job a stopped berth left cancelling ends
// cancelled on restart (the cancel was asked for), and its container is removed.
func TestReconcileEndsACancellingJobCancelled(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	now := time.Now().UTC()
	left := job.Job{ID: job.NewID(), Name: "left", State: job.StateCancelling, CreatedAt: now, StartedAt: &now}
	row := job.ToRow(left)
	row.Block = `{"name":"left","language":"shell","code":"sleep 600"}`
	if err := h.St.InsertJob(ctx, row); err != nil {
		t.Fatal(err)
	}
	h.sleeper(t, left.ID)
	h.M.Close(ctx)
	h.Start(t)
	j, err := h.M.Get(ctx, left.ID)
	if err != nil || j.State != job.StateCancelled || j.Reason != job.ReasonCancelled || j.FinishedAt == nil {
		t.Fatalf("after reconcile: %s/%s (%s) %v", j.State, j.Reason, j.Message, err)
	}
	if n := h.Containers(t, left.ID); n != 0 {
		t.Fatalf("%d containers remain", n)
	}
}
