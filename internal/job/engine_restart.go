package job

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berthproject/berth/internal/runtime"
)

// howEngine is how a job ended whose container engine went away while it ran (r.engineLost
// says what was found when it answered again, or that it never did).
const howEngine = "engine"

// errEngineGoingAway: the job's container was killed and its engine stopped answering soon
// after; an engine shutting down stops its containers before it stops answering.
var errEngineGoingAway = fmt.Errorf("the container was killed and then the engine stopped answering: %w", runtime.ErrUnavailable)

// shutdownProbe is how long after a kill that berth did not ask for the engine is watched for
// going away. An engine shutting down kills the containers that outlive their stop timeout all
// at once, then exits.
const shutdownProbe = 5 * time.Second

// engineGoingAway reports whether a container killed by a signal (exit code above 128, not
// out of memory) was killed by its engine shutting down: the engine stops answering within
// shutdownProbe. A job killed by anything else reports its exit that much later.
func (r *Run) engineGoingAway(ctx context.Context, exit runtime.Exit) bool {
	if exit.Code <= 128 || exit.OOMKilled {
		return false
	}
	deadline := time.Now().Add(shutdownProbe)
	for time.Now().Before(deadline) {
		if _, err := r.m.rt.List(ctx, map[string]string{runtime.LabelJob: r.j.ID}); errors.Is(err, runtime.ErrUnavailable) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(200 * time.Millisecond):
		}
	}
	return false
}

// waitThroughRestart follows the job's container after the engine stopped answering (cause).
// It asks the engine again, backing off, for up to Config.EngineRetry, then:
//   - the container still runs (an engine that keeps containers across its restarts): it is
//     waited for as usual;
//   - it ended with exit 0: it finished on its own, and that result stands;
//   - it is gone, or the engine stopped it: r.engineLost says the engine restarted;
//   - the engine never answered: r.engineLost says so, and the next start of berth removes
//     the container (reconcile).
//
// ctx ending (cancel, shutdown, the job's timeout) returns its error, as a Wait would.
func (r *Run) waitThroughRestart(ctx context.Context, id runtime.TaskID, cause error) (runtime.Exit, error) {
	m := r.m
	bound := m.cfg.EngineRetry
	if bound <= 0 {
		bound = DefaultConfig("").EngineRetry
	}
	m.log.Warn("the container engine stopped answering while a job ran", "job", r.j.ID, "err", cause)
	fmt.Fprintf(r.system, "the container engine stopped answering; waiting up to %s for it\n", bound)
	deadline := time.Now().Add(bound)
	backoff := 250 * time.Millisecond
	lastErr := cause
	for {
		exit, err, done := r.afterEngineAnswers(ctx, id)
		if done {
			return exit, err
		}
		if err != nil {
			lastErr = err
		}
		if time.Now().After(deadline) {
			r.engineLost = fmt.Sprintf("the container engine did not answer for %s while the job ran (%v); its container is removed when berth next starts", bound, lastErr)
			return runtime.Exit{Code: -1}, nil
		}
		select {
		case <-ctx.Done():
			return runtime.Exit{}, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// afterEngineAnswers looks for the job's container once. done is false while the engine does
// not answer (err then says why).
func (r *Run) afterEngineAnswers(ctx context.Context, id runtime.TaskID) (exit runtime.Exit, err error, done bool) {
	m := r.m
	tasks, err := m.rt.List(ctx, map[string]string{runtime.LabelJob: r.j.ID})
	if err != nil {
		if ctx.Err() != nil {
			return runtime.Exit{}, ctx.Err(), true
		}
		return runtime.Exit{}, err, false
	}
	var task *runtime.TaskStatus
	for i := range tasks {
		if tasks[i].ID == id {
			task = &tasks[i]
		}
	}
	if task == nil {
		r.engineLost = "the container engine restarted while the job ran, and the job's container is gone"
		return runtime.Exit{Code: -1}, nil, true
	}
	if task.Running {
		fmt.Fprintln(r.system, "the container engine answers again and the container still runs")
	}
	exit, err = m.rt.Wait(ctx, id)
	switch {
	case errors.Is(err, runtime.ErrUnavailable) && ctx.Err() == nil:
		return exit, err, false // away again
	case errors.Is(err, runtime.ErrNotFound):
		r.engineLost = "the container engine restarted while the job ran, and the job's container is gone"
		return runtime.Exit{Code: -1}, nil, true
	case err != nil:
		return exit, err, true
	case task.Running || (exit.Code == 0 && !exit.OOMKilled):
		return exit, nil, true // it ran on, or had finished on its own
	}
	r.engineLost = fmt.Sprintf("the container engine restarted while the job ran, and stopped the job's container (exit code %d)", exit.Code)
	return exit, nil, true
}
