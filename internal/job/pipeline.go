package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthproject/berth/internal/datadir"
	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/store"
)

// run is one job going through the pipeline on a worker.
type run struct {
	m       *Manager
	j       Job
	row     store.JobRow
	files   map[string][]byte
	out     *logBuf
	system  *streamWriter
	redact  *strings.Replacer
	mounts  []runtime.Mount
	task    runtime.TaskID
	workDir string
	// startFailed: the container may exist without an ID (cleanup looks it up by label).
	startFailed bool
	// stateVersion is the version of the configuration's state a component run read.
	stateVersion int
	// state is the stored state the component reads; newState what it wrote (hasNewState
	// false: no out/state.json, which clears the state).
	state       json.RawMessage
	newState    json.RawMessage
	hasNewState bool
	// cfgRow is the configuration row running now (nil: the configuration itself); rowCfg the
	// configuration it runs with.
	cfgRow *spec.ConfigRow
	rowCfg spec.ComponentConfig
	// secrets are the values the job's output and messages show as [hidden].
	secrets []string
	// token is the caller's token for a component that opted in (forward_token).
	token string
	// diskBase is what the job's folder held before its first container (diskwatch.go).
	diskBase    int64
	diskBaseSet bool
	// diskMsg says how the job passed its /data cap (how == "disk_limit").
	diskMsg string
	// engineLost says how the container engine went away under the running job ("": it did not).
	engineLost string
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
	r := &run{m: m, j: fromRow(row), row: row}
	if err := json.Unmarshal([]byte(row.Files), &r.files); err != nil {
		r.files = map[string][]byte{}
	}
	m.mu.Lock()
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
		m.mu.Unlock()
		m.finished(id)
	}()
	r.out = lb
	secrets := r.j.Block.Secrets()
	m.mu.Lock()
	r.token = m.tokens[id]
	m.mu.Unlock()
	if r.token != "" {
		secrets = append(secrets, r.token)
	}
	r.secrets = secrets
	r.redact = redactor(secrets)
	r.system = newStreamWriter("system", lb, r.redact)
	now := time.Now().UTC()
	r.j.State, r.j.StartedAt = StatePreparing, &now
	r.save()
	r.execute(jctx)
}

