package component

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/berthproject/berth/internal/datadir"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/spec"
)

// runProcessors runs a stage's processors in order over the job's data folder. Before
// processors read the mapped inputs and their output becomes the component's in/; after
// processors read the component's out/ (the previous processor's output) and their output is
// what gets mapped. A failure names the processor.
func (r *run) runProcessors(ctx context.Context, stage string, procs []job.ProcessorRun, dataDir string) error {
	for i, p := range procs {
		name := fmt.Sprintf("processor %s (%s #%d)", p.Component.ID, stage, i+1)
		pdir := filepath.Join(r.workDir, fmt.Sprintf("proc-%s-%d", stage, i))
		if err := datadir.Layout(pdir); err != nil {
			return err
		}
		os.RemoveAll(filepath.Join(pdir, "in"))
		from := filepath.Join(dataDir, "in")
		if stage == "after" {
			from = filepath.Join(dataDir, "out")
			// What the component (or the processor before) wrote is handed on only when it
			// holds nothing a container should not leave there.
			if err := datadir.Check(dataDir, "out", r.cfg.OutputLimits); err != nil {
				return fmt.Errorf("hand-over to %s: %w", name, err)
			}
		}
		if err := os.Rename(from, filepath.Join(pdir, "in")); err != nil {
			return err
		}
		if err := datadir.WriteConfig(pdir, datadir.Config{Parameters: p.Parameters, Action: "run",
			ImageParameters: p.Component.ImageParameters}); err != nil {
			return err
		}
		if err := job.ChownTree(filepath.Join(pdir, "out"), r.cfg.User); err != nil {
			return err
		}
		// The processor may read its input but not change it.
		if err := job.ChownTree(filepath.Join(pdir, "in"), "0:0"); err != nil {
			return err
		}
		fmt.Fprintf(r.System(), "%s: starting\n", name)
		t0 := time.Now()
		code, err := r.runAux(ctx, p.Component, pdir)
		r.Timing("processor", t0, p.Component.ID)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if code != 0 {
			return &ProcessorError{Name: name, Code: code}
		}
		// Its output is the next step's input.
		dest := filepath.Join(dataDir, "in")
		if stage == "after" {
			dest = filepath.Join(dataDir, "out")
		}
		if err := datadir.Check(pdir, "out", r.cfg.OutputLimits); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := os.Rename(filepath.Join(pdir, "out"), dest); err != nil {
			return err
		}
		// As Keboola's moveOutputToInput: the next image finds tables, files (and in/user)
		// again, and the whole folder is its own to write: the inputs are a copy.
		subs := []string{"tables", "files"}
		if stage == "before" {
			subs = append(subs, "user")
		}
		for _, sub := range subs {
			if err := os.MkdirAll(filepath.Join(dest, sub), 0o755); err != nil {
				return err
			}
		}
		if err := job.ChownTree(dest, r.cfg.User); err != nil {
			return err
		}
		os.RemoveAll(pdir)
	}
	return nil
}

// ProcessorError is a processor that exited non-zero.
type ProcessorError struct {
	Name string
	Code int
}

func (e *ProcessorError) Error() string {
	return fmt.Sprintf("%s failed with exit code %d", e.Name, e.Code)
}

// processorTask is a processor's container over dir: the job's confinement and the common
// interface, but run as itself. Its limits and network are its own definition's (network none
// unless it asks for one the admin allows), and it never gets the caller's token, whatever the
// main component or the processor's definition say about forward_token.
func (r *run) processorTask(comp spec.Component, dir string) (runtime.TaskSpec, error) {
	if err := r.cfg.CheckNetwork(comp.Network); err != nil {
		return runtime.TaskSpec{}, err
	}
	if _, err := r.cfg.EffectiveLimits(comp.Limits); err != nil {
		return runtime.TaskSpec{}, err
	}
	t := job.Task(r.cfg, comp.Limits, comp.Network, nil, comp.Image, r.j.ID)
	t.Mounts = []runtime.Mount{{Source: dir, Target: job.DataDir}}
	project := r.e.cfg.ProjectID
	if project == "" {
		project = "berth"
	}
	cr := r.j.Component
	t.Env["KBC_DATADIR"] = job.DataDir + "/"
	t.Env["KBC_RUNID"] = r.j.ID
	t.Env["KBC_PROJECTID"] = project
	t.Env["KBC_CONFIGID"] = cr.Config.ID
	t.Env["KBC_COMPONENTID"] = comp.ID
	t.Env["BERTH_COMPONENT_ID"] = comp.ID
	t.Env["BERTH_CONFIG_ID"] = cr.Config.ID
	delete(t.Env, "PYTHONDONTWRITEBYTECODE")
	return t, nil
}

// runAux runs one more container of this job (a processor) over dir, as itself (see
// processorTask), and returns its exit code. Its output joins the job's.
func (r *run) runAux(ctx context.Context, comp spec.Component, dir string) (int, error) {
	t, err := r.processorTask(comp, dir)
	if err != nil {
		return 0, err
	}
	return r.RunAux(ctx, t, comp.Limits)
}

// processorFailed ends the job for a failed processor, naming it.
func (r *run) processorFailed(err error) {
	var dle *job.DiskLimitError
	if errors.As(err, &dle) {
		r.End(job.StateFailed, job.ReasonDiskLimit, err.Error(), nil)
		return
	}
	var pe *ProcessorError
	if errors.As(err, &pe) {
		code := pe.Code
		reason := job.ReasonAppError
		if code == 1 {
			reason = job.ReasonUserError
		}
		r.End(job.StateFailed, reason, err.Error(), &code)
		return
	}
	var de *datadir.Error
	if errors.As(err, &de) {
		r.Fail(job.ReasonUserError, err.Error()+" (nothing of this job was loaded)")
		return
	}
	r.Fail(job.ReasonInternal, err.Error())
}
