package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

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
		m.forgetDead(ctx, name, task, t, ok)
	}
}

// forgetDead drops a service's dead container, unless a stop or a new start replaced it
// meanwhile, and records how it ended (see recordDead). The proxy stops forwarding to it at
// once; the next request starts the service again.
func (m *Manager) forgetDead(ctx context.Context, name string, task runtime.TaskID, t runtime.TaskStatus, found bool) {
	s := m.svc(name)
	s.mu.Lock()
	if s.task != task || s.busy {
		s.mu.Unlock()
		return
	}
	s.addr, s.task = "", ""
	// Busy until the state is stored, so a request's start waits for it and its history
	// reads in order: the end of this container, then the new start.
	s.busy = true
	done := make(chan struct{})
	s.stopping = done
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.busy, s.stopping = false, nil; s.mu.Unlock(); close(done) }()
	if !found {
		m.log.Warn("a running service's container is gone", "service", name, "container", string(task))
		m.removeTask(ctx, name, task)
		// A failed write is logged by setContainer; nothing else is left to undo.
		m.setContainer(ctx, name, Stopped, "", "its container is gone (the container engine restarted, or someone removed it); the next request starts it again")
		return
	}
	m.recordDead(ctx, name, t, "without berth stopping it") // a failed write is logged
}

// recordDead records a service container that ended without berth stopping it: STOPPED when
// it exited 0, else ERROR with the exit code, whether the engine killed it for memory, and its
// last output. The container is removed afterwards. when says in what circumstances.
func (m *Manager) recordDead(ctx context.Context, name string, t runtime.TaskStatus, when string) error {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	ex, werr := m.rt.Wait(wctx, t.ID) // it has ended: Wait answers at once
	cancel()
	tail := m.logTail(ctx, t.ID)
	m.removeTask(ctx, name, t.ID)
	state, reason := Error, ""
	switch {
	case werr != nil:
		reason = fmt.Sprintf("its container ended (%s) %s; how is unknown: %v", t.State, when, werr)
	case ex.OOMKilled:
		reason = fmt.Sprintf("its container ran out of memory and was killed (exit code %d, OOM) %s", ex.Code, when)
	case ex.Code == 0:
		state, reason = Stopped, fmt.Sprintf("its container exited with exit code 0 %s", when)
	default:
		reason = fmt.Sprintf("its container exited with exit code %d %s", ex.Code, when)
	}
	reason += "; the next request starts it again"
	if tail != "" {
		reason += "\nlast output:\n" + tail
	}
	m.log.Warn("a running service's container ended", "service", name, "container", string(t.ID), "state", state, "reason", reason)
	return m.setContainer(ctx, name, state, "", reason)
}

// logTail is the last lines a container wrote ("" when they cannot be read).
func (m *Manager) logTail(ctx context.Context, id runtime.TaskID) string {
	var out bytes.Buffer
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	// Only the end is shown: read only the end, so a container that printed a lot still
	// shows its last lines (reading it all may not finish in time).
	if lt, ok := m.rt.(runtime.LogTailer); ok {
		lt.LogsTail(lctx, id, logTailLines, &out, &out)
	} else {
		m.rt.Logs(lctx, id, false, &out, &out)
	}
	return lastLines(out.String(), logTailLines)
}

// logTailLines is how many of a container's last output lines a failure shows.
const logTailLines = 30
