package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/job"
)

// TestSummaryShowsAttempts: `job get` lists each attempt of a retried job with its reason.
func TestSummaryShowsAttempts(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1, t2 := t0.Add(2*time.Second), t0.Add(5*time.Second)
	three := 3
	j := job.Job{ID: "j1", Name: "b", State: job.StateSucceeded, Attempts: []job.Attempt{
		{Number: 1, State: job.StateFailed, Reason: job.ReasonAppError, Message: "the script exited with code 3", ExitCode: &three, StartedAt: t0, FinishedAt: &t1},
		{Number: 2, State: job.StateSucceeded, StartedAt: t1, FinishedAt: &t2},
	}}
	var b bytes.Buffer
	printSummary(&b, j)
	out := b.String()
	for _, want := range []string{"attempts: 2", "1  ", "failed (app_error)", "the script exited with code 3", "2  ", "succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}