// execute is the pipeline: image → workspace → start → run → outputs → cleanup.
func (r *run) execute(ctx context.Context) {
	m := r.m
	blk := r.j.Block
	cleanupCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	}
	defer func() {
		// Cleanup runs on its own context so a cancelled or timed-out job still removes its
		// container and workspace.
		cctx, cancel := cleanupCtx()
		defer cancel()
		t0 := time.Now()
		if r.task != "" {
			if err := m.rt.Remove(cctx, r.task); err != nil {
				m.log.Error("remove job container", "job", r.j.ID, "err", err)
			}
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
		r.timing("cleanup", t0, "")
		r.system.Flush()
		if !r.j.State.Terminal() {
			r.end(StateFailed, ReasonInternal, "the pipeline ended without a result", nil)
		}
		r.storeFinal()
	}()

	// Image.
	t0 := time.Now()
	if r.j.Kind == KindComponent {
		fmt.Fprintf(r.system, "resolving image %s\n", blk.Image)
	} else {
		fmt.Fprintf(r.system, "resolving image for %s\n", blk.Language)
	}
	res, err := m.images.Ensure(ctx, image.Request{
		Language: blk.Language, BaseImage: blk.Image, Dependencies: blk.Dependencies,
		SystemPackages: blk.SystemPackages, InstallAPILibrary: blk.InstallAPILibrary,
	}, r.system)
	if err != nil {
		r.timing("image", t0, "failed")
		if r.interrupted(ctx) {
			return
		}
		r.fail(ReasonInternal, fmt.Sprintf("prepare image: %v", err))
		return
	}
	detail := "cache hit"
	if !res.CacheHit {
		detail = "built"
	}
	r.j.Image, r.j.SpecHash, r.j.ImageCacheHit = res.Ref, res.Hash, res.CacheHit
	r.timing("image", t0, detail)
	fmt.Fprintf(r.system, "image %s (%s)\n", res.Ref, detail)

	if r.j.Kind == KindComponent {
		r.executeComponent(ctx, res.Ref)
		return
	}

	// Workspace.
	t0 = time.Now()
	codeDir, dataDir, err := r.workspace()
	if err != nil {
		r.timing("workspace", t0, "failed")
		var pe *PolicyError
		if errors.As(err, &pe) {
			r.fail(ReasonUserError, err.Error())
		} else {
			r.fail(ReasonInternal, fmt.Sprintf("prepare workspace: %v", err))
		}
		return
	}
	r.timing("workspace", t0, "")
	if r.interrupted(ctx) {
		return
	}

	task := TaskFor(m.cfg, blk, res.Ref, r.j.ID, codeDir, dataDir)
	task.Mounts = append(task.Mounts, r.mounts...)
	exit, how, started := r.startAndWait(ctx, task)
	if !started {
		return
	}
	t0 = time.Now()
	// The outputs are kept (for `--out`) only when they hold nothing but real folders and
	// regular files: a link the block left would be followed by whoever reads them.
	if err := datadir.Check(dataDir, "out", m.cfg.OutputLimits); err != nil {
		r.timing("outputs", t0, "refused")
		var de *datadir.Error
		if errors.As(err, &de) && how == "" && exit.Code == 0 && !exit.OOMKilled {
			code := exit.Code
			r.end(StateFailed, ReasonUserError, "outputs: "+de.Error()+" (the outputs were not kept)", &code)
			return
		}
		fmt.Fprintf(r.system, "outputs not kept: %v\n", err)
		r.classify(exit, how)
		return
	}
	outDir := filepath.Join(m.jobDir(r.j.ID), "out")
	if how == "disk_limit" {
		// Nothing of a job past its cap is kept: cleanup gives the host its space back.
	} else if err := os.Rename(filepath.Join(dataDir, "out"), outDir); err == nil {
		r.j.OutputDir = outDir
	} else {
		m.log.Warn("keep job outputs", "job", r.j.ID, "err", err)
	}
	r.timing("outputs", t0, "")

	r.classify(exit, how)
}

// startAndWait starts the task, follows its output and waits for it to end, storing the
// running and finishing states. started is false when the job already ended (start failed).
func (r *run) startAndWait(ctx context.Context, task runtime.TaskSpec) (runtime.Exit, string, bool) {
	m := r.m
	// The running state is stored before the container exists, so a crash in between is
	// found by reconcile (running, container gone → failed/internal).
	task.Name = containerName(m.cfg.Instance, r.j.ID)
	r.j.State = StateRunning
	r.save()
	r.measureDiskBase()
	t0 := time.Now()
	id, err := m.rt.Start(ctx, task)
	r.task = id
	if err != nil {
		r.startFailed = true
		r.timing("start", t0, "failed")
		if !r.interrupted(ctx) {
			r.fail(ReasonInternal, fmt.Sprintf("start container: %v", err))
		}
		return runtime.Exit{}, "", false
	}
	r.j.ContainerID = string(id)
	r.timing("start", t0, "")

	// Run: stream output while waiting for the exit, under the job's timeout.
	t0 = time.Now()
	lim, _ := m.cfg.effectiveLimits(r.j.Block.Limits)
	dw := r.watchDisk(id, int64(lim.Disk))
	exit, how := r.wait(ctx, id)
	if dw.stop() {
		how, r.diskMsg = "disk_limit", dw.message()
	}
	r.timing("run", t0, how)
	if how == howEngine {
		r.fail(ReasonInternal, r.engineLost)
		return exit, how, false
	}

	r.j.State = StateFinishing
	code := exit.Code
	r.j.ExitCode = &code
	r.save()
	return exit, how, true
}

