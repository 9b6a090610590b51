package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/store"
)

// Run is one job going through its executor on a worker: the handle through which an executor
// uses what the core owns (the job record and its state, the output and its redaction, the
// container's start, wait and disk watch, the failure classification, the work folder).
// Not safe for concurrent use: it belongs to the worker running the job.
type Run struct {
	m       *Manager
	j       Job
	row     store.JobRow
	out     *logBuf
	system  *streamWriter
	redact  *strings.Replacer
	task    runtime.TaskID
	workDir string
	// limits are the job's limits as its spec sets them (SetLimits).
	limits spec.Limits
	// startFailed: the container may exist without an ID (cleanup looks it up by label).
	startFailed bool
	// secrets are the values the job's output and messages show as [hidden].
	secrets []string
	// token is the caller's token, kept in memory only (Admission.Token).
	token string
	// diskBase is what the job's folder held before its first container (diskwatch.go).
	diskBase    int64
	diskBaseSet bool
	// diskMsg says how the job passed its /data cap (how == "disk_limit").
	diskMsg string
	// engineLost says how the container engine went away under the running job ("": it did not).
	engineLost string

	// saveMu orders Save against a cancel from another goroutine (markCancelling), which
	// only sets cancelling and writes the store under it.
	saveMu sync.Mutex
	// cancelling: a cancel was asked for; until the job's end is stored (final) it is stored
	// as cancelling, whatever stage it is in.
	cancelling bool
	// final: the job's end is being stored (storeFinal); savedState is the last state stored
	// before it, which an end decided but not yet stored does not replace (cancel.go).
	final      bool
	savedState State
}

// runJob claims a queued job and takes it to a terminal state. Every transition is stored
// before it takes effect.
func (m *Manager) runJob(id string) {
	ctx := m.ctx
	ok, err := m.st.TransitionJob(ctx, id, []string{string(StateQueued)}, string(StatePreparing), "", "", nil)
	if err != nil {
		m.log.Error("claim job", "job", id, "err", err)
		return
	}
	if !ok {
		return // cancelled while queued, or claimed elsewhere
	}
	row, err := m.st.GetJob(ctx, id)
	if err != nil {
		m.log.Error("load job", "job", id, "err", err)
		return
	}
	r := &Run{m: m, j: fromRow(row), row: row}
	// The block's secret env values are stored sealed; only the run sees them opened.
	opened, openErr := m.st.OpenBlockSecrets(row.Block)
	if openErr == nil {
		row.Block = opened
		r.j, r.row = fromRow(row), row
	}
	m.mu.Lock()
	m.runs[id] = r
	lb := m.logs[id]
	if lb == nil {
		lb = newLogBuf(m.cfg.LogCap)
		m.logs[id] = lb
	}
	jctx, cancel := context.WithCancelCause(m.ctx)
	m.active[id] = cancel
	m.mu.Unlock()
	defer func() {
		cancel(nil)
		m.mu.Lock()
		delete(m.active, id)
		delete(m.runs, id)
		m.mu.Unlock()
		m.finished(id)
	}()
	r.out = lb
	m.mu.Lock()
	r.token = m.tokens[id]
	m.mu.Unlock()
	if r.token != "" {
		r.secrets = append(r.secrets, r.token)
	}
	r.redact = redactor(r.secrets)
	r.system = newStreamWriter("system", lb, r.redact)
	now := time.Now().UTC()
	r.j.State, r.j.StartedAt = StatePreparing, &now
	r.Save()
	ex := m.cfg.Executors[r.j.Kind]
	if openErr != nil {
		ex = unopened{openErr}
	}
	r.execute(jctx, ex)
}

// unopened is the executor of a job whose secret env values cannot be opened (another data
// dir's key): the job fails and nothing runs.
type unopened struct{ err error }

func (u unopened) Admit(context.Context, Config, Submission) (Admission, error) {
	return Admission{}, u.err
}

func (u unopened) Execute(ctx context.Context, r *Run) {
	r.Fail(ReasonInternal, fmt.Sprintf("the job's secret values cannot be opened: %v", u.err))
}

// Job is the job's record; the executor fills in what it learns (Image, OutputDir, …) and the
// core stores it with every transition (Save).
func (r *Run) Job() *Job { return &r.j }

