package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ErrActive: the job has not ended (deleting it needs force, which cancels it first).
var ErrActive = errors.New("job: not finished")

// Delete removes an ended job: its folder (workspace, kept outputs, stored output) and its
// record. A job still queued or running is ErrActive unless force, which cancels it and
// waits (until ctx ends) for it to end first. It returns what went, in words.
func (m *Manager) Delete(ctx context.Context, id string, force bool) ([]string, error) {
	j, err := m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	var removed []string
	if !j.State.Terminal() {
		if !force {
			return nil, fmt.Errorf("job %s is %s: cancel it first, or delete with force: %w", id, j.State, ErrActive)
		}
		if _, err := m.Cancel(ctx, id); err != nil && !errors.Is(err, ErrTerminal) {
			return nil, fmt.Errorf("delete job %s: cancel: %w", id, err)
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		j, err = m.Wait(wctx, id)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("delete job %s: wait for it to end after cancelling: %w", id, err)
		}
		removed = append(removed, "cancelled it ("+string(j.State)+")")
	}
	// The store may say the job ended while this process still cleans up after it (removes its
	// container, saves its output): let that finish, or it would write into the folder again.
	for !m.settled(id) {
		select {
		case <-ctx.Done():
			return removed, fmt.Errorf("delete job %s: wait for its clean-up: %w", id, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	dir := m.jobDir(id)
	for _, p := range []struct{ rel, what string }{{"work", "workspace"}, {"out", "kept outputs"}, {"output.json", "stored output (logs)"}} {
		if _, err := os.Lstat(filepath.Join(dir, p.rel)); err == nil {
			removed = append(removed, p.what)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return removed, fmt.Errorf("delete job %s: remove its folder: %w", id, err)
	}
	removed = append(removed, "folder "+dir)
	if err := m.st.DeleteJob(ctx, id); err != nil {
		return removed, fmt.Errorf("delete job %s: %w", id, err)
	}
	removed = append(removed, "record")
	return removed, nil
}

// settled reports whether this process has finished with the job (no worker runs it, its
// output is saved).
func (m *Manager) settled(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active[id] == nil && m.logs[id] == nil
}
