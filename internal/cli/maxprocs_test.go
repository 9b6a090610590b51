package cli

import (
	"runtime"
	"testing"
)

func TestSetProcs(t *testing.T) {
	was := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(was) })
	t.Setenv("GOMAXPROCS", "")
	startWas := startProcs
	t.Cleanup(func() { startProcs = startWas })
	startProcs = 4
	for range 2 { // the same answer each time
		if got := setProcs(0); got != 2 || runtime.GOMAXPROCS(0) != 2 {
			t.Fatalf("default on 4 CPUs: %d (in force %d), want half", got, runtime.GOMAXPROCS(0))
		}
	}
	startProcs = 1
	if got := setProcs(0); got != 1 {
		t.Fatalf("default on 1 CPU: %d, want 1", got)
	}
	if got := setProcs(3); got != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Fatalf("--gomaxprocs 3: %d", got)
	}
	// The variable chose: left as the runtime read it.
	t.Setenv("GOMAXPROCS", "3")
	runtime.GOMAXPROCS(3)
	if got := setProcs(0); got != 3 {
		t.Fatalf("with GOMAXPROCS=3 set: %d", got)
	}
}