// Row is the job as it was stored at submission (Admission.StoredBlock, Files, BaseDir).
func (r *Run) Row() store.JobRow { return r.row }

// Config is the manager's configuration: the admin policy the job is held to.
func (r *Run) Config() Config { return r.m.cfg }

// Store is the manager's store.
func (r *Run) Store() *store.Store { return r.m.st }

// Log is the manager's logger.
func (r *Run) Log() *slog.Logger { return r.m.log }

// Token is the caller's token given with the submission (Admission.Token), or "".
func (r *Run) Token() string { return r.token }

// System is berth's own lines in the job's output.
func (r *Run) System() io.Writer { return r.system }

// Output is the job's output so far.
func (r *Run) Output() []LogChunk {
	chunks, _ := r.out.snapshot()
	return chunks
}

// JobDir is the job's folder on the host (its work folder, kept outputs and output log).
func (r *Run) JobDir() string { return r.m.jobDir(r.j.ID) }

// WorkDir is the job's work folder (created by the executor), which the core measures for the
// /data cap and removes when the job ends.
func (r *Run) WorkDir() string {
	r.workDir = filepath.Join(r.m.jobDir(r.j.ID), "work")
	return r.workDir
}

// SetLimits sets the job's limits as its spec asks for them (unset ones take the policy's
// defaults): the timeout, the /data cap and the memory named when the job ends.
func (r *Run) SetLimits(l spec.Limits) { r.limits = l }

// EndTask removes the job's container and work folder, for an executor that runs another
// container of the job after it (the next configuration row).
func (r *Run) EndTask() {
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if r.task != "" {
		if err := r.m.rt.Remove(cctx, r.task); err != nil {
			r.m.log.Error("remove job container", "job", r.j.ID, "err", err)
		}
		r.task = ""
	}
	if r.workDir != "" {
		os.RemoveAll(r.workDir)
	}
}

// execute hands the job to its kind's executor, then cleans up: the job's container and work
// folder go, and the job ends (failed/internal when the executor left it without an end).
// A failure its retry policy names runs the executor again, after a backoff (retry).
func (r *Run) execute(ctx context.Context, ex Executor) {
	defer func() {
		r.cleanup(ctx)
		r.system.Flush()
		if !r.j.State.Terminal() {
			r.End(StateFailed, ReasonInternal, "the pipeline ended without a result", nil)
		}
		r.endAttempt()
		r.storeFinal()
	}()
	if ex == nil {
		r.Fail(ReasonInternal, fmt.Sprintf("this berth runs no %s jobs", r.j.Kind))
		return
	}
	policy := r.j.RetryPolicy()
	for {
		r.j.Attempts = append(r.j.Attempts, Attempt{Number: len(r.j.Attempts) + 1, State: StatePreparing, StartedAt: time.Now().UTC()})
		ex.Execute(ctx, r)
		if !r.retry(ctx, policy) {
			return
		}
	}
}

// cleanup removes the job's container and work folder. Cleanup runs on its own context so a
// cancelled or timed-out job still removes them.
func (r *Run) cleanup(ctx context.Context) {
	m := r.m
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	r.begin("cleanup")
	t0 := time.Now()
	if r.task != "" {
		if err := m.rt.Remove(cctx, r.task); err != nil {
			m.log.Error("remove job container", "job", r.j.ID, "err", err)
		}
		r.task = ""
	} else if r.j.State == StateRunning || r.startFailed {
		// The start failed or was interrupted: remove whatever the engine made anyway.
		if tasks, err := m.rt.List(cctx, map[string]string{runtime.LabelJob: r.j.ID, runtime.LabelInstance: m.cfg.Instance}); err == nil {
			for _, t := range tasks {
				m.rt.Remove(cctx, t.ID)
			}
		}
	}
	if r.workDir != "" {
		os.RemoveAll(r.workDir)
	}
	r.Timing("cleanup", t0, "")
}

// Attempt is the number of the job's current attempt (1 for its first run).
func (r *Run) Attempt() int { return max(1, len(r.j.Attempts)) }

