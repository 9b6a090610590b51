package job

import (
	"context"
	"fmt"
	"time"

	"github.com/berthproject/berth/internal/store"
)

// cancellingMessage is a cancelling job's message.
const cancellingMessage = "cancel asked for: stopping and removing the container"

// markCancelling stores the job as cancelling, at once, and makes every later Save until its
// end store it so: whatever stage the worker is in, the job is never seen running again.
func (r *Run) markCancelling(ctx context.Context) error {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	if r.final {
		return nil // its end is being stored: the answer is that end
	}
	r.cancelling = true
	from := []string{string(StatePreparing), string(StateRunning), string(StateFinishing)}
	if _, err := r.m.st.TransitionJob(ctx, r.row.ID, from, string(StateCancelling), "", cancellingMessage, nil); err != nil {
		return fmt.Errorf("cancel job %s: %w", r.row.ID, err)
	}
	return nil
}

// savedRow is the row Save stores (under saveMu): the job as it is, except that before
// storeFinal an end already decided is not stored (the last state stored stands: its
// container may still be there) and a cancelled job is stored as cancelling.
func (r *Run) savedRow() store.JobRow {
	row := toRow(r.j)
	if r.final {
		return row
	}
	if r.j.State.Terminal() {
		row.State, row.Reason, row.Message, row.FinishedAt = string(r.savedState), "", "", nil
	} else {
		r.savedState = r.j.State
	}
	if r.cancelling {
		row.State, row.Reason, row.Message = string(StateCancelling), "", cancellingMessage
	}
	return row
}

// begin records that a stage started and stores it, so that a reader sees the stage and
// its time so far (liveTimings); Timing ends it.
func (r *Run) begin(stage string) {
	r.j.Timings = append(r.j.Timings, StageTiming{Stage: stage, StartedAt: time.Now().UTC(), InProgress: true})
	r.Save()
}

// liveTimings gives a stage that has not ended its time so far, as of now.
func liveTimings(j *Job) {
	for i := range j.Timings {
		t := &j.Timings[i]
		if t.InProgress && !j.State.Terminal() {
			t.Duration = time.Since(t.StartedAt)
			t.DurationMS = float64(t.Duration.Microseconds()) / 1000
		}
	}
}

// activeRun is a job's run on this server and its cancel, if it runs here.
func (m *Manager) activeRun(id string) (context.CancelCauseFunc, *Run) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active[id], m.runs[id]
}
