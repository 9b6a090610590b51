package job

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// LogWindow picks part of a job's output (job logs --tail, --since).
type LogWindow struct {
	Follow bool
	// Tail keeps only the last Tail lines of the script's output (stdout and stderr counted
	// together) written before the call, and berth's own lines from the first of them on;
	// < 0 keeps all of it. Later output (Follow) is all delivered.
	Tail int
	// Since drops what was written before it (zero: nothing dropped).
	Since time.Time
}

// LogsWindow calls fn with the part of the job's output w picks, in order, split into lines
// when a tail is asked for. With w.Follow it keeps delivering until the job has ended and all
// its output was delivered, or ctx ends.
func (m *Manager) LogsWindow(ctx context.Context, id string, w LogWindow, fn func(LogChunk) error) error {
	if w.Tail < 0 && w.Since.IsZero() {
		return m.Logs(ctx, id, w.Follow, fn)
	}
	emit := func(c LogChunk) error {
		if !w.Since.IsZero() && c.Time.Before(w.Since) {
			return nil
		}
		return fn(c)
	}
	m.mu.Lock()
	lb := m.logs[id]
	m.mu.Unlock()
	if lb == nil {
		// The job ended: its output is stored.
		var all []LogChunk
		if err := m.Logs(ctx, id, false, func(c LogChunk) error { all = append(all, c); return nil }); err != nil {
			return err
		}
		return emitAll(tailLines(sinceTime(all, w.Since), w.Tail), emit)
	}
	backlog, cursor, closed, changed := lb.since(0)
	if err := emitAll(tailLines(sinceTime(backlog, w.Since), w.Tail), emit); err != nil {
		return err
	}
	for w.Follow && !closed {
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
		var chunks []LogChunk
		chunks, cursor, closed, changed = lb.since(cursor)
		if err := emitAll(chunks, emit); err != nil {
			return err
		}
	}
	return nil
}

func emitAll(chunks []LogChunk, fn func(LogChunk) error) error {
	for _, c := range chunks {
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

func sinceTime(chunks []LogChunk, since time.Time) []LogChunk {
	if since.IsZero() {
		return chunks
	}
	out := chunks[:0:0]
	for _, c := range chunks {
		if !c.Time.Before(since) {
			out = append(out, c)
		}
	}
	return out
}

// tailLines keeps the last n lines of the script's output (stdout, stderr) and berth's lines
// from the first of them on, one chunk a line; n < 0 keeps everything as it is.
func tailLines(chunks []LogChunk, n int) []LogChunk {
	if n < 0 {
		return chunks
	}
	var lines []LogChunk
	for _, c := range chunks {
		for _, l := range strings.SplitAfter(c.Text, "\n") {
			if l != "" {
				lines = append(lines, LogChunk{Stream: c.Stream, Text: l, Time: c.Time})
			}
		}
	}
	start, seen := len(lines), 0
	for i := len(lines) - 1; i >= 0 && seen < n; i-- {
		if lines[i].Stream != "system" {
			seen++
			start = i
		}
	}
	if n == 0 {
		return nil
	}
	if seen < n {
		start = 0 // fewer lines than asked for: all of them
	}
	return lines[start:]
}

// ParseLogWindow reads ?tail= and ?since= (the API's and the CLI's words): tail a count of
// lines or "all"; since a duration back from now (10m, 1h30m) or an RFC 3339 time. It returns
// the field at fault with an error.
func ParseLogWindow(tail, since string, now time.Time) (LogWindow, string, error) {
	w := LogWindow{Tail: -1}
	if tail != "" && tail != "all" {
		var n int
		if _, err := fmt.Sscanf(tail, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != tail {
			return w, "tail", fmt.Errorf("tail: %q is not a number of lines (0 or more, or all)", tail)
		}
		w.Tail = n
	}
	if since != "" {
		if d, err := time.ParseDuration(since); err == nil {
			if d < 0 {
				return w, "since", fmt.Errorf("since: %q is negative; give how far back, e.g. 10m", since)
			}
			w.Since = now.Add(-d)
		} else if t, err := time.Parse(time.RFC3339Nano, since); err == nil {
			w.Since = t
		} else {
			return w, "since", fmt.Errorf("since: %q is neither a duration (e.g. 10m, 1h30m) nor an RFC 3339 time", since)
		}
	}
	return w, "", nil
}