// classify ends the job from how its container ended.
func (r *run) classify(exit runtime.Exit, how string) {
	m := r.m
	blk := r.j.Block
	code := exit.Code
	comp := r.j.Kind == KindComponent
	switch {
	case how == "cancelled":
		r.end(StateCancelled, ReasonCancelled, "cancelled while running", &code)
	case how == "shutdown":
		r.end(StateFailed, ReasonInternal, "berth shut down while the job ran", &code)
	case how == "disk_limit":
		r.end(StateFailed, ReasonDiskLimit, r.diskMsg, &code)
	case how == "timeout":
		r.end(StateFailed, ReasonTimeout, fmt.Sprintf("timed out after %s", m.cfg.timeoutOf(blk)), &code)
	case exit.OOMKilled:
		// Only the engine's word: an exit 137 alone is any SIGKILL.
		lim, _ := m.cfg.effectiveLimits(blk.Limits)
		r.end(StateFailed, ReasonOOM, fmt.Sprintf("out of memory (limit %s)", humanBytes(int64(lim.Memory))), &code)
	case exitSignal(code) != 0 && !selfInflicted(exitSignal(code)):
		// berth's own stops (timeout, cancel, shutdown) are named above; this one came from
		// outside (docker kill, another program on the host).
		sig := exitSignal(code)
		r.end(StateFailed, ReasonKilled, fmt.Sprintf("killed by signal %d (%s) — not by berth, and not for memory (the engine reports no OOM kill)", sig, signalName(sig)), &code)
	case code == 0:
		r.end(StateSucceeded, ReasonNone, "", &code)
	case code == 1 && comp:
		r.end(StateFailed, ReasonUserError, r.failureMessage(code), &code)
	case code == 1:
		r.end(StateFailed, ReasonUserError, "the script exited with code 1", &code)
	case comp:
		r.end(StateFailed, ReasonAppError, r.failureMessage(code), &code)
	case exitSignal(code) != 0:
		sig := exitSignal(code)
		r.end(StateFailed, ReasonAppError, fmt.Sprintf("the script died of signal %d (%s), exit code %d", sig, signalName(sig), code), &code)
	default:
		r.end(StateFailed, ReasonAppError, fmt.Sprintf("the script exited with code %d", code), &code)
	}
}

// executeComponent runs a component configuration: /data with the mapped inputs and state,
// the image's own command, then the output mapping (all or nothing) and the new state.
func (r *run) executeComponent(ctx context.Context, ref string) {
	if r.j.Component.Component.ForwardToken && r.token == "" {
		r.fail(ReasonInternal, "this component gets the caller's token (forward_token), which berth keeps in memory only: it was lost (berth restarted?); run it again")
		return
	}
	cr := r.j.Component
	if len(cr.Rows) == 0 {
		r.rowCfg = cr.Config
		if exit, how, ended := r.componentOnce(ctx, ref); !ended {
			r.classify(exit, how)
		}
		return
	}
	// Rows run in order, each in a fresh /data and container; the first that fails ends the
	// job (the rows before it keep what they loaded, as on Keboola).
	var exit runtime.Exit
	var how string
	for i := range cr.Rows {
		row := cr.Rows[i]
		r.cfgRow, r.rowCfg = &row, cr.Config.ForRow(row)
		fmt.Fprintf(r.system, "row %s (%d of %d)\n", row.ID, i+1, len(cr.Rows))
		var ended bool
		if exit, how, ended = r.componentOnce(ctx, ref); ended {
			if r.j.Message != "" {
				r.j.Message = fmt.Sprintf("row %s: %s", row.ID, r.j.Message)
			}
			return
		}
		r.endRow()
	}
	r.classify(exit, how)
}

// endRow removes a finished row's container and folder before the next row runs.
func (r *run) endRow() {
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
	r.newState, r.hasNewState = nil, false
}

