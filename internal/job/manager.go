package job

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/store"
)

// Images is what the manager needs of the image cache.
type Images interface {
	Ensure(ctx context.Context, req image.Request, progress io.Writer) (image.Result, error)
}

// Causes a running job's context ends with.
var (
	errCancelled = errors.New("job cancelled")
	errShutdown  = errors.New("berth is shutting down")
)

// Manager owns jobs: it stores them, queues them, runs them on a pool of workers and answers
// for their state and output. Safe for concurrent use.
type Manager struct {
	cfg    Config
	st     *store.Store
	rt     runtime.Runtime
	images Images
	log    *slog.Logger

	queue chan string

	mu      sync.Mutex
	logs    map[string]*logBuf                 // output of queued and active jobs
	active  map[string]context.CancelCauseFunc // running jobs
	runs    map[string]*Run                    // running jobs' handles (cancel.go)
	waiters map[string]chan struct{}           // closed when the job ends
	tokens  map[string]string                  // forwarded tokens by job, in memory only
	quota   quotaState                         // projects' concurrency quotas (quota.go)
	closed  bool

	ctx    context.Context
	stop   context.CancelCauseFunc
	wg     sync.WaitGroup
	runWG  sync.WaitGroup
	startO sync.Once
}

// New makes a manager. Call Start before submitting.
func New(cfg Config, st *store.Store, rt runtime.Runtime, images Images, log *slog.Logger) (*Manager, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("job manager: no data dir")
	}
	if cfg.Instance == "" {
		return nil, errors.New("job manager: no instance: berth only touches containers labelled with its own")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.LogCap <= 0 {
		cfg.LogCap = 1_000_000
	}
	if cfg.User == "" || cfg.User == "0" || strings.HasPrefix(cfg.User, "0:") || cfg.User == "root" {
		return nil, fmt.Errorf("job manager: user %q: blocks never run as root", cfg.User)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, dir := range []string{cfg.DataDir, filepath.Join(cfg.DataDir, "jobs")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("job manager: %w", err)
		}
	}
	ctx, stop := context.WithCancelCause(context.Background())
	return &Manager{
		cfg: cfg, st: st, rt: rt, images: images, log: log,
		queue:   make(chan string, 100_000),
		logs:    map[string]*logBuf{},
		active:  map[string]context.CancelCauseFunc{},
		runs:    map[string]*Run{},
		waiters: map[string]chan struct{}{},
		tokens:  map[string]string{},
		quota:   newQuotaState(),
		ctx:     ctx, stop: stop,
	}, nil
}

// Start reconciles the store against the engine (when Config.Reconcile), re-queues the jobs
// still queued, and starts the workers. A job of a project running its max_concurrent_jobs
// waits, queued, for one of them to end (quota.go).
func (m *Manager) Start(ctx context.Context) error {
	var err error
	m.startO.Do(func() {
		if m.cfg.Reconcile {
			if err = m.reconcile(ctx); err != nil {
				return
			}
		}
		var rows []store.JobRow
		rows, err = m.st.ListJobs(ctx, store.JobFilter{States: []string{string(StateQueued)}})
		if err != nil {
			return
		}
		for i := len(rows) - 1; i >= 0; i-- { // oldest first
			m.mu.Lock()
			m.logs[rows[i].ID] = newLogBuf(m.cfg.LogCap)
			m.mu.Unlock()
			m.queue <- rows[i].ID
		}
		for i := 0; i < m.cfg.Workers; i++ {
			m.wg.Add(1)
			go m.worker()
		}
		m.wg.Add(1)
		go m.recheckHeld()
	})
	return err
}

// Close stops taking work. Running jobs get until ctx ends to finish; then they are stopped,
// end failed/internal and their containers are removed. Queued jobs stay queued for the next
// start.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.runWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		m.stop(errShutdown)
		<-done
	}
	m.stop(errShutdown)
	m.wg.Wait()
	return nil
}

func (m *Manager) worker() {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case id := <-m.queue:
			m.mu.Lock()
			closed := m.closed
			if !closed {
				m.runWG.Add(1)
			}
			m.mu.Unlock()
			if closed {
				return
			}
			m.dispatch(id)
			m.runWG.Done()
		}
	}
}

