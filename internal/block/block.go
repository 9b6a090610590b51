// Package block runs blocks: a user's Python, R or shell script (or a custom image) run once
// in a fresh container with only the data it was given (DESIGN.md "Blocks"). Its Executor is
// the job core's executor of block jobs: spec → image → workspace → task → outputs.
package block

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/datadir"
	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/spec"
)

// Executor runs block jobs (job.KindBlock). It holds no state: safe for concurrent use.
type Executor struct{}

var _ job.Executor = Executor{}

// New returns the block executor.
func New() Executor { return Executor{} }

// Admit validates a block against the spec rules and the policy: its network, limits and
// mounts, and that the script was sent with it.
func (Executor) Admit(ctx context.Context, cfg job.Config, s job.Submission) (job.Admission, error) {
	b := s.Block
	if err := b.Validate(); err != nil {
		return job.Admission{}, err
	}
	if err := cfg.CheckNetwork(b.Network); err != nil {
		return job.Admission{}, err
	}
	if _, err := cfg.EffectiveLimits(b.Limits); err != nil {
		return job.Admission{}, err
	}
	for i, mt := range b.Mounts {
		if _, err := cfg.ResolveMount(s.BaseDir, i, mt); err != nil {
			return job.Admission{}, err
		}
	}
	files := map[string][]byte{}
	for name, data := range s.Files {
		if !safeRelPath(name) {
			return job.Admission{}, &spec.ValidationError{Problems: []spec.Problem{{Field: "files", Message: fmt.Sprintf("%q: file names must be relative paths inside the block's folder", name)}}}
		}
		files[name] = data
	}
	if b.Code != "" {
		files[ScriptName(b)] = []byte(b.Code)
	} else if _, ok := files[b.Script]; !ok {
		return job.Admission{}, &spec.ValidationError{Problems: []spec.Problem{{Field: "script", Message: fmt.Sprintf("the script file %q was not sent with the block", b.Script)}}}
	}
	blockJSON, err := storedBlockJSON(b)
	if err != nil {
		return job.Admission{}, fmt.Errorf("submit: %w", err)
	}
	return job.Admission{Job: job.Job{Kind: job.KindBlock, Name: b.Name, Block: b},
		StoredBlock: blockJSON, Files: files, BaseDir: s.BaseDir}, nil
}

// Execute is the block pipeline: image → workspace → start → run → outputs.
func (Executor) Execute(ctx context.Context, r *job.Run) {
	j := r.Job()
	blk := j.Block
	cfg := r.Config()
	r.Hide(blk.Secrets()...)
	r.SetLimits(blk.Limits)

	fmt.Fprintf(r.System(), "resolving image for %s\n", blk.Language)
	res, ok := r.EnsureImage(ctx, image.Request{
		Language: blk.Language, BaseImage: blk.Image, Dependencies: blk.Dependencies,
		SystemPackages: blk.SystemPackages, InstallAPILibrary: blk.InstallAPILibrary,
	})
	if !ok {
		return
	}

	// Workspace.
	t0 := time.Now()
	codeDir, dataDir, mounts, err := workspace(r)
	if err != nil {
		r.Timing("workspace", t0, "failed")
		var pe *job.PolicyError
		if errors.As(err, &pe) {
			r.Fail(job.ReasonUserError, err.Error())
		} else {
			r.Fail(job.ReasonInternal, fmt.Sprintf("prepare workspace: %v", err))
		}
		return
	}
	r.Timing("workspace", t0, "")
	if r.Interrupted(ctx) {
		return
	}

	task := TaskFor(cfg, blk, res.Ref, j.ID, codeDir, dataDir)
	task.Mounts = append(task.Mounts, mounts...)
	exit, how, started := r.StartAndWait(ctx, task)
	if !started {
		return
	}
	t0 = time.Now()
	// The outputs are kept (for `--out`) only when they hold nothing but real folders and
	// regular files: a link the block left would be followed by whoever reads them.
	if err := datadir.Check(dataDir, "out", cfg.OutputLimits); err != nil {
		r.Timing("outputs", t0, "refused")
		var de *datadir.Error
		if errors.As(err, &de) && how == "" && exit.Code == 0 && !exit.OOMKilled {
			code := exit.Code
			r.End(job.StateFailed, job.ReasonUserError, "outputs: "+de.Error()+" (the outputs were not kept)", &code)
			return
		}
		fmt.Fprintf(r.System(), "outputs not kept: %v\n", err)
		r.Classify(exit, how, failedWithHint(r))
		return
	}
	outDir := filepath.Join(r.JobDir(), "out")
	if how == "disk_limit" {
		// Nothing of a job past its cap is kept: cleanup gives the host its space back.
	} else if err := os.Rename(filepath.Join(dataDir, "out"), outDir); err == nil {
		j.OutputDir = outDir
	} else {
		r.Log().Warn("keep job outputs", "job", j.ID, "err", err)
	}
	r.Timing("outputs", t0, "")

	r.Classify(exit, how, failedWithHint(r))
}

