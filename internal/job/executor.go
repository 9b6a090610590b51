package job

import (
	"context"
	"encoding/json"
)

// Executor runs the jobs of one kind (internal/block, internal/component). The core owns the
// queue, the workers, the state machine, cancelling, the engine-restart handling, timings and
// the output; an executor owns what a job of its kind does between being claimed and ending.
//
// Lifecycle: Admit (on Submit, before the job is stored) → the job is queued → a worker claims
// it (preparing, stored) → Execute on that worker → the core cleans up (the job's container and
// work folder, see Run) and stores the terminal state. Executors are registered by kind in
// Config.Executors; the core never knows a kind's details. Safe for concurrent use: several
// workers call Execute at once.
type Executor interface {
	// Admit checks a submission against the kind's rules and cfg's policy and returns the job
	// to queue. Nothing runs and nothing is stored when it returns an error (a
	// *spec.ValidationError or a *PolicyError for input a user can fix).
	Admit(ctx context.Context, cfg Config, s Submission) (Admission, error)
	// Execute takes a claimed job (r.Job(), state preparing) to a terminal state through r:
	// r.End, r.Fail or r.Classify. A job it leaves without one ends failed/internal.
	Execute(ctx context.Context, r *Run)
}

// Admission is a submission an executor accepted: the job to store and queue. The core sets
// its ID, owner, state and creation time.
type Admission struct {
	// Job carries the kind-specific parts of the record: Kind, Name, Block, Component.
	Job Job
	// StoredBlock is the block as the store keeps it (nil: the JSON of Job.Block).
	StoredBlock json.RawMessage
	// Files and BaseDir are kept with the job for its run (Run.Row).
	Files   map[string][]byte
	BaseDir string
	// Token, when set, is kept in memory only for the run (Run.Token) and hidden in its output.
	Token string
}
