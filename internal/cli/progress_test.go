package cli

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestProgressPrintsElapsedNotPromises: a long step prints how long it has taken so far and
// what was measured, and nothing after it is stopped.
func TestProgressPrintsElapsedNotPromises(t *testing.T) {
	var buf bytes.Buffer
	w := &lockedWriter{w: &buf}
	stop := progress(w, "bootstrap python", measuredBootstrap["python"], 20*time.Millisecond)
	time.Sleep(70 * time.Millisecond)
	stop()
	w.mu.Lock()
	got := buf.String()
	w.mu.Unlock()
	if !regexp.MustCompile(`berth: bootstrap python: \d+s so far \(measured on a loaded 2-core machine: about 4 min\)`).MatchString(got) {
		t.Fatalf("progress lines:\n%s", got)
	}
	n := strings.Count(got, "\n")
	time.Sleep(50 * time.Millisecond)
	w.mu.Lock()
	after := strings.Count(buf.String(), "\n")
	w.mu.Unlock()
	if after != n {
		t.Fatalf("progress printed after stop: %d lines, then %d", n, after)
	}
}
