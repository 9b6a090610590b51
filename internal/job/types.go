// Package job is berth's job core: the model, the state machine, the durable queue, the worker
// pool, and the Executor interface each kind of job implements (internal/block,
// internal/component). The core knows no kind: it hands a job to its kind's executor.
package job

import (
	"errors"
	"time"

	"github.com/berthproject/berth/internal/spec"
)

// State is where a job is in its life. Transitions are written to the store before they take
// effect: queued → preparing → running → finishing → succeeded | failed | cancelled. A cancel
// of a started job stores cancelling at once, until its container is gone and it ends.
type State string

const (
	StateQueued    State = "queued"
	StatePreparing State = "preparing"
	StateRunning   State = "running"
	StateFinishing State = "finishing"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
)

// StateCancelling: a cancel was asked for; the job's container is being stopped and removed.
const StateCancelling State = "cancelling"

// Terminal reports whether no transition leaves s.
func (s State) Terminal() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCancelled
}

// Reason says why a job failed.
type Reason string

const (
	ReasonNone      Reason = ""
	ReasonUserError Reason = "user_error" // the script exited 1
	ReasonAppError  Reason = "app_error"  // the script exited > 1
	ReasonTimeout   Reason = "timeout"    // the job's timeout passed
	ReasonOOM       Reason = "oom"        // the engine reports the container OOM-killed
	ReasonKilled    Reason = "killed"     // killed by a signal berth did not send (e.g. docker kill)
	ReasonInternal  Reason = "internal"   // berth's own fault (image build, engine, crash)
	ReasonCancelled Reason = "cancelled"
	// ReasonDiskLimit: the job wrote more to /data than its cap (limits.disk, server
	// --max-data-size) and was killed.
	ReasonDiskLimit Reason = "disk_limit"
)

// Errors.
var (
	ErrNotFound = errors.New("job: not found")
	// ErrTerminal: the job already ended (e.g. cancelling a finished job).
	ErrTerminal = errors.New("job: already finished")
)

// Kinds of job: each has an Executor (Config.Executors).
const (
	KindBlock     = "block"
	KindComponent = "component"
)

// ComponentRun is what a component job runs: a configuration of a component, as it was when
// the job was submitted.
type ComponentRun struct {
	Component     spec.Component       `json:"component"`
	Config        spec.ComponentConfig `json:"config"`
	ConfigVersion int                  `json:"config_version"`
	Action        string               `json:"action,omitempty"` // run (default)
	// Mode is run (default) or debug: KBC_COMPONENT_RUN_MODE.
	Mode string `json:"mode,omitempty"`
	// TokenID and TokenName are the caller's token (its id and name, never its value): a
	// component with forward_token_details gets them as KBC_TOKENID and KBC_TOKENDESC.
	TokenID   string `json:"token_id,omitempty"`
	TokenName string `json:"token_name,omitempty"`
	// Scope is the caller's token scope (auth.ParseScope): a token narrowed to some buckets
	// runs jobs whose mappings reach only those buckets.
	Scope string `json:"scope,omitempty"`
	// Rows are the configuration rows this job runs, in order (none: the configuration itself).
	Rows []spec.ConfigRow `json:"rows,omitempty"`
	// Before and After are the configuration's processors, resolved to their components.
	Before []ProcessorRun `json:"before,omitempty"`
	After  []ProcessorRun `json:"after,omitempty"`
}

// ProcessorRun is one processor: a component run over the job's data folder.
type ProcessorRun struct {
	Component  spec.Component `json:"component"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

// Job is one run of a block or of a component configuration.
type Job struct {
	ID       string     `json:"id"`
	Kind     string     `json:"kind"` // block | component
	Name     string     `json:"name"`
	Owner    string     `json:"owner,omitempty"`
	Project  string     `json:"project,omitempty"`
	State    State      `json:"state"`
	Reason   Reason     `json:"reason,omitempty"`
	Message  string     `json:"message,omitempty"` // human explanation of a failure
	Block    spec.Block `json:"block"`
	SpecHash string     `json:"spec_hash,omitempty"`
	// Image is the image the job ran in; ImageCacheHit is false when this job built it.
	Image         string        `json:"image,omitempty"`
	ImageCacheHit bool          `json:"image_cache_hit"`
	ExitCode      *int          `json:"exit_code,omitempty"`
	ContainerID   string        `json:"container_id,omitempty"`
	Timings       []StageTiming `json:"timings,omitempty"`
	CreatedAt     time.Time     `json:"created_at"`
	StartedAt     *time.Time    `json:"started_at,omitempty"`
	FinishedAt    *time.Time    `json:"finished_at,omitempty"`
	// OutputDir is where the files the job wrote to /data/out were kept (host path).
	OutputDir string `json:"output_dir,omitempty"`
	// Component is set for component jobs.
	Component *ComponentRun `json:"component,omitempty"`
	// Attempts are the job's runs, oldest first: one, or more when its retry policy ran it
	// again (the last is the one the job's state tells).
	Attempts []Attempt `json:"attempts,omitempty"`
}

// Attempt is one run of a job.
type Attempt struct {
	Number     int        `json:"number"` // 1 for the first run
	State      State      `json:"state"`
	Reason     Reason     `json:"reason,omitempty"`
	Message    string     `json:"message,omitempty"`
	ExitCode   *int       `json:"exit_code,omitempty"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// RetryPolicy is the job's retry policy: its configuration's for a component job, its
// block's otherwise (nil: never retried).
func (j Job) RetryPolicy() *spec.Retry {
	if j.Component != nil {
		return j.Component.Config.Retry
	}
	return j.Block.Retry
}

// StageTiming is how long one pipeline stage took.
type StageTiming struct {
	Stage      string        `json:"stage"` // image | workspace | start | run | outputs | cleanup
	StartedAt  time.Time     `json:"started_at"`
	DurationMS float64       `json:"duration_ms"`
	Detail     string        `json:"detail,omitempty"` // e.g. "cache hit", "built"
	Duration   time.Duration `json:"-"`
	// InProgress: the stage has not ended; DurationMS is its time so far, as of the read.
	InProgress bool `json:"in_progress,omitempty"`
}

// Submission is a block to run, with the files it needs.
type Submission struct {
	Block spec.Block
	// Files are the block's script files by name relative to the spec (Block.Script among them).
	Files map[string][]byte
	// BaseDir resolves relative mount sources (the spec's folder for the CLI; the sharing
	// folder for the API).
	BaseDir string
	Owner   string
	// Project owns the job (default: the default project); its mappings reach only its own
	// storage and buckets shared with it.
	Project string
	// Component, when set, makes this a component job; Block and Files are then ignored.
	Component *ComponentRun
	// Token is the caller's API token, given to a component that opted in (forward_token) as
	// KBC_TOKEN. It is kept in memory only, never stored, and redacted from the output.
	Token string
}

// Kind is the kind of job the submission asks for: component when Component is set, else block.
func (s Submission) Kind() string {
	if s.Component != nil {
		return KindComponent
	}
	return KindBlock
}

// LogChunk is a piece of a job's output.
type LogChunk struct {
	Stream string    `json:"stream"` // stdout | stderr | system
	Text   string    `json:"text"`
	Time   time.Time `json:"time"`
}

// ListOptions filter List. Kind keeps one kind of job; Text keeps jobs whose id, name or
// owner contains it (case-insensitive); Offset skips that many of the newest (with Limit).
type ListOptions struct {
	State   State
	Owner   string
	Project string
	Kind    string
	Text    string
	Offset  int
	Limit   int
}
