package job_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/store"
)

// gateExecutor is a scriptable executor for the queue's logic: each job announces its start
// and runs until the test opens its gate (or it is cancelled). It starts no container.
type gateExecutor struct {
	started chan string
	mu      sync.Mutex
	gates   map[string]chan struct{}
}

func newGateExecutor() *gateExecutor {
	return &gateExecutor{started: make(chan string, 100), gates: map[string]chan struct{}{}}
}

func (g *gateExecutor) gate(id string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch, ok := g.gates[id]
	if !ok {
		ch = make(chan struct{})
		g.gates[id] = ch
	}
	return ch
}

func (g *gateExecutor) Admit(ctx context.Context, cfg job.Config, s job.Submission) (job.Admission, error) {
	return job.Admission{Job: job.Job{Kind: job.KindBlock, Name: s.Block.Name, Block: s.Block}}, nil
}

func (g *gateExecutor) Execute(ctx context.Context, r *job.Run) {
	id := r.Job().ID
	g.started <- id
	select {
	case <-g.gate(id):
		zero := 0
		r.End(job.StateSucceeded, job.ReasonNone, "", &zero)
	case <-ctx.Done():
		r.End(job.StateCancelled, job.ReasonCancelled, "cancelled", nil)
	}
}

// quotaManager is a started manager with workers workers whose jobs run on g, over a store
// with the projects given (id → max_concurrent_jobs).
func quotaManager(t *testing.T, workers int, g *gateExecutor, projects map[string]int) (*job.Manager, *store.Store) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for id, max := range projects {
		if err := st.CreateProject(ctx, store.Project{ID: id, MaxConcurrentJobs: max}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := job.DefaultConfig(filepath.Join(dir, "data"))
	cfg.Instance, cfg.Workers, cfg.Reconcile = "quota-test", workers, false
	cfg.Executors = map[string]job.Executor{job.KindBlock: g}
	m, err := job.New(cfg, st, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.mu.Lock()
		for id, ch := range g.gates {
			select {
			case <-ch:
			default:
				close(ch)
			}
			delete(g.gates, id)
		}
		g.mu.Unlock()
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m.Close(cctx)
	})
	return m, st
}

func submitIn(t *testing.T, m *job.Manager, project, name string) string {
	t.Helper()
	j, err := m.Submit(context.Background(), job.Submission{Block: spec.Block{Name: name, Language: spec.LangShell, Code: "true"},
		Owner: "tester", Project: project})
	if err != nil {
		t.Fatal(err)
	}
	return j.ID
}

// expectStarts waits for the jobs named to start, in any order.
func expectStarts(t *testing.T, g *gateExecutor, ids ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	deadline := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case id := <-g.started:
			if !want[id] {
				t.Fatalf("job %s started; waiting for %v", id, want)
			}
			delete(want, id)
		case <-deadline:
			t.Fatalf("jobs %v did not start", want)
		}
	}
}