// endAttempt records how the current attempt ended, once.
func (r *Run) endAttempt() {
	if len(r.j.Attempts) == 0 {
		return
	}
	a := &r.j.Attempts[len(r.j.Attempts)-1]
	if a.FinishedAt != nil {
		return
	}
	now := time.Now().UTC()
	a.State, a.Reason, a.Message, a.ExitCode, a.FinishedAt = r.j.State, r.j.Reason, r.j.Message, r.j.ExitCode, &now
}

// retry reports whether the job runs again: it failed for a reason its policy retries and
// has retries left. It then cleans up the attempt, waits the backoff (the job stays
// preparing, so it can be cancelled) and resets the job for the next attempt.
func (r *Run) retry(ctx context.Context, p *spec.Retry) bool {
	n := len(r.j.Attempts)
	if r.j.State != StateFailed || !p.Retries(string(r.j.Reason)) || n > p.Max || ctx.Err() != nil {
		return false
	}
	r.cleanup(ctx)
	r.endAttempt()
	wait := p.Wait(n)
	msg := fmt.Sprintf("attempt %d of %d failed (%s): %s; attempt %d starts in %s", n, p.Max+1, r.j.Reason, r.j.Message, n+1, wait)
	fmt.Fprintln(r.system, msg)
	r.j.State, r.j.Reason, r.j.Message = StatePreparing, ReasonNone, msg
	r.Save()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		if context.Cause(ctx) == errCancelled {
			r.End(StateCancelled, ReasonCancelled, "cancelled while waiting to retry", nil)
		} else {
			r.End(StateFailed, ReasonInternal, "berth shut down while waiting to retry", nil)
		}
		return false
	}
	r.j.Message, r.j.ExitCode, r.j.ContainerID = "", nil, ""
	r.startFailed, r.diskBaseSet, r.diskBase, r.diskMsg, r.engineLost = false, false, 0, "", ""
	r.Save()
	return true
}

// EnsureImage prepares the job's image (DESIGN.md "Images"), records it on the job and times
// it. ok is false when the job ended (it could not be prepared, or the job was interrupted).
func (r *Run) EnsureImage(ctx context.Context, req image.Request) (res image.Result, ok bool) {
	t0 := time.Now()
	r.begin("image")
	res, err := r.m.images.Ensure(ctx, req, r.system)
	if err != nil {
		r.Timing("image", t0, "failed")
		if r.Interrupted(ctx) {
			return res, false
		}
		var ie *image.InstallError
		if errors.As(err, &ie) {
			// A package the block asked for could not be installed: the block's to fix.
			r.j.SpecHash = ie.Hash
			r.Fail(ReasonUserError, ie.Error())
			return res, false
		}
		r.Fail(ReasonInternal, fmt.Sprintf("prepare image: %v", err))
		return res, false
	}
	detail := "cache hit"
	if !res.CacheHit {
		detail = "built"
	}
	r.j.Image, r.j.SpecHash, r.j.ImageCacheHit = res.Ref, res.Hash, res.CacheHit
	r.Timing("image", t0, detail)
	fmt.Fprintf(r.system, "image %s (%s)\n", res.Ref, detail)
	return res, true
}

// StartAndWait starts the task, follows its output and waits for it to end, storing the
// running and finishing states. started is false when the job already ended (start failed).
func (r *Run) StartAndWait(ctx context.Context, task runtime.TaskSpec) (runtime.Exit, string, bool) {
	m := r.m
	// The running state is stored before the container exists, so a crash in between is
	// found by reconcile (running, container gone → failed/internal).
	task.Name = containerName(m.cfg.Instance, r.j.ID)
	if task.Env == nil {
		task.Env = map[string]string{}
	}
	task.Env["BERTH_ATTEMPT"] = strconv.Itoa(r.Attempt())
	r.j.State = StateRunning
	r.begin("start") // stores the state
	r.measureDiskBase()
	t0 := time.Now()
	id, err := m.rt.Start(ctx, task)
	r.task = id
	if err != nil {
		r.startFailed = true
		r.Timing("start", t0, "failed")
		if !r.Interrupted(ctx) {
			r.Fail(ReasonInternal, fmt.Sprintf("start container: %v", err))
		}
		return runtime.Exit{}, "", false
	}
	r.j.ContainerID = string(id)
	if n := len(r.j.Attempts); n > 0 {
		r.j.Attempts[n-1].State = StateRunning
	}
	r.Timing("start", t0, "")

	// Run: stream output while waiting for the exit, under the job's timeout.
	r.begin("run")
	t0 = time.Now()
	lim, _ := m.cfg.EffectiveLimits(r.limits)
	dw := r.watchDisk(id, int64(lim.Disk))
	exit, how := r.wait(ctx, id)
	if dw.stop() {
		how, r.diskMsg = "disk_limit", dw.message()
	}
	r.Timing("run", t0, how)
	if how == howEngine {
		r.Fail(ReasonInternal, r.engineLost)
		return exit, how, false
	}

	r.j.State = StateFinishing
	code := exit.Code
	r.j.ExitCode = &code
	r.Save()
	return exit, how, true
}

