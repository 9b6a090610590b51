package component

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/runtime"
)

// failureMessage is what the user of a failed component sees: for a user error (exit 1) its
// stderr (or its stdout when it wrote nothing to stderr), cut to the first and last 2000 characters; for an application error a generic
// message with an id the operator finds the full output by.
func (r *run) failureMessage(code int) string {
	if code == 1 {
		// As Keboola: the component's stderr; when it wrote none, its stdout.
		chunks := r.Output()
		var errOut, stdOut strings.Builder
		for _, c := range chunks {
			switch c.Stream {
			case "stderr":
				errOut.WriteString(c.Text)
			case "stdout":
				stdOut.WriteString(c.Text)
			}
		}
		msg := strings.TrimSpace(errOut.String())
		if msg == "" {
			msg = strings.TrimSpace(stdOut.String())
		}
		if msg == "" {
			msg = "No error message."
		}
		return cutMiddle(msg, messageCut)
	}
	var b [6]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	r.Log().Error("component application error", "job", r.j.ID, "error_id", id, "exit", code)
	fmt.Fprintf(r.System(), "application error %s: exit code %d\n", id, code)
	return fmt.Sprintf("the component failed with an application error (exit code %d); error id %s, the full output is kept for the operator", code, id)
}

func cutMiddle(s string, n int) string {
	rs := []rune(s)
	if len(rs) <= 2*n {
		return s
	}
	return string(rs[:n]) + "\n…\n" + string(rs[len(rs)-n:])
}

// execute runs the configuration, or each of its rows in order, in the image ref.
func (r *run) execute(ctx context.Context, ref string) {
	if r.j.Component.Component.ForwardToken && r.Token() == "" {
		r.Fail(job.ReasonInternal, "this component gets the caller's token (forward_token), which berth keeps in memory only: it was lost (berth restarted?); run it again")
		return
	}
	cr := r.j.Component
	if len(cr.Rows) == 0 {
		r.rowCfg = cr.Config
		if exit, how, ended := r.componentOnce(ctx, ref); !ended {
			r.Classify(exit, how, r.failureMessage)
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
		fmt.Fprintf(r.System(), "row %s (%d of %d)\n", row.ID, i+1, len(cr.Rows))
		var ended bool
		if exit, how, ended = r.componentOnce(ctx, ref); ended {
			if r.j.Message != "" {
				r.j.Message = fmt.Sprintf("row %s: %s", row.ID, r.j.Message)
			}
			return
		}
		r.endRow()
	}
	r.Classify(exit, how, r.failureMessage)
}

// endRow removes a finished row's container and folder before the next row runs.
func (r *run) endRow() {
	r.EndTask()
	r.newState, r.hasNewState = nil, false
}

// componentOnce runs the component once (for the configuration or one row): /data, the
// processors, the container, the output mapping. ended is true when the job reached its end
// (a failure, or a sync action); otherwise it succeeded and exit and how say how it ended.
func (r *run) componentOnce(ctx context.Context, ref string) (exit runtime.Exit, how string, ended bool) {
	t0 := time.Now()
	dataDir, err := r.componentWorkspace(ctx)
	if err != nil {
		r.Timing("workspace", t0, "failed")
		var pe *job.PolicyError
		if errors.As(err, &pe) {
			r.Fail(job.ReasonUserError, err.Error())
		} else if !r.Interrupted(ctx) {
			r.Fail(job.ReasonInternal, fmt.Sprintf("prepare /data: %v", err))
		}
		return exit, how, true
	}
	r.Timing("workspace", t0, "inputs mapped")
	if r.Interrupted(ctx) {
		return exit, how, true
	}
	if err := r.runProcessors(ctx, "before", r.j.Component.Before, dataDir); err != nil {
		if !r.Interrupted(ctx) {
			r.processorFailed(err)
		}
		return exit, how, true
	}
	// Only the component itself sees the state: it is written after the before-processors
	// and read back right after the component, before any after-processor (as Keboola does).
	if err := r.writeState(dataDir); err != nil {
		r.Fail(job.ReasonInternal, fmt.Sprintf("prepare /data: %v", err))
		return exit, how, true
	}
	exit, how, started := r.StartAndWait(ctx, r.componentTask(ref, dataDir))
	if !started {
		return exit, how, true
	}
	if how == "disk_limit" {
		r.Classify(exit, how, r.failureMessage) // nothing of it is loaded, not even write_always tables
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
			if !r.Interrupted(ctx) {
				r.processorFailed(err)
			}
			return exit, how, true
		}
	}
	if r.j.Component.Action != "run" {
		// A sync action has no output mapping and no state: its stdout is the answer.
		r.Classify(exit, how, r.failureMessage)
		return exit, how, true
	}
	t0 = time.Now()
	missing, err := r.outputMapping(context.WithoutCancel(ctx), dataDir, ok)
	r.Timing("outputs", t0, "")
	switch {
	case err != nil:
		r.mappingFailed(err, exit)
	case missing != "":
		// Keboola's wording; the write_always tables were still loaded.
		code := exit.Code
		r.End(job.StateFailed, job.ReasonUserError, missing, &code)
	case how != "" || exit.Code != 0 || exit.OOMKilled:
		r.Classify(exit, how, r.failureMessage)
	default:
		return exit, how, false
	}
	return exit, how, true
}
