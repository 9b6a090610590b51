package job

import (
	"strings"
	"testing"
)

func TestMissingPackageHint(t *testing.T) {
	for _, c := range []struct {
		out, name string
	}{
		{"Traceback (most recent call last):\n  File \"/code/main.py\", line 1, in <module>\nModuleNotFoundError: No module named 'pandas'\n", "pandas"},
		{"ModuleNotFoundError: No module named 'sklearn.linear_model'\n", "sklearn"},
		{"Error in library(ggplot2) : there is no package called ‘ggplot2’\nExecution halted\n", "ggplot2"},
	} {
		h := MissingPackageHint([]LogChunk{{Stream: "system", Text: "image x\n"}, {Stream: "stderr", Text: c.out}})
		if !strings.Contains(h, `"`+c.name+`"`) || !strings.Contains(h, "`dependencies`") {
			t.Errorf("hint for %q: %q", c.out, h)
		}
	}
	if h := MissingPackageHint([]LogChunk{{Stream: "stderr", Text: "ValueError: bad\n"}}); h != "" {
		t.Errorf("hint for an unrelated failure: %q", h)
	}
	// berth's own lines never make a hint.
	if h := MissingPackageHint([]LogChunk{{Stream: "system", Text: "ModuleNotFoundError: No module named 'x'\n"}}); h != "" {
		t.Errorf("hint from a system line: %q", h)
	}
}