// Classify ends the job from how its container ended. failed, when set, is the message of a
// non-zero exit the core does not name itself (berth's own stops, the disk cap, the timeout,
// out of memory, a signal from outside); nil: ExitMessage.
func (r *Run) Classify(exit runtime.Exit, how string, failed func(code int) string) {
	m := r.m
	code := exit.Code
	lim, _ := m.cfg.EffectiveLimits(r.limits)
	if failed == nil {
		failed = ExitMessage
	}
	switch {
	case how == "cancelled":
		r.End(StateCancelled, ReasonCancelled, "cancelled while running", &code)
	case how == "shutdown":
		r.End(StateFailed, ReasonInternal, "berth shut down while the job ran", &code)
	case how == "disk_limit":
		r.End(StateFailed, ReasonDiskLimit, r.diskMsg, &code)
	case how == "timeout":
		r.End(StateFailed, ReasonTimeout, fmt.Sprintf("timed out after %s", time.Duration(lim.Timeout)), &code)
	case exit.OOMKilled:
		// Only the engine's word: an exit 137 alone is any SIGKILL.
		r.End(StateFailed, ReasonOOM, fmt.Sprintf("out of memory (limit %s)", humanBytes(int64(lim.Memory))), &code)
	case exitSignal(code) != 0 && !selfInflicted(exitSignal(code)):
		// berth's own stops (timeout, cancel, shutdown) are named above; this one came from
		// outside (docker kill, another program on the host).
		sig := exitSignal(code)
		r.End(StateFailed, ReasonKilled, fmt.Sprintf("killed by signal %d (%s) — not by berth, and not for memory (the engine reports no OOM kill)", sig, signalName(sig)), &code)
	case code == 0:
		r.End(StateSucceeded, ReasonNone, "", &code)
	case code == 1:
		r.End(StateFailed, ReasonUserError, failed(code), &code)
	default:
		r.End(StateFailed, ReasonAppError, failed(code), &code)
	}
}

// ExitMessage says how a script exited with a non-zero code: the code, or the signal it died of.
func ExitMessage(code int) string {
	if sig := exitSignal(code); sig != 0 {
		return fmt.Sprintf("the script died of signal %d (%s), exit code %d", sig, signalName(sig), code)
	}
	return fmt.Sprintf("the script exited with code %d", code)
}

