// Package component runs components: Keboola-style jobs, a container image run through the
// common interface (/data/config.json, /data/in, /data/out, manifests, a state carried between
// runs), with before and after processors and input and output mapping against berth's storage
// (DESIGN.md "Components"). Its Executor is the job core's executor of component jobs.
package component

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/storage"
)

// SyncActionTimeout bounds a sync action's run (Config.SyncActionTimeout overrides it).
const SyncActionTimeout = 30 * time.Second

// messageCut is how much of a failed component's output its user sees (head and tail).
const messageCut = 2000

// Config is what component jobs need beyond the job core's policy (job.Config).
type Config struct {
	// Storage holds the tables and files components read and write; nil: no component jobs.
	Storage *storage.Storage
	// ProjectID is KBC_PROJECTID in component containers (default "berth").
	ProjectID string
	// Sealer opens a configuration's stored credentials (nil: none are given to runs).
	Sealer Unsealer
	// ProjectName is KBC_PROJECTNAME, given with a forwarded token (default "berth").
	ProjectName string
	// PublicURL is the address users reach the server at (server --public-url, env
	// BERTH_PUBLIC_URL; default http://<listen address>). Its host is KBC_STACKID, and it is
	// KBC_URL for a component that gets the caller's token.
	PublicURL string
	// SyncActionTimeout bounds a component's sync action (default 30 s).
	SyncActionTimeout time.Duration
	// Pull, if set, resolves a component's image before each run: an image naming a registry
	// (berth component publish pushed it) is pulled with a credential of the job's project,
	// its progress written to progress, and the reference returned runs it by digest; an
	// image on the engine only comes back as it is. It refuses another project's image.
	Pull func(ctx context.Context, project, ref string, progress io.Writer) (string, error)
}

// Unsealer decrypts secrets kept at rest.
type Unsealer interface {
	Open(sealed []byte) ([]byte, error)
}

// publicURL is PublicURL, or a local default.
func (c Config) publicURL() string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	return "http://localhost"
}

// stackID is the host of the public URL (KBC_STACKID).
func (c Config) stackID() string {
	if u, err := url.Parse(c.publicURL()); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return "localhost"
}

// Executor runs component jobs (job.KindComponent). Safe for concurrent use.
type Executor struct {
	cfg Config
}

var _ job.Executor = (*Executor)(nil)

// New returns the component executor.
func New(cfg Config) *Executor { return &Executor{cfg: cfg} }

// Admit checks a run of a component configuration against the policy: the component's and
// each processor's network, and the component's limits.
func (e *Executor) Admit(ctx context.Context, cfg job.Config, s job.Submission) (job.Admission, error) {
	cr := *s.Component
	if e.cfg.Storage == nil {
		return job.Admission{}, errors.New("submit: this berth has no storage, so it cannot run components")
	}
	if cr.Action == "" {
		cr.Action = "run"
	}
	if cr.Mode != "" && cr.Mode != "run" && cr.Mode != "debug" {
		return job.Admission{}, fmt.Errorf("submit: mode %q: allowed: run (the default), debug", cr.Mode)
	}
	if err := cfg.CheckNetwork(cr.Component.Network); err != nil {
		return job.Admission{}, err
	}
	// A processor runs with its own network, so the policy applies to each one too.
	for stage, procs := range map[string][]job.ProcessorRun{"before": cr.Before, "after": cr.After} {
		for i, p := range procs {
			if err := cfg.CheckNetwork(p.Component.Network); err != nil {
				var pe *job.PolicyError
				if errors.As(err, &pe) {
					pe.Field = fmt.Sprintf("processors.%s[%d].network", stage, i)
				}
				return job.Admission{}, err
			}
		}
	}
	if _, err := cfg.EffectiveLimits(cr.Component.Limits); err != nil {
		return job.Admission{}, err
	}
	name := cr.Config.ID
	// The job's record shows the component's image, limits and network as its block.
	b := spec.Block{Name: cr.Config.ID, Language: spec.LangShell, Image: cr.Component.Image,
		Limits: e.limits(cr), Network: cr.Component.Network}
	if cr.Action != "run" {
		b.Name = cr.Component.ID + ":" + cr.Action
	}
	blockJSON, err := json.Marshal(b)
	if err != nil {
		return job.Admission{}, fmt.Errorf("submit: %w", err)
	}
	a := job.Admission{Job: job.Job{Kind: job.KindComponent, Name: name, Block: b, Component: &cr}, StoredBlock: blockJSON}
	if cr.Component.ForwardToken {
		a.Token = s.Token
	}
	return a, nil
}

// limits are the run's limits: the component's, with SyncActionTimeout from its start (image
// preparation not counted) for a sync action.
func (e *Executor) limits(cr job.ComponentRun) spec.Limits {
	l := cr.Component.Limits
	if cr.Action != "" && cr.Action != "run" {
		l.Timeout = spec.Duration(SyncActionTimeout)
		if e.cfg.SyncActionTimeout > 0 {
			l.Timeout = spec.Duration(e.cfg.SyncActionTimeout)
		}
	}
	return l
}

// run is one component job on a worker: the core's handle and what the component pipeline
// keeps between its steps.
type run struct {
	*job.Run
	e   *Executor
	j   *job.Job
	cfg job.Config
	// workDir is the job's work folder (Run.WorkDir), once made.
	workDir string
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
}

// Execute runs a component configuration: /data with the mapped inputs and state, the
// processors, the image's own command, then the output mapping (all or nothing) and the new
// state; for each configuration row in order when it has rows.
func (e *Executor) Execute(ctx context.Context, jr *job.Run) {
	r := &run{Run: jr, e: e, j: jr.Job(), cfg: jr.Config()}
	if r.j.Component == nil {
		r.Fail(job.ReasonInternal, "the job has no component run")
		return
	}
	r.SetLimits(e.limits(*r.j.Component))
	fmt.Fprintf(r.System(), "resolving image %s\n", r.j.Component.Component.Image)
	img := r.j.Component.Component.Image
	if e.cfg.Pull != nil {
		pinned, err := e.cfg.Pull(ctx, r.project(), img, r.System())
		if err != nil {
			r.Fail(job.ReasonInternal, fmt.Sprintf("image %s: %v", img, err))
			return
		}
		img = pinned
	}
	res, ok := r.EnsureImage(ctx, image.Request{BaseImage: img, Language: spec.LangShell})
	if !ok {
		return
	}
	r.execute(ctx, res.Ref)
}