// componentOnce runs the component once (for the configuration or one row): /data, the
// processors, the container, the output mapping. ended is true when the job reached its end
// (a failure, or a sync action); otherwise it succeeded and exit and how say how it ended.
func (r *run) componentOnce(ctx context.Context, ref string) (exit runtime.Exit, how string, ended bool) {
	t0 := time.Now()
	dataDir, err := r.componentWorkspace(ctx)
	if err != nil {
		r.timing("workspace", t0, "failed")
		var pe *PolicyError
		if errors.As(err, &pe) {
			r.fail(ReasonUserError, err.Error())
		} else if !r.interrupted(ctx) {
			r.fail(ReasonInternal, fmt.Sprintf("prepare /data: %v", err))
		}
		return exit, how, true
	}
	r.timing("workspace", t0, "inputs mapped")
	if r.interrupted(ctx) {
		return exit, how, true
	}
	if err := r.runProcessors(ctx, "before", r.j.Component.Before, dataDir); err != nil {
		if !r.interrupted(ctx) {
			r.processorFailed(err)
		}
		return exit, how, true
	}
	// Only the component itself sees the state: it is written after the before-processors
	// and read back right after the component, before any after-processor (as Keboola does).
	if err := r.writeState(dataDir); err != nil {
		r.fail(ReasonInternal, fmt.Sprintf("prepare /data: %v", err))
		return exit, how, true
	}
	exit, how, started := r.startAndWait(ctx, r.componentTask(ref, dataDir))
	if !started {
		return exit, how, true
	}
	if how == "disk_limit" {
		r.classify(exit, how) // nothing of it is loaded, not even write_always tables
		return exit, how, true
	}
	ok := how == "" && exit.Code == 0 && !exit.OOMKilled
	if ok && r.j.Component.Action == "run" {
		if err := r.takeState(dataDir); err != nil {
			r.mappingFailed(err, exit)
			return exit, how, true
		}
	}
	if ok && len(r.j.Component.After) > 0 {
		if err := r.runProcessors(ctx, "after", r.j.Component.After, dataDir); err != nil {
			if !r.interrupted(ctx) {
				r.processorFailed(err)
			}
			return exit, how, true
		}
	}
	if r.j.Component.Action != "run" {
		// A sync action has no output mapping and no state: its stdout is the answer.
		r.classify(exit, how)
		return exit, how, true
	}
	t0 = time.Now()
	missing, err := r.outputMapping(context.WithoutCancel(ctx), dataDir, ok)
	r.timing("outputs", t0, "")
	switch {
	case err != nil:
		r.mappingFailed(err, exit)
	case missing != "":
		// Keboola's wording; the write_always tables were still loaded.
		code := exit.Code
		r.end(StateFailed, ReasonUserError, missing, &code)
	case how != "" || exit.Code != 0 || exit.OOMKilled:
		r.classify(exit, how)
	default:
		return exit, how, false
	}
	return exit, how, true
}

// mappingFailed ends a component job whose outputs could not be loaded.
func (r *run) mappingFailed(err error, exit runtime.Exit) {
	var de *datadir.Error
	code := exit.Code
	switch {
	case errors.Is(err, store.ErrStateConflict):
		r.end(StateFailed, ReasonUserError, err.Error(), &code)
	case errors.As(err, &de):
		r.end(StateFailed, ReasonUserError, "output mapping: "+de.Error()+" (nothing of this job was loaded)", &code)
	default:
		r.end(StateFailed, ReasonInternal, "output mapping: "+err.Error(), &code)
	}
}

// wait follows the container's output and waits for it to exit, stopping it on timeout or
// cancel. how is "" for a normal exit, else timeout | cancelled | shutdown | engine (the
// container engine went away under the job: r.engineLost says how).
func (r *run) wait(ctx context.Context, id runtime.TaskID) (runtime.Exit, string) {
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

	timeout := m.cfg.timeoutOf(r.j.Block)
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

// workspace writes the job's folders: code (the script files, read-only in the container) and
// data (config.json, in/, out/), owned by the container's user.
func (r *run) workspace() (codeDir, dataDir string, err error) {
	m := r.m
	r.workDir = filepath.Join(m.jobDir(r.j.ID), "work")
	codeDir = filepath.Join(r.workDir, "code")
	dataDir = filepath.Join(r.workDir, "data")
	for _, d := range []string{codeDir, filepath.Join(dataDir, "in"), filepath.Join(dataDir, "out")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", "", err
		}
	}
	for name, data := range r.files {
		p := filepath.Join(codeDir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", "", err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return "", "", err
		}
	}
	params := r.j.Block.Parameters
	if params == nil {
		params = map[string]any{}
	}
	cfg, err := json.MarshalIndent(map[string]any{
		"parameters": params,
		"action":     "run",
		"job":        map[string]any{"id": r.j.ID, "name": r.j.Name},
	}, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(dataDir, "config.json"), cfg, 0o644); err != nil {
		return "", "", err
	}
	if err := chownTree(dataDir, m.cfg.User); err != nil {
		return "", "", err
	}
	// Mounts are checked again: the folder may have changed since the job was submitted.
	r.mounts = nil
	for i, mt := range r.j.Block.Mounts {
		src, err := m.cfg.resolveMount(r.row.BaseDir, i, mt)
		if err != nil {
			return "", "", err
		}
		r.mounts = append(r.mounts, runtime.Mount{Source: src, Target: mt.Target, ReadOnly: mt.ReadOnly()})
	}
	return codeDir, dataDir, nil
}

