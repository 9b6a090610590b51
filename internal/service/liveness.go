package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/berthproject/berth/internal/runtime"
)

// checkAlive forgets running services whose container no longer runs (the container engine
// restarted and stopped or lost it, or the service exited), so the proxy stops forwarding to
// a dead address and the next request starts the service again. An engine that does not
// answer changes nothing: the services are looked at again when it does.
func (m *Manager) checkAlive(ctx context.Context) {
	// What runs is read before the engine is asked, so a start that ends in between is not
	// taken for a dead container.
	running := map[string]runtime.TaskID{}
	m.mu.Lock()
	for name, s := range m.svcs {
		s.mu.Lock()
		if s.addr != "" && s.task != "" && !s.busy {
			running[name] = s.task
		}
		s.mu.Unlock()
	}
	m.mu.Unlock()
	if len(running) == 0 {
		return
	}
	sel := map[string]string{runtime.LabelKind: runtime.KindService}
	if m.cfg.Instance != "" {
		sel[runtime.LabelInstance] = m.cfg.Instance
	}
	tasks, err := m.rt.List(ctx, sel)
	if err != nil {
		if !errors.Is(err, runtime.ErrUnavailable) && ctx.Err() == nil {
			m.log.Warn("check that services run", "err", err)
		}
		return
	}
	state := map[runtime.TaskID]runtime.TaskStatus{}
	for _, t := range tasks {
		state[t.ID] = t
	}
	for name, task := range running {
		t, ok := state[task]
		if ok && t.Running {
			continue
		}
		reason := "its container is gone (the container engine restarted?); the next request starts it again"
		if ok {
			reason = fmt.Sprintf("its container stopped (%s) without berth stopping it (the container engine restarted, or the service exited); the next request starts it again", t.State)
		}
		m.forgetDead(ctx, name, task, reason)
	}
}

// forgetDead drops a service's dead container, unless a stop or a new start replaced it
// meanwhile, and stores STOPPED with the reason.
func (m *Manager) forgetDead(ctx context.Context, name string, task runtime.TaskID, reason string) {
	s := m.svc(name)
	s.mu.Lock()
	if s.task != task || s.busy {
		s.mu.Unlock()
		return
	}
	s.addr, s.task = "", ""
	s.mu.Unlock()
	m.log.Warn("a running service's container no longer runs", "service", name, "container", string(task), "reason", reason)
	if err := m.rt.Remove(ctx, task); err != nil {
		m.log.Warn("remove a dead service container", "service", name, "err", err)
	}
	m.st.SetContainerState(ctx, name, Stopped, "", reason)
}