// Submit hands a submission to the executor of its kind (Config.Executors), which checks it
// against its rules and the policy, then stores it as a queued job and queues it. Nothing runs
// when it returns an error (a *spec.ValidationError or a *PolicyError).
func (m *Manager) Submit(ctx context.Context, s Submission) (Job, error) {
	kind := s.Kind()
	ex, ok := m.cfg.Executors[kind]
	if !ok {
		return Job{}, fmt.Errorf("submit: this berth runs no %s jobs", kind)
	}
	a, err := ex.Admit(ctx, m.cfg, s)
	if err != nil {
		return Job{}, err
	}
	j := a.Job
	j.ID, j.Owner, j.State, j.CreatedAt = newID(), s.Owner, StateQueued, time.Now().UTC()
	j.Project = s.Project
	if j.Project == "" {
		j.Project = store.DefaultProject
	}
	j.Kind = kind
	row := toRow(j)
	blockJSON := []byte(a.StoredBlock)
	if blockJSON == nil {
		if blockJSON, err = json.Marshal(j.Block); err != nil {
			return Job{}, fmt.Errorf("submit: %w", err)
		}
	}
	// Secret env values are kept sealed (store.SealBlockSecrets); the run opens them.
	if row.Block, err = m.st.SealBlockSecrets(string(blockJSON)); err != nil {
		return Job{}, fmt.Errorf("submit: %w", err)
	}
	row.BaseDir = a.BaseDir
	if a.Files != nil {
		filesJSON, err := json.Marshal(a.Files)
		if err != nil {
			return Job{}, fmt.Errorf("submit: %w", err)
		}
		row.Files = string(filesJSON)
	}
	if a.Token != "" {
		// Before the job is queued, so a worker never runs it without its token.
		m.mu.Lock()
		m.tokens[j.ID] = a.Token
		m.mu.Unlock()
	}
	return m.enqueue(ctx, j, row)
}

// enqueue stores a new job as queued and hands it to the workers.
func (m *Manager) enqueue(ctx context.Context, j Job, row store.JobRow) (Job, error) {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return Job{}, errors.New("submit: berth is shutting down")
	}
	if err := m.st.InsertJob(ctx, row); err != nil {
		return Job{}, err
	}
	m.mu.Lock()
	m.logs[j.ID] = newLogBuf(m.cfg.LogCap)
	m.mu.Unlock()
	select {
	case m.queue <- j.ID:
	default:
		// The in-memory queue is full: the job stays queued in the store and runs after the
		// next start. Say so rather than block the caller.
		m.log.Warn("job queue full; job waits for the next start", "job", j.ID)
	}
	m.log.Debug("job queued", "job", j.ID, "name", j.Name, "owner", j.Owner)
	return j, nil
}

// Get returns a job.
func (m *Manager) Get(ctx context.Context, id string) (Job, error) {
	row, err := m.st.GetJob(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Job{}, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Job{}, err
	}
	return fromRow(row), nil
}

// List returns jobs, newest first.
func (m *Manager) List(ctx context.Context, o ListOptions) ([]Job, error) {
	var states []string
	if o.State != "" {
		states = []string{string(o.State)}
	}
	rows, err := m.st.ListJobs(ctx, store.JobFilter{States: states, Owner: o.Owner, Project: o.Project,
		Kind: o.Kind, Text: o.Text, Offset: o.Offset, Limit: o.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]Job, 0, len(rows))
	for _, r := range rows {
		out = append(out, fromRow(r))
	}
	return out, nil
}

// Counts returns how many jobs are in each state.
func (m *Manager) Counts(ctx context.Context) (map[State]int, error) {
	c, err := m.st.CountJobsByState(ctx)
	if err != nil {
		return nil, err
	}
	out := map[State]int{}
	for k, v := range c {
		out[State(k)] = v
	}
	return out, nil
}

// Cancel cancels a job: a queued job ends at once; a running one is stopped (after the stop
// grace) and ends cancelled once its container is removed. Cancelling a finished job returns
// ErrTerminal.
func (m *Manager) Cancel(ctx context.Context, id string) (Job, error) {
	j, err := m.Get(ctx, id)
	if err != nil {
		return j, err
	}
	if j.State.Terminal() {
		return j, fmt.Errorf("cancel job %s (%s): %w", id, j.State, ErrTerminal)
	}
	now := time.Now().UTC()
	ok, err := m.st.TransitionJob(ctx, id, []string{string(StateQueued)}, string(StateCancelled), string(ReasonCancelled), "cancelled before it started", &now)
	if err != nil {
		return j, err
	}
	if ok {
		m.systemLog(id, "cancelled before it started\n")
		m.finished(id)
		return m.Get(ctx, id)
	}
	cancel, r := m.activeRun(id)
	if r == nil {
		// A worker of this server may have claimed it a moment ago and not yet registered
		// its run: give it a moment rather than lose the cancel.
		for deadline := time.Now().Add(time.Second); r == nil && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			if cur, err := m.Get(ctx, id); err != nil || cur.State.Terminal() {
				return cur, err
			}
			cancel, r = m.activeRun(id)
		}
	}
	if r != nil {
		// Stored before the job is told, so the answer is never an older state.
		if err := r.markCancelling(ctx); err != nil {
			return j, err
		}
	}
	if cancel != nil {
		cancel(errCancelled)
	}
	return m.Get(ctx, id)
}