// wait follows the container's output and waits for it to exit, stopping it on timeout or
// cancel. how is "" for a normal exit, else timeout | cancelled | shutdown | engine (the
// container engine went away under the job: r.engineLost says how).
func (r *Run) wait(ctx context.Context, id runtime.TaskID) (runtime.Exit, string) {
	m := r.m
	stdout := newStreamWriter("stdout", r.out, r.redact)
	stderr := newStreamWriter("stderr", r.out, r.redact)
	// The last bytes the follower delivered, to compare with the real end once it exits.
	keptOut, keptErr := newTailKeeper(stdout, logTailBytes), newTailKeeper(stderr, logTailBytes)
	logCtx, stopLogs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLogs()
	var logsWG sync.WaitGroup
	logsWG.Add(1)
	go func() {
		defer logsWG.Done()
		if err := m.rt.Logs(logCtx, id, true, keptOut, keptErr); err != nil && logCtx.Err() == nil {
			m.log.Warn("follow job output", "job", r.j.ID, "err", err)
		}
	}()
	// Save the output now and then so a crash loses little of it.
	saveDone := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-saveDone:
				return
			case <-t.C:
				if _, dirty := r.out.snapshot(); dirty {
					r.out.save(m.logPath(r.j.ID))
				}
			}
		}
	}()
	defer close(saveDone)

	lim, _ := m.cfg.EffectiveLimits(r.limits)
	timeout := time.Duration(lim.Timeout)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	exit, err := m.rt.Wait(wctx, id)
	if err == nil && r.engineGoingAway(wctx, exit) {
		err = errEngineGoingAway
	}
	if errors.Is(err, runtime.ErrUnavailable) && wctx.Err() == nil {
		exit, err = r.waitThroughRestart(wctx, id, err)
	}
	how := ""
	if r.engineLost != "" {
		how = howEngine
	}
	if err != nil {
		switch {
		case context.Cause(ctx) == errCancelled:
			how = "cancelled"
		case context.Cause(ctx) == errShutdown:
			how = "shutdown"
		case wctx.Err() != nil:
			how = "timeout"
		}
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.StopGrace+30*time.Second)
		defer ccancel()
		if how != "" {
			fmt.Fprintf(r.system, "%s: stopping the container (grace %s)\n", how, m.cfg.StopGrace)
			if err := m.rt.Stop(cctx, id, m.cfg.StopGrace); err != nil {
				m.log.Warn("stop job container", "job", r.j.ID, "err", err)
			}
		}
		exit, err = m.rt.Wait(cctx, id)
		if err != nil {
			m.log.Error("wait for job container", "job", r.j.ID, "err", err)
			exit.Code = -1
			if how == "" {
				how = "shutdown"
			}
		}
	}
	// The engine ends the follow stream once the container has exited and its output was
	// read, which after a lot of output takes a while: let it drain, within a bound.
	drained := make(chan struct{})
	go func() { logsWG.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(logDrainBound):
		fmt.Fprintf(r.system, "the output was still being read %s after the container exited; reading its end\n", logDrainBound)
		stopLogs()
		<-drained
	}
	// A follower may also stop early (the engine's follower can lose its place when the log
	// is rotated under it): read the end again and add what it did not deliver, so the kept
	// output always ends with the job's last line.
	if lt, ok := m.rt.(runtime.LogTailer); ok {
		tailOut, tailErr := newTailKeeper(nil, logTailBytes), newTailKeeper(nil, logTailBytes)
		tctx, tcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := lt.LogsTail(tctx, id, logTailLines, tailOut, tailErr)
		tcancel()
		if err != nil {
			m.log.Warn("read the end of the job output", "job", r.j.ID, "err", err)
		} else {
			for _, s := range []struct {
				name       string
				kept, tail *tailKeeper
				w          *streamWriter
			}{{"stdout", keptOut, tailOut, stdout}, {"stderr", keptErr, tailErr, stderr}} {
				rest, gap := missingEnd(s.kept, s.tail)
				if len(rest) > 0 {
					m.log.Info("the output follower missed the end of the job output; added it from its tail",
						"job", r.j.ID, "stream", s.name, "bytes", len(rest), "gap", gap)
				}
				if gap {
					s.w.Flush()
					fmt.Fprintf(r.system, "part of the %s output could not be read; its last lines follow\n", s.name)
				}
				s.w.Write(rest)
			}
		}
	}
	stdout.Flush()
	stderr.Flush()
	return exit, how
}

const (
	// logDrainBound is how long the output may still be read after the container exited.
	logDrainBound = 2 * time.Minute
	// logTailLines and logTailBytes bound the end of the output read again after the exit,
	// and what is kept of each stream to compare it with.
	logTailLines = 1000
	logTailBytes = 256 << 10
)

// Interrupted ends the job if it was cancelled or berth is shutting down, and reports it.
func (r *Run) Interrupted(ctx context.Context) bool {
	switch context.Cause(ctx) {
	case errCancelled:
		r.End(StateCancelled, ReasonCancelled, "cancelled before the script started", nil)
		return true
	case errShutdown:
		r.End(StateFailed, ReasonInternal, "berth shut down before the script started", nil)
		return true
	}
	return false
}

