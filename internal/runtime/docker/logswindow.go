package docker

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/docker/docker/api/types/container"

	"github.com/berthproject/berth/internal/runtime"
)

var _ runtime.LogWindower = (*Engine)(nil)

// LogsWindow copies the part of the task's output w picks, demultiplexed, into the writers.
func (e *Engine) LogsWindow(ctx context.Context, id runtime.TaskID, w runtime.LogWindow, stdout, stderr io.Writer) error {
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: w.Follow, Tail: "all"}
	if w.Tail >= 0 {
		opts.Tail = strconv.Itoa(w.Tail)
	}
	if !w.Since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", w.Since.Unix(), w.Since.Nanosecond())
	}
	return e.logs(ctx, id, opts, stdout, stderr)
}