// Wait blocks until the job reaches a terminal state, and returns it.
func (m *Manager) Wait(ctx context.Context, id string) (Job, error) {
	for {
		m.mu.Lock()
		ch, ok := m.waiters[id]
		if !ok {
			ch = make(chan struct{})
			m.waiters[id] = ch
		}
		m.mu.Unlock()
		j, err := m.Get(ctx, id)
		if err != nil || j.State.Terminal() {
			return j, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(5 * time.Second):
			// Another process may run the job (a crashed server's successor): look again.
		}
	}
}

// Logs calls fn with the job's output in order. With follow it keeps delivering until the job
// has ended and all its output was delivered, or ctx ends.
func (m *Manager) Logs(ctx context.Context, id string, follow bool, fn func(LogChunk) error) error {
	m.mu.Lock()
	lb := m.logs[id]
	m.mu.Unlock()
	if lb == nil {
		if _, err := m.Get(ctx, id); err != nil {
			return err
		}
		chunks, err := readChunks(m.logPath(id))
		if err != nil {
			return fmt.Errorf("logs of job %s: %w", id, err)
		}
		for _, c := range chunks {
			if err := fn(c); err != nil {
				return err
			}
		}
		return nil
	}
	cursor := 0
	for {
		chunks, next, closed, changed := lb.since(cursor)
		for _, c := range chunks {
			if err := fn(c); err != nil {
				return err
			}
		}
		cursor = next
		if closed || !follow {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// systemLog adds a line of berth's own to a job's output.
func (m *Manager) systemLog(id, text string) {
	m.mu.Lock()
	lb := m.logs[id]
	m.mu.Unlock()
	if lb != nil {
		lb.append(LogChunk{Stream: "system", Text: text, Time: time.Now().UTC()})
	}
}

// finished is called once a job's terminal state is stored: it saves the output, wakes
// waiters and calls OnFinish.
func (m *Manager) finished(id string) {
	m.mu.Lock()
	lb := m.logs[id]
	m.mu.Unlock()
	if lb != nil {
		lb.close()
		if err := lb.save(m.logPath(id)); err != nil {
			m.log.Error("save job output", "job", id, "err", err)
		}
	}
	m.mu.Lock()
	delete(m.logs, id)
	delete(m.tokens, id)
	if ch, ok := m.waiters[id]; ok {
		close(ch)
		delete(m.waiters, id)
	}
	m.mu.Unlock()
	if m.cfg.OnFinish != nil {
		if j, err := m.Get(context.Background(), id); err == nil {
			m.cfg.OnFinish(j)
		}
	}
}

func (m *Manager) jobDir(id string) string  { return filepath.Join(m.cfg.DataDir, "jobs", id) }
func (m *Manager) logPath(id string) string { return filepath.Join(m.jobDir(id), "output.json") }

// reconcile makes the store and the engine agree after a crash: a job a dead process left
// preparing, running or finishing ends failed/internal and its container is removed; a job
// container of this instance (berth.instance) no live job owns is removed. Nothing without
// the instance's label is ever touched.
func (m *Manager) reconcile(ctx context.Context) error {
	rows, err := m.st.ListJobs(ctx, store.JobFilter{States: []string{string(StatePreparing), string(StateRunning), string(StateFinishing), string(StateCancelling)}})
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	for _, r := range rows {
		tasks, err := m.rt.List(ctx, map[string]string{runtime.LabelJob: r.ID, runtime.LabelInstance: m.cfg.Instance})
		if err != nil {
			return fmt.Errorf("reconcile job %s: %w", r.ID, err)
		}
		msg := fmt.Sprintf("berth stopped while the job was %s, and its container is gone", r.State)
		if len(tasks) > 0 {
			msg = fmt.Sprintf("berth stopped while the job was %s; its container was removed on restart", r.State)
		}
		for _, t := range tasks {
			if err := m.rt.Remove(ctx, t.ID); err != nil {
				return fmt.Errorf("reconcile job %s: remove container: %w", r.ID, err)
			}
		}
		now := time.Now().UTC()
		to, reason := StateFailed, ReasonInternal
		if r.State == string(StateCancelling) {
			// The cancel was asked for and the container is gone now: that is its end.
			to, reason = StateCancelled, ReasonCancelled
		}
		if _, err := m.st.TransitionJob(ctx, r.ID, []string{r.State}, string(to), string(reason), msg, &now); err != nil {
			return fmt.Errorf("reconcile job %s: %w", r.ID, err)
		}
		chunks, _ := readChunks(m.logPath(r.ID))
		chunks = append(chunks, LogChunk{Stream: "system", Text: msg + "\n", Time: now})
		if err := writeChunks(m.logPath(r.ID), chunks); err != nil {
			m.log.Warn("reconcile: save output", "job", r.ID, "err", err)
		}
		os.RemoveAll(filepath.Join(m.jobDir(r.ID), "work"))
		m.log.Warn("reconciled job left by a stopped berth", "job", r.ID, "was", r.State)
		if m.cfg.OnFinish != nil {
			if j, err := m.Get(ctx, r.ID); err == nil {
				m.cfg.OnFinish(j)
			}
		}
	}
	// Only this instance's: another berth on the engine (another data dir) has its own jobs.
	sel := map[string]string{runtime.LabelManaged: "true", runtime.LabelKind: runtime.KindJob, runtime.LabelInstance: m.cfg.Instance}
	tasks, err := m.rt.List(ctx, sel)
	if err != nil {
		return fmt.Errorf("reconcile: list containers: %w", err)
	}
	for _, t := range tasks {
		id := t.Labels[runtime.LabelJob]
		j, err := m.Get(ctx, id)
		if err == nil && !j.State.Terminal() && j.State != StateQueued {
			continue // cannot happen after the loop above; keep the container to be safe
		}
		if err := m.rt.Remove(ctx, t.ID); err != nil {
			return fmt.Errorf("reconcile: remove orphan container %s: %w", t.ID, err)
		}
		m.log.Warn("removed a job container no live job owns", "container", string(t.ID), "job", id)
	}
	return nil
}

func newID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "j" + time.Now().UTC().Format("060102") + hex.EncodeToString(b[:])
}

func toRow(j Job) store.JobRow {
	timings, _ := json.Marshal(j.Timings)
	attempts := []byte("[]")
	if len(j.Attempts) > 0 {
		attempts, _ = json.Marshal(j.Attempts)
	}
	payload := []byte("{}")
	if j.Component != nil {
		payload, _ = json.Marshal(j.Component)
	}
	return store.JobRow{
		Kind: j.Kind, Payload: string(payload),
		ID: j.ID, Name: j.Name, Owner: j.Owner, Project: j.Project, State: string(j.State), Reason: string(j.Reason), Message: j.Message,
		SpecHash: j.SpecHash, Image: j.Image, ImageCacheHit: j.ImageCacheHit, ExitCode: j.ExitCode,
		ContainerID: j.ContainerID, Timings: string(timings), CreatedAt: j.CreatedAt, StartedAt: j.StartedAt,
		FinishedAt: j.FinishedAt, OutputDir: j.OutputDir, Attempts: string(attempts),
	}
}

func fromRow(r store.JobRow) Job {
	j := Job{
		ID: r.ID, Name: r.Name, Owner: r.Owner, Project: r.Project, State: State(r.State), Reason: Reason(r.Reason), Message: r.Message,
		SpecHash: r.SpecHash, Image: r.Image, ImageCacheHit: r.ImageCacheHit, ExitCode: r.ExitCode,
		ContainerID: r.ContainerID, CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
		OutputDir: r.OutputDir,
	}
	_ = json.Unmarshal([]byte(r.Block), &j.Block)
	_ = json.Unmarshal([]byte(r.Timings), &j.Timings)
	if r.Attempts != "" && r.Attempts != "[]" {
		_ = json.Unmarshal([]byte(r.Attempts), &j.Attempts)
	}
	liveTimings(&j)
	j.Kind = r.Kind
	if j.Kind == "" {
		j.Kind = KindBlock // rows from before kinds existed
	}
	// The payload is the kind's part of the record; a job without one stores "{}".
	if r.Payload != "" && r.Payload != "{}" {
		var cr ComponentRun
		if json.Unmarshal([]byte(r.Payload), &cr) == nil {
			j.Component = &cr
		}
	}
	return j
}