// failedWithHint says how the script exited and, when its output shows it imported a package
// the image lacks, that the package belongs in dependencies.
func failedWithHint(r *job.Run) func(code int) string {
	return func(code int) string {
		msg := job.ExitMessage(code)
		if hint := job.MissingPackageHint(r.Output()); hint != "" {
			msg += "; " + hint
		}
		return msg
	}
}

// workspace writes the job's folders: code (the script files, read-only in the container) and
// data (config.json, in/, out/), owned by the container's user; and resolves the block's mounts.
func workspace(r *job.Run) (codeDir, dataDir string, mounts []runtime.Mount, err error) {
	j := r.Job()
	cfg := r.Config()
	row := r.Row()
	var files map[string][]byte
	if err := json.Unmarshal([]byte(row.Files), &files); err != nil {
		files = map[string][]byte{}
	}
	workDir := r.WorkDir()
	codeDir = filepath.Join(workDir, "code")
	dataDir = filepath.Join(workDir, "data")
	for _, d := range []string{codeDir, filepath.Join(dataDir, "in"), filepath.Join(dataDir, "out")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", "", nil, err
		}
	}
	for name, data := range files {
		p := filepath.Join(codeDir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", "", nil, err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return "", "", nil, err
		}
	}
	params := j.Block.Parameters
	if params == nil {
		params = map[string]any{}
	}
	cfgJSON, err := json.MarshalIndent(map[string]any{
		"parameters": params,
		"action":     "run",
		"job":        map[string]any{"id": j.ID, "name": j.Name},
	}, "", "  ")
	if err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(filepath.Join(dataDir, "config.json"), cfgJSON, 0o644); err != nil {
		return "", "", nil, err
	}
	if err := job.ChownTree(dataDir, cfg.User); err != nil {
		return "", "", nil, err
	}
	// Mounts are checked again: the folder may have changed since the job was submitted.
	for i, mt := range j.Block.Mounts {
		src, err := cfg.ResolveMount(row.BaseDir, i, mt)
		if err != nil {
			return "", "", nil, err
		}
		mounts = append(mounts, runtime.Mount{Source: src, Target: mt.Target, ReadOnly: mt.ReadOnly()})
	}
	return codeDir, dataDir, mounts, nil
}

func safeRelPath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
		return false
	}
	c := path.Clean(p)
	return c == p && c != "." && c != ".." && !strings.HasPrefix(c, "../")
}

// storedBlockJSON is the block as the store keeps it: like its JSON, but with secret values
// (which the block's own JSON hides) so the job can run after a restart.
func storedBlockJSON(b spec.Block) ([]byte, error) {
	env := b.Env
	b.Env = nil
	raw, err := json.Marshal(b)
	if err != nil || len(env) == 0 {
		return raw, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	se := map[string]spec.StoredEnv{}
	for k, v := range env {
		se[k] = spec.StoredEnv{Value: v.Value, Secret: v.Secret}
	}
	m["env"] = se
	return json.Marshal(m)
}
