// Package enginetest is the one helper real-engine tests go through: it connects to the
// engine (skipping without one, failing under CI=true), labels what tests create so a crashed
// run can be swept, and builds the tiny busybox image tests run their probes in.
package enginetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker"
)

// Require returns an engine for a real-engine test. Without an engine the test is skipped,
// except under CI=true, where it fails.
func Require(t testing.TB) *docker.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := docker.New(ctx, docker.Options{})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("this test needs a Docker Engine and CI=true forbids skipping: %v", err)
		}
		t.Skipf("no Docker Engine: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// Labels are the labels every object a test creates carries.
func Labels(t testing.TB) map[string]string {
	return map[string]string{runtime.LabelManaged: "true", runtime.LabelTest: "1"}
}

// Cleanup removes, when the test ends (even failed), every container, network and image that
// carries all the labels.
func Cleanup(t testing.TB, e *docker.Engine, labels map[string]string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := e.Sweep(ctx, labels); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
}

const busyboxDockerfile = `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY passwd group /etc/
RUN ["/bin/busybox", "sh", "-c", "mkdir -p /tmp /data /code /usr/bin && chmod 1777 /tmp && chown 1000:1000 /data"]
USER 1000:1000
WORKDIR /data
`

const passwd = "root:x:0:0:root:/root:/bin/sh\nberth:x:1000:1000:berth:/tmp:/bin/sh\n"
const group = "root:x:0:\nberth:x:1000:\n"

var (
	bbMu  sync.Mutex
	bbRef string
)

// Busybox returns a tiny image FROM scratch with the host's static busybox and a user 1000,
// built once and cached across runs by its recipe hash.
func Busybox(t testing.TB, e *docker.Engine) string {
	t.Helper()
	bbMu.Lock()
	defer bbMu.Unlock()
	if bbRef != "" {
		return bbRef
	}
	bbRef = buildBusybox(t, e)
	return bbRef
}

// buildBusybox builds the busybox image in e unless it is there already, and returns its tag.
func buildBusybox(t testing.TB, e *docker.Engine) string {
	t.Helper()
	var bin []byte
	var err error
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if bin, err = os.ReadFile(p); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("the host's static busybox is missing (apt-get install busybox-static): %v", err)
	}
	h := sha256.New()
	for _, part := range [][]byte{bin, []byte(busyboxDockerfile), []byte(passwd), []byte(group)} {
		h.Write(part)
		h.Write([]byte{0})
	}
	hash := hex.EncodeToString(h.Sum(nil))
	ref := "berth/test-busybox:" + hash[:12]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := e.InspectImage(ctx, ref); err == nil {
		return ref
	}
	dir := t.TempDir()
	files := map[string][]byte{"busybox": bin, "Dockerfile": []byte(busyboxDockerfile), "passwd": []byte(passwd), "group": []byte(group)}
	for name, data := range files {
		mode := os.FileMode(0o644)
		if name == "busybox" {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, mode); err != nil {
			t.Fatal(err)
		}
	}
	var log bytes.Buffer
	_, err = e.BuildImage(ctx, runtime.BuildSpec{
		ContextDir: dir, Tags: []string{ref},
		Labels: map[string]string{runtime.LabelKind: runtime.KindBase, runtime.LabelRecipe: hash},
	}, io.Writer(&log))
	if err != nil {
		t.Fatalf("build %s: %v\n%s", ref, err, log.String())
	}
	return ref
}

// Unique returns a short random-ish suffix for names a test creates.
func Unique(t testing.TB) string {
	return fmt.Sprintf("%x", sha256.Sum256([]byte(fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano()))))[:10]
}
