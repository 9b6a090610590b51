package image

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// debianSixImage builds, without network, an image FROM the python base that installs
// Debian's python3-six with dpkg the way an air-gapped component image does: the .deb is
// fetched on the host (apt-get download) into the build context.
func debianSixImage(t *testing.T, eng *docker.Engine) string {
	t.Helper()
	dir := t.TempDir()
	get := exec.Command("apt-get", "download", "python3-six")
	get.Dir = dir
	if out, err := get.CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("apt-get download python3-six: %v\n%s", err, out)
		}
		t.Skipf("cannot fetch python3-six on the host (apt-get download): %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "python3-six_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("apt-get download left %v", debs)
	}
	if err := os.Rename(debs[0], filepath.Join(dir, "python3-six.deb")); err != nil {
		t.Fatal(err)
	}
	base, _ := BaseRef("python")
	df := "FROM " + base + "\nUSER root\nCOPY python3-six.deb /tmp/\n" +
		"RUN dpkg -i /tmp/python3-six.deb && rm /tmp/python3-six.deb\nUSER 1000:1000\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := "berth/test-debian-six:" + uniq()
	var log strings.Builder
	if _, err := eng.BuildImage(context.Background(), runtime.BuildSpec{ContextDir: dir, Tags: []string{ref},
		Labels: enginetest.Labels(t), Network: "none"}, &log); err != nil {
		t.Fatalf("build %s: %v\n%s", ref, err, log.String())
	}
	t.Cleanup(func() { eng.RemoveImage(context.Background(), ref) })
	return ref
}

// TestPythonBaseSeesDebianPackages: a Debian python3-* package installed into an image
// derived from the python base imports as the non-root user with the base's python3 (the
// venv on PATH), which is Debian's interpreter, so compiled Debian packages load too.
func TestPythonBaseSeesDebianPackages(t *testing.T) {
	eng := requireBase(t, "python")
	ref := debianSixImage(t, eng)
	out := runIn(t, eng, ref, "sh", "-c",
		`python3 -c 'import sys; print(sys.prefix, sys.version)' && /usr/bin/python3 -c 'import sys; print(sys.version)'`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "/opt/berth/venv ") || strings.TrimPrefix(lines[0], "/opt/berth/venv ") != lines[1] {
		t.Fatalf("python3 on PATH must be the venv over Debian's own python3:\n%s", out)
	}
	if out := runIn(t, eng, ref, "python3", "-c", "import six; print(six.__version__, six.__file__)"); !strings.HasPrefix(out, "1.") ||
		!strings.HasSuffix(out, " /usr/lib/python3/dist-packages/six.py\n") {
		t.Fatalf("import six printed %q", out)
	}
}

// TestPipDependencyWinsOverDebianPackage: a block's pip dependency built onto an image that
// has the Debian package of the same name is the one imported; Debian's copy stays in place.
func TestPipDependencyWinsOverDebianPackage(t *testing.T) {
	eng := requireBase(t, "python")
	ref := debianSixImage(t, eng)
	m := testManager(t, eng, indexWith(t, "six", "99.0.0", "42"))
	res, err := m.Ensure(context.Background(), Request{Language: "python", BaseImage: ref, Dependencies: []string{"six==99.0.0"}}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.RemoveImage(context.Background(), res.Ref) })
	out := runIn(t, eng, res.Ref, "python3", "-c",
		"import os, six; print(six.VALUE, six.__file__, os.path.exists('/usr/lib/python3/dist-packages/six.py'))")
	if out != "42 /opt/berth/venv/lib/python3.11/site-packages/six/__init__.py True\n" {
		t.Fatalf("import six in the generated image printed %q", out)
	}
}