// chownTree gives the data folder to the container's user. Without the right to chown (berth
// not running as root), it makes the folder writable for everyone instead.
func chownTree(dir, user string) error {
	uidS, gidS, _ := strings.Cut(user, ":")
	uid, err1 := strconv.Atoi(uidS)
	gid, err2 := strconv.Atoi(gidS)
	if err2 != nil {
		gid = uid
	}
	if err1 != nil {
		return os.Chmod(dir, 0o777)
	}
	return filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return nil // chmod would follow it; outputs holding links are refused anyway
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			if fi.IsDir() {
				return os.Chmod(p, 0o777)
			}
			return os.Chmod(p, 0o666)
		}
		return nil
	})
}

// interrupted ends the job if it was cancelled or berth is shutting down, and reports it.
func (r *run) interrupted(ctx context.Context) bool {
	switch context.Cause(ctx) {
	case errCancelled:
		r.end(StateCancelled, ReasonCancelled, "cancelled before the script started", nil)
		return true
	case errShutdown:
		r.end(StateFailed, ReasonInternal, "berth shut down before the script started", nil)
		return true
	}
	return false
}

// hide adds values to what the job's output and messages show as [hidden], from now on.
func (r *run) hide(values ...string) {
	if len(values) == 0 {
		return
	}
	r.secrets = append(r.secrets, values...)
	r.redact = redactor(r.secrets)
	r.system.setRedact(r.redact)
}

func (r *run) fail(reason Reason, msg string) { r.end(StateFailed, reason, msg, nil) }

func (r *run) end(state State, reason Reason, msg string, code *int) {
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
func (r *run) storeFinal() {
	now := time.Now().UTC()
	r.j.FinishedAt = &now
	r.save()
}

// save writes the job's current state; the store is the truth, so a failure is logged loudly.
func (r *run) save() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.m.st.UpdateJob(ctx, toRow(r.j)); err != nil {
		r.m.log.Error("store job state", "job", r.j.ID, "state", r.j.State, "err", err)
	}
}

func (r *run) timing(stage string, t0 time.Time, detail string) {
	d := time.Since(t0)
	r.j.Timings = append(r.j.Timings, StageTiming{
		Stage: stage, StartedAt: t0.UTC(), DurationMS: float64(d.Microseconds()) / 1000, Detail: detail, Duration: d,
	})
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

// processorFailed ends the job for a failed processor, naming it.
func (r *run) processorFailed(err error) {
	var dle *DiskLimitError
	if errors.As(err, &dle) {
		r.end(StateFailed, ReasonDiskLimit, err.Error(), nil)
		return
	}
	var pe *ProcessorError
	if errors.As(err, &pe) {
		code := pe.Code
		reason := ReasonAppError
		if code == 1 {
			reason = ReasonUserError
		}
		r.end(StateFailed, reason, err.Error(), &code)
		return
	}
	var de *datadir.Error
	if errors.As(err, &de) {
		r.fail(ReasonUserError, err.Error()+" (nothing of this job was loaded)")
		return
	}
	r.fail(ReasonInternal, err.Error())
}
