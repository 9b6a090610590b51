package block

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/image"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/pkgindex"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
	"github.com/berthproject/berth/internal/spec"
)

// pythonHarness is a harness whose generated images install from a pip index served on
// loopback (holding one package nobody asks for); it skips outside CI without the python base.
func pythonHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, nil)
	if _, err := h.Eng.InspectImage(context.Background(), "berth/python:3.11"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the python base is missing: `make test` bootstraps it")
		}
		t.Skip("python base not built")
	}
	ix := pkgindex.NewIndex()
	if err := ix.AddWheel("berth-present-"+enginetest.Unique(t), "1.0.0", map[string][]byte{"present/__init__.py": []byte("")}); err != nil {
		t.Fatal(err)
	}
	url, stop, err := pkgindex.Serve(context.Background(), "127.0.0.1:0", ix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	cfg := image.DefaultConfig()
	cfg.PipIndexURL = url + "/simple/"
	cfg.LogDir = t.TempDir()
	cfg.ExtraLabels = enginetest.Labels(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.M.Close(ctx)
	h.ImageConfig = &cfg
	h.Start(t)
	return h
}

// TestMissingDependencyIsTheUsersError: a block whose dependency the index does not have ends
// failed as user_error (not internal), its message naming the package and quoting pip's own
// line without escape codes or the generated Dockerfile; the job names its build log.
func TestMissingDependencyIsTheUsersError(t *testing.T) {
	h := pythonHarness(t)
	missing := "berth-missing-" + enginetest.Unique(t)
	j, _ := h.Run(t, spec.Block{Name: "t", Language: spec.LangPython, Code: "print(1)\n", Dependencies: []string{missing}})
	if j.State != job.StateFailed || j.Reason != job.ReasonUserError {
		t.Fatalf("job %s (%s): %s, want failed (user_error)", j.State, j.Reason, j.Message)
	}
	for _, want := range []string{`"` + missing + `"`, "ERROR: No matching distribution found for " + missing, "build-log"} {
		if !strings.Contains(j.Message, want) {
			t.Fatalf("message %q does not contain %q", j.Message, want)
		}
	}
	if strings.Contains(j.Message, "\x1b") || strings.Contains(j.Message, "RUN ") {
		t.Fatalf("message %q has escape codes or the Dockerfile", j.Message)
	}
	if j.SpecHash == "" || !strings.Contains(j.Message, j.SpecHash[:16]) {
		t.Fatalf("the job's spec hash %q (naming the build log) is not in %q", j.SpecHash, j.Message)
	}
}

// TestModuleNotFoundHintsAtDependencies: a script dying of ModuleNotFoundError fails with a
// message that names the module and the dependencies field.
func TestModuleNotFoundHintsAtDependencies(t *testing.T) {
	h := pythonHarness(t)
	j, out := h.Run(t, spec.Block{Name: "t", Language: spec.LangPython, Code: "import berth_absent_mod\n"})
	if j.State != job.StateFailed || !strings.Contains(out, "ModuleNotFoundError") {
		t.Fatalf("job %s (%s): %s\n%s", j.State, j.Reason, j.Message, out)
	}
	if !strings.Contains(j.Message, `"berth_absent_mod"`) || !strings.Contains(j.Message, "`dependencies`") {
		t.Fatalf("message %q has no hint naming the module and dependencies", j.Message)
	}
	// A plain failure gets no hint.
	j, _ = h.Run(t, spec.Block{Name: "t", Language: spec.LangPython, Code: "raise SystemExit(3)\n"})
	if j.Reason != job.ReasonAppError || strings.Contains(j.Message, "hint") {
		t.Fatalf("plain failure: %s (%s): %s", j.State, j.Reason, j.Message)
	}
}
