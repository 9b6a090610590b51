package job

import "testing"

func TestExitSignal(t *testing.T) {
	for _, c := range []struct {
		code, sig int
		name      string
		self      bool
	}{
		{0, 0, "", false}, {1, 0, "", false}, {128, 0, "", false},
		{137, 9, "SIGKILL", false}, {143, 15, "SIGTERM", false}, {130, 2, "SIGINT", false},
		{139, 11, "SIGSEGV", true}, {134, 6, "SIGABRT", true}, {141, 13, "SIGPIPE", true},
		{162, 34, "SIGRTMIN+0", false}, {193, 0, "", false},
	} {
		sig := exitSignal(c.code)
		if sig != c.sig {
			t.Errorf("exitSignal(%d) = %d, want %d", c.code, sig, c.sig)
			continue
		}
		if sig == 0 {
			continue
		}
		if got := signalName(sig); got != c.name {
			t.Errorf("signalName(%d) = %q, want %q", sig, got, c.name)
		}
		if got := selfInflicted(sig); got != c.self {
			t.Errorf("selfInflicted(%d) = %v, want %v", sig, got, c.self)
		}
	}
}
