package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/runtime"
)

// jobLogWindower is the job manager's LogsWindow (logs ?tail= and ?since=).
type jobLogWindower interface {
	LogsWindow(ctx context.Context, id string, w job.LogWindow, fn func(job.LogChunk) error) error
}

var errNoLogWindow = errors.New("this server cannot pick part of a job's output (tail, since)")

// logWindow reads a logs request's ?tail= and ?since=; on bad input it answers 400 naming
// the parameter and returns false.
func logWindow(w http.ResponseWriter, r *http.Request) (job.LogWindow, bool) {
	q := r.URL.Query()
	win, field, err := job.ParseLogWindow(q.Get("tail"), q.Get("since"), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error(), field)
		return win, false
	}
	return win, true
}

// jobLogs delivers the part of a job's output win picks.
func (s *Server) jobLogs(ctx context.Context, id string, win job.LogWindow, fn func(job.LogChunk) error) error {
	if win.Tail < 0 && win.Since.IsZero() {
		return s.d.Jobs.Logs(ctx, id, win.Follow, fn)
	}
	lw, ok := s.d.Jobs.(jobLogWindower)
	if !ok {
		return errNoLogWindow
	}
	return lw.LogsWindow(ctx, id, win, fn)
}

// serviceWindow is a job log window as the runtime's.
func serviceWindow(win job.LogWindow) runtime.LogWindow {
	return runtime.LogWindow{Follow: win.Follow, Tail: win.Tail, Since: win.Since}
}
