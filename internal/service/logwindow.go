package service

import (
	"context"
	"fmt"
	"io"

	"github.com/berthproject/berth/internal/runtime"
)

// LogsWindow copies the part of the running service's output w picks (service logs --tail,
// --since) into stdout and stderr.
func (m *Manager) LogsWindow(ctx context.Context, name string, w runtime.LogWindow, stdout, stderr io.Writer) error {
	if w.Tail < 0 && w.Since.IsZero() {
		return m.Logs(ctx, name, w.Follow, stdout, stderr)
	}
	lw, ok := m.rt.(runtime.LogWindower)
	if !ok {
		return fmt.Errorf("the %s runtime cannot pick part of a service's output (--tail, --since)", m.rt.Name())
	}
	s := m.svc(name)
	s.mu.Lock()
	task := s.task
	s.mu.Unlock()
	if task == "" {
		return fmt.Errorf("service %s is not running", name)
	}
	return lw.LogsWindow(ctx, task, w, stdout, stderr)
}
