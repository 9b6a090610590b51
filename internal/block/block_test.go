package block

import "testing"

func TestSafeRelPath(t *testing.T) {
	for p, want := range map[string]bool{"main.py": true, "lib/x.py": true, "../x": false, "/etc/passwd": false,
		"a/../../b": false, "": false, ".": false, "a\\b": false, "./a": false} {
		if got := safeRelPath(p); got != want {
			t.Errorf("safeRelPath(%q) = %v", p, got)
		}
	}
}
