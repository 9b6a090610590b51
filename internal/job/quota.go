package job

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berthproject/berth/internal/store"
)

// The concurrency quota: a project runs at most its max_concurrent_jobs jobs at once (0: no
// limit). A job of a project at its quota is held: it stays queued (its message says why),
// takes no worker, and goes back to the workers, oldest first, when one of the project's jobs
// ends, so other projects' jobs are never blocked behind it. The count is this manager's: jobs
// its workers hold, from claim to end (retries' backoff included).

// quotaRecheck is how often held jobs are looked at even when nothing ends (a raised quota).
const quotaRecheck = 5 * time.Second

// quotaState is the manager's bookkeeping of the quota, guarded by Manager.mu.
type quotaState struct {
	running  map[string]int      // jobs this manager's workers hold, by project
	held     map[string][]string // queued jobs waiting for their project's quota, oldest first
	reserved map[string]string   // held jobs handed back to the workers, their place counted: their project
}

func newQuotaState() quotaState {
	return quotaState{running: map[string]int{}, held: map[string][]string{}, reserved: map[string]string{}}
}

// dispatch runs a job taken from the queue if its project's quota has room, and holds it
// otherwise.
func (m *Manager) dispatch(id string) {
	row, err := m.st.GetJob(m.ctx, id)
	if err != nil {
		// Deleted while queued (or the store failed: the job stays queued for the next start).
		if !errors.Is(err, store.ErrNotFound) {
			m.log.Error("load queued job", "job", id, "err", err)
		}
		m.unreserve(id)
		m.releaseHeld()
		return
	}
	project := row.Project
	limit := m.projectLimit(project)
	if !m.take(id, project, limit) {
		msg := fmt.Sprintf("waits for the quota of project %s: it runs at most %d job(s) at once; it starts when one of them ends", project, limit)
		if _, err := m.st.TransitionJob(m.ctx, id, []string{string(StateQueued)}, string(StateQueued), "", msg, nil); err != nil {
			m.log.Error("hold job", "job", id, "err", err)
		}
		m.log.Debug("job waits for its project's quota", "job", id, "project", project, "limit", limit)
		// Its place may have freed since it was counted: look again.
		m.releaseHeld()
		return
	}
	m.runJob(id)
	m.mu.Lock()
	if m.quota.running[project]--; m.quota.running[project] <= 0 {
		delete(m.quota.running, project)
	}
	m.mu.Unlock()
	m.releaseHeld()
}

// take counts a place for the job in its project's quota and reports whether it may run; if
// not, the job is held. A job handed back from the held ones has its place counted already.
// Jobs already held go first: a new job waits behind them.
func (m *Manager) take(id, project string, limit int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := &m.quota
	if _, ok := q.reserved[id]; ok {
		delete(q.reserved, id)
		return true
	}
	if limit > 0 && (q.running[project] >= limit || len(q.held[project]) > 0) {
		q.held[project] = append(q.held[project], id)
		return false
	}
	q.running[project]++
	return true
}

// unreserve gives back the place counted for a held job handed back to the workers that will
// not run (deleted meanwhile).
func (m *Manager) unreserve(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := &m.quota
	project, ok := q.reserved[id]
	if !ok {
		return
	}
	delete(q.reserved, id)
	if q.running[project]--; q.running[project] <= 0 {
		delete(q.running, project)
	}
}

// releaseHeld hands held jobs back to the workers, oldest first, while their project's quota
// (read again: it may have changed) has room, counting their places.
func (m *Manager) releaseHeld() {
	m.mu.Lock()
	var projects []string
	for p, ids := range m.quota.held {
		if len(ids) > 0 {
			projects = append(projects, p)
		}
	}
	m.mu.Unlock()
	for _, p := range projects {
		limit := m.projectLimit(p)
		m.mu.Lock()
		q := &m.quota
		for len(q.held[p]) > 0 && (limit == 0 || q.running[p] < limit) {
			id := q.held[p][0]
			select {
			case m.queue <- id:
			default:
				// The in-memory queue is full: the job stays held (and queued in the store).
				m.mu.Unlock()
				return
			}
			q.held[p] = q.held[p][1:]
			q.running[p]++
			q.reserved[id] = p
		}
		if len(q.held[p]) == 0 {
			delete(q.held, p)
		}
		m.mu.Unlock()
	}
}

// projectLimit is the project's max_concurrent_jobs (0: no limit, or no such project).
func (m *Manager) projectLimit(project string) int {
	p, err := m.st.GetProject(m.ctx, project)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, context.Canceled) {
			m.log.Warn("read project quota", "project", project, "err", err)
		}
		return 0
	}
	return p.MaxConcurrentJobs
}

// recheckHeld looks at the held jobs every quotaRecheck, until the manager stops.
func (m *Manager) recheckHeld() {
	defer m.wg.Done()
	t := time.NewTicker(quotaRecheck)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			m.releaseHeld()
		}
	}
}