// expectNoStart checks no job starts for a while.
func expectNoStart(t *testing.T, g *gateExecutor, why string) {
	t.Helper()
	select {
	case id := <-g.started:
		t.Fatalf("job %s started: %s", id, why)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestQuotaHoldsAProjectsJobsNotOthers(t *testing.T) {
	g := newGateExecutor()
	m, _ := quotaManager(t, 3, g, map[string]int{"alpha": 1, "beta": 0})
	ctx := context.Background()

	a1 := submitIn(t, m, "alpha", "a1")
	expectStarts(t, g, a1)
	a2 := submitIn(t, m, "alpha", "a2")
	a3 := submitIn(t, m, "alpha", "a3")
	// beta is not blocked behind alpha's waiting jobs, and they take no worker from it.
	b1, b2 := submitIn(t, m, "beta", "b1"), submitIn(t, m, "beta", "b2")
	expectStarts(t, g, b1, b2)
	expectNoStart(t, g, "alpha runs at most 1 job at once")
	for _, id := range []string{a2, a3} {
		j, err := m.Get(ctx, id)
		if err != nil || j.State != job.StateQueued || !strings.Contains(j.Message, "quota of project alpha") {
			t.Fatalf("held job %s: %s %q %v", id, j.State, j.Message, err)
		}
	}

	// A held job cancelled is skipped; the next one starts when a1 ends, oldest first.
	if j, err := m.Cancel(ctx, a2); err != nil || j.State != job.StateCancelled {
		t.Fatalf("cancel held a2: %s %v", j.State, err)
	}
	close(g.gate(a1))
	expectStarts(t, g, a3)
	if j, _ := m.Get(ctx, a3); j.Message != "" {
		t.Errorf("a3 runs with message %q", j.Message)
	}
	a4 := submitIn(t, m, "alpha", "a4")
	expectNoStart(t, g, "a3 holds alpha's one place")
	close(g.gate(a3))
	expectStarts(t, g, a4)
	close(g.gate(a4))
	for _, id := range []string{a1, a3, a4} {
		if j, err := m.Wait(ctx, id); err != nil || j.State != job.StateSucceeded {
			t.Fatalf("job %s: %s %v", id, j.State, err)
		}
	}
}

func TestQuotaRaisedReleasesHeldJobs(t *testing.T) {
	g := newGateExecutor()
	m, st := quotaManager(t, 3, g, map[string]int{"alpha": 1})
	a1 := submitIn(t, m, "alpha", "a1")
	expectStarts(t, g, a1)
	a2 := submitIn(t, m, "alpha", "a2")
	expectNoStart(t, g, "alpha is at its quota")
	two := 2
	if err := st.SetProjectQuotas(context.Background(), "alpha", &two, nil); err != nil {
		t.Fatal(err)
	}
	// The next job of alpha sees the room, and the held one goes first.
	a3 := submitIn(t, m, "alpha", "a3")
	expectStarts(t, g, a2)
	expectNoStart(t, g, "alpha runs 2 now")
	close(g.gate(a1))
	expectStarts(t, g, a3)
}

// On the real engine: project alpha may run one job at once, beta has no quota. alpha's second
// job waits, queued, until its first ends; beta's job runs meanwhile.
func TestQuotaOnTheEngine(t *testing.T) {
	h := newHarness(t, func(c *job.Config) { c.Workers = 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for id, max := range map[string]int{"alpha": 1, "beta": 0} {
		if err := h.St.CreateProject(ctx, store.Project{ID: id, MaxConcurrentJobs: max}); err != nil {
			t.Fatal(err)
		}
	}
	submit := func(project, code string) job.Job {
		j, err := h.M.Submit(ctx, job.Submission{Block: h.Block(code), BaseDir: h.Cfg.ShareRoots[0], Owner: "tester", Project: project})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	a1 := submit("alpha", "sleep 4")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if j, _ := h.M.Get(ctx, a1.ID); j.State == job.StateRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a1 did not start")
		}
	}
	a2 := submit("alpha", "echo a2")
	b1 := submit("beta", "echo b1")
	b, err := h.M.Wait(ctx, b1.ID)
	if err != nil || b.State != job.StateSucceeded {
		t.Fatalf("beta's job: %s %v", b.State, err)
	}
	if j, _ := h.M.Get(ctx, a1.ID); j.State.Terminal() {
		t.Fatalf("a1 ended (%s) before beta's job did: beta waited behind alpha", j.State)
	}
	if j, _ := h.M.Get(ctx, a2.ID); j.State != job.StateQueued || !strings.Contains(j.Message, "quota of project alpha") {
		t.Fatalf("a2 while a1 runs: %s %q", j.State, j.Message)
	}
	first, err := h.M.Wait(ctx, a1.ID)
	if err != nil || first.State != job.StateSucceeded {
		t.Fatalf("a1: %s %v", first.State, err)
	}
	second, err := h.M.Wait(ctx, a2.ID)
	if err != nil || second.State != job.StateSucceeded {
		t.Fatalf("a2: %s %s %v", second.State, second.Message, err)
	}
	if second.StartedAt == nil || second.StartedAt.Before(*first.FinishedAt) {
		t.Fatalf("a2 started at %v, before a1 ended at %v", second.StartedAt, first.FinishedAt)
	}
	if out := h.Output(t, a2.ID, "stdout"); out != "a2\n" {
		t.Errorf("a2's output %q", out)
	}
}
