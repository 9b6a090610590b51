package service_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/runtime"
)

// TestServiceLogsTailAndSince: a running service's output can be read from its last N lines
// (service logs --tail) and from a time on (--since).
func TestServiceLogsTailAndSince(t *testing.T) {
	f := newFixture(t, nil)
	orig, err := os.ReadFile(filepath.Join("../../examples/service-echo", "server.py"))
	if err != nil {
		t.Fatal(err)
	}
	// Ten lines at start; once serving, three ticks a second apart.
	server := "import threading, time\nfor i in range(1, 11):\n    print('line %d' % i, flush=True)\n" +
		"def ticks():\n    for i in range(1, 4):\n        time.sleep(1)\n        print('tick %d' % i, flush=True)\n" +
		"threading.Thread(target=ticks, daemon=True).start()\n" + string(orig)
	ctx := context.Background()
	t0 := time.Now()
	if _, err := f.m.Create(ctx, "", "logs", "", exampleContext(t, `{"on_demand": true}`, map[string]string{"server.py": server})); err != nil {
		t.Fatal(err)
	}
	f.waitImage(t, "logs", "READY")
	t.Logf("image ready after %s", time.Since(t0))
	if _, err := f.m.Ensure(ctx, "logs"); err != nil {
		t.Fatal(err)
	}
	t.Logf("started after %s", time.Since(t0))

	read := func(w runtime.LogWindow) string {
		t.Helper()
		var sb strings.Builder
		if err := f.m.LogsWindow(ctx, "logs", w, &sb, &sb); err != nil {
			t.Fatal(err)
		}
		return sb.String()
	}
	all := runtime.LogWindow{Tail: -1}
	waitFor := func(s string) string {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
			if out := read(all); strings.Contains(out, s) {
				return out
			} else if time.Now().After(deadline) {
				t.Fatalf("the service never printed %q: %q", s, out)
			}
		}
	}
	if out := waitFor("tick 1\n"); strings.Contains(out, "tick 2") {
		t.Fatalf("ticks came too fast: %q", out)
	}
	since := time.Now()
	out := waitFor("tick 3\n")
	lines := strings.SplitAfter(strings.TrimSuffix(out, "\n"), "\n")
	if want := strings.Join(lines[len(lines)-3:], "") + "\n"; read(runtime.LogWindow{Tail: 3}) != want {
		t.Fatalf("tail 3 = %q, want %q (of %q)", read(runtime.LogWindow{Tail: 3}), want, out)
	}
	got := read(runtime.LogWindow{Tail: -1, Since: since})
	if !strings.Contains(got, "tick 2\n") || !strings.Contains(got, "tick 3\n") || strings.Contains(got, "tick 1") || strings.Contains(got, "line 1") {
		t.Fatalf("since the pause: %q", got)
	}
}