// Hide adds values to what the job's output and messages show as [hidden], from now on.
func (r *Run) Hide(values ...string) {
	if len(values) == 0 {
		return
	}
	r.secrets = append(r.secrets, values...)
	r.redact = redactor(r.secrets)
	r.system.setRedact(r.redact)
}

func (r *Run) Fail(reason Reason, msg string) { r.End(StateFailed, reason, msg, nil) }

func (r *Run) End(state State, reason Reason, msg string, code *int) {
	r.j.State, r.j.Reason = state, reason
	if r.redact != nil {
		msg = r.redact.Replace(msg)
	}
	r.j.Message = msg
	if code != nil {
		r.j.ExitCode = code
	}
	line := string(state)
	if reason != ReasonNone {
		line += " (" + string(reason) + ")"
	}
	if msg != "" {
		line += ": " + msg
	}
	fmt.Fprintln(r.system, line)
}

// storeFinal writes the terminal state.
func (r *Run) storeFinal() {
	now := time.Now().UTC()
	r.j.FinishedAt = &now
	r.saveMu.Lock()
	r.final = true
	r.saveMu.Unlock()
	r.Save()
}

// Save writes the job's current state; the store is the truth, so a failure is logged loudly.
// Until storeFinal, an end already decided is not stored (the container may still be there)
// and a cancelled job is stored as cancelling (savedRow).
func (r *Run) Save() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	if err := r.m.st.UpdateJob(ctx, r.savedRow()); err != nil {
		r.m.log.Error("store job state", "job", r.j.ID, "state", r.j.State, "err", err)
	}
}

// Timing ends a stage begun with begin, or records one that was not.
func (r *Run) Timing(stage string, t0 time.Time, detail string) {
	d := time.Since(t0)
	st := StageTiming{Stage: stage, StartedAt: t0.UTC(), DurationMS: float64(d.Microseconds()) / 1000, Detail: detail, Duration: d}
	if n := len(r.j.Timings); n > 0 && r.j.Timings[n-1].InProgress && r.j.Timings[n-1].Stage == stage {
		r.j.Timings[n-1] = st
		return
	}
	r.j.Timings = append(r.j.Timings, st)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	default:
		return fmt.Sprintf("%dB", n)
	}
}

var _ io.Writer = (*streamWriter)(nil)

// RunAux runs one more container of the job (a processor) to its end and returns its exit
// code; its output joins the job's. It runs under limits' timeout and is held to the job's
// /data cap, or to limits' own when that is smaller. A container killed past the cap returns a
// *DiskLimitError.
func (r *Run) RunAux(ctx context.Context, t runtime.TaskSpec, limits spec.Limits) (int, error) {
	m := r.m
	lim, err := m.cfg.EffectiveLimits(limits)
	if err != nil {
		return 0, err
	}
	r.measureDiskBase()
	id, err := m.rt.Start(ctx, t)
	if err != nil {
		if id != "" {
			m.rt.Remove(context.WithoutCancel(ctx), id)
		}
		return 0, err
	}
	defer m.rt.Remove(context.WithoutCancel(ctx), id)
	stdout := newStreamWriter("stdout", r.out, r.redact)
	stderr := newStreamWriter("stderr", r.out, r.redact)
	wctx, cancel := context.WithTimeout(ctx, time.Duration(lim.Timeout))
	defer cancel()
	// The job's /data cap holds across its processors; a processor may ask for less.
	diskCap := int64(lim.Disk)
	if jl, err := m.cfg.EffectiveLimits(r.limits); err == nil && (diskCap <= 0 || (jl.Disk > 0 && int64(jl.Disk) < diskCap)) {
		diskCap = int64(jl.Disk)
	}
	dw := r.watchDisk(id, diskCap)
	ex, err := m.rt.Wait(wctx, id)
	overCap := dw.stop()
	m.rt.Logs(context.WithoutCancel(ctx), id, false, stdout, stderr)
	stdout.Flush()
	stderr.Flush()
	if overCap {
		return 0, &DiskLimitError{Message: dw.message()}
	}
	if err != nil {
		return 0, fmt.Errorf("wait: %w", err)
	}
	return ex.Code, nil
}
