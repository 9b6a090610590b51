package block

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/spec"
)

// TestBlockRetry: a block that fails for a reason its retry policy names runs again and ends
// succeeded with both attempts recorded; a user_error is never retried.
func TestBlockRetry(t *testing.T) {
	h := newHarness(t, nil)
	t.Run("app_error then success", func(t *testing.T) {
		b := h.Block(`echo "attempt $BERTH_ATTEMPT"; [ "$BERTH_ATTEMPT" = 1 ] && exit 3; echo done`)
		b.Retry = &spec.Retry{Max: 2, Backoff: spec.Duration(200 * time.Millisecond), On: []string{"app_error"}}
		t0 := time.Now()
		j, out := h.Run(t, b)
		if j.State != job.StateSucceeded {
			t.Fatalf("state %s (%s: %s), want succeeded; output:\n%s", j.State, j.Reason, j.Message, out)
		}
		if len(j.Attempts) != 2 {
			t.Fatalf("%d attempts %+v, want 2", len(j.Attempts), j.Attempts)
		}
		a1, a2 := j.Attempts[0], j.Attempts[1]
		if a1.Number != 1 || a1.State != job.StateFailed || a1.Reason != job.ReasonAppError || a1.ExitCode == nil || *a1.ExitCode != 3 || a1.FinishedAt == nil {
			t.Errorf("attempt 1 = %+v, want failed app_error exit 3", a1)
		}
		if a2.Number != 2 || a2.State != job.StateSucceeded || a2.Reason != job.ReasonNone || a2.FinishedAt == nil {
			t.Errorf("attempt 2 = %+v, want succeeded", a2)
		}
		if a1.FinishedAt != nil && a2.StartedAt.Sub(*a1.FinishedAt) < 200*time.Millisecond {
			t.Errorf("attempt 2 started %s after attempt 1 ended, want the 200ms backoff", a2.StartedAt.Sub(*a1.FinishedAt))
		}
		if !strings.Contains(out, "attempt 1") || !strings.Contains(out, "attempt 2") || !strings.Contains(out, "done") {
			t.Errorf("output %q, want both attempts' lines", out)
		}
		if time.Since(t0) > time.Minute {
			t.Errorf("took %s", time.Since(t0))
		}
		if n := h.Containers(t, j.ID); n != 0 {
			t.Errorf("%d containers of the job left", n)
		}
	})
	t.Run("user_error is not retried", func(t *testing.T) {
		b := h.Block(`echo "attempt $BERTH_ATTEMPT"; exit 1`)
		b.Retry = &spec.Retry{Max: 3, Backoff: spec.Duration(100 * time.Millisecond)}
		j, out := h.Run(t, b)
		if j.State != job.StateFailed || j.Reason != job.ReasonUserError {
			t.Fatalf("state %s (%s), want failed user_error", j.State, j.Reason)
		}
		if len(j.Attempts) != 1 || strings.Contains(out, "attempt 2") {
			t.Fatalf("%d attempts %+v, output %q: want 1", len(j.Attempts), j.Attempts, out)
		}
	})
	t.Run("gives up after max", func(t *testing.T) {
		b := h.Block(`exit 4`)
		b.Retry = &spec.Retry{Max: 1, Backoff: spec.Duration(50 * time.Millisecond)}
		j, _ := h.Run(t, b)
		if j.State != job.StateFailed || j.Reason != job.ReasonAppError || len(j.Attempts) != 2 {
			t.Fatalf("state %s (%s), %d attempts: want failed app_error after 2", j.State, j.Reason, len(j.Attempts))
		}
	})
}

// TestBlockRetryCancelledInBackoff: a job waiting to retry says so, stays cancellable, and a
// cancel ends it at once (not after the backoff).
func TestBlockRetryCancelledInBackoff(t *testing.T) {
	h := newHarness(t, nil)
	b := h.Block(`exit 3`)
	b.Retry = &spec.Retry{Max: 2, Backoff: spec.Duration(time.Minute)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	j, err := h.M.Submit(ctx, job.Submission{Block: b, BaseDir: h.Cfg.ShareRoots[0], Owner: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		got, err := h.M.Get(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(got.Message, "attempt 2 starts in 1m0s") {
			if got.State != job.StatePreparing {
				t.Fatalf("waiting to retry in state %s, want preparing", got.State)
			}
			break
		}
		if got.State.Terminal() || time.Now().After(deadline) {
			t.Fatalf("job %s (%s: %s), want it waiting to retry", got.State, got.Reason, got.Message)
		}
	}
	t0 := time.Now()
	if _, err := h.M.Cancel(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	end, err := h.M.Wait(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if end.State != job.StateCancelled || len(end.Attempts) != 1 || time.Since(t0) > 10*time.Second {
		t.Fatalf("after cancel: %s (%s), %d attempts, %s: want cancelled at once after 1 attempt", end.State, end.Message, len(end.Attempts), time.Since(t0))
	}
}
