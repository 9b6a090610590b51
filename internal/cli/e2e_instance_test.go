package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// TestParallelRunsWithDifferentDataDirs: two `berth run`s with their own data dirs at once both
// succeed. The second starts while the first's container runs; its start-up clean-up must not
// take the first's container for one of its own.
func TestParallelRunsWithDifferentDataDirs(t *testing.T) {
	eng := enginetest.Require(t)
	img := enginetest.Busybox(t, eng)
	block := func(name, code string) string {
		dir := t.TempDir()
		p := filepath.Join(dir, "block.yaml")
		spec := fmt.Sprintf("name: %s\nlanguage: shell\nimage: %s\ncode: |\n  %s\n", name, img, code)
		if err := os.WriteFile(p, []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	slow := block("slow", "echo started; sleep 3; echo slow-done")
	fast := block("fast", "echo fast-done")
	dataA, dataB := t.TempDir(), t.TempDir()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	a := exec.CommandContext(ctx, berthBinary(t), "--data-dir", dataA, "run", slow)
	var aErr bytes.Buffer
	a.Stderr = &aErr
	pipe, err := a.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the first run's script is running, then start the second.
	var aOut strings.Builder
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		aOut.WriteString(sc.Text() + "\n")
		if sc.Text() == "started" {
			break
		}
	}
	if !strings.Contains(aOut.String(), "started") {
		a.Wait()
		t.Fatalf("the first run never started its script\nstdout:\n%s\nstderr:\n%s", aOut.String(), aErr.String())
	}
	b := berth(t, nil, "--data-dir", dataB, "run", fast)
	rest, _ := io.ReadAll(pipe)
	aOut.Write(rest)
	aCode := 0
	if err := a.Wait(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		aCode = ee.ExitCode()
	}
	if b.code != 0 || !strings.Contains(b.stdout, "fast-done") {
		t.Errorf("second run exited %d\nstdout:\n%s\nstderr:\n%s", b.code, b.stdout, b.stderr)
	}
	if aCode != 0 || !strings.Contains(aOut.String(), "slow-done") {
		t.Errorf("first run exited %d\nstdout:\n%s\nstderr:\n%s", aCode, aOut.String(), aErr.String())
	}
}

// TestSweepTouchesOnlyItsDataDir: `berth sweep` removes the containers of its data dir's
// instances (server and berth run) and leaves another data dir's; it refuses while a server
// holds the data dir.
func TestSweepTouchesOnlyItsDataDir(t *testing.T) {
	eng := enginetest.Require(t)
	img := enginetest.Busybox(t, eng)
	u := enginetest.Unique(t)
	labels := enginetest.Labels(t)
	labels["berth.test-run"] = u
	enginetest.Cleanup(t, eng, labels)
	ctx := context.Background()

	mine, other := t.TempDir(), t.TempDir()
	ids := map[string]string{
		mine: "test-" + u + "-s", filepath.Join(mine, "run"): "test-" + u + "-r",
		other: "test-" + u + "-o",
	}
	for dir, id := range ids {
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, "instance"), []byte(id+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		l := map[string]string{runtime.LabelInstance: id, runtime.LabelKind: runtime.KindJob, runtime.LabelJob: "left-" + id}
		for k, v := range labels {
			l[k] = v
		}
		if _, err := eng.Start(ctx, runtime.TaskSpec{Image: img, Cmd: []string{"sleep", "600"}, Labels: l, Network: "none"}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(id string) int {
		ts, err := eng.List(ctx, map[string]string{runtime.LabelInstance: id})
		if err != nil {
			t.Fatal(err)
		}
		return len(ts)
	}

	// A server holding the data dir: nothing is swept.
	lock, err := os.OpenFile(filepath.Join(mine, "server.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
	if r := berth(t, nil, "--data-dir", mine, "sweep"); r.code == 0 || !strings.Contains(r.stderr, "server is using") {
		t.Fatalf("sweep under a running server: exit %d, stderr %s", r.code, r.stderr)
	}
	if count(ids[mine]) != 1 {
		t.Fatal("the sweep refused but removed a container")
	}
	lock.Close()

	if r := berth(t, nil, "--data-dir", mine, "sweep"); r.code != 0 {
		t.Fatalf("sweep: exit %d, stderr %s", r.code, r.stderr)
	}
	if n := count(ids[mine]) + count(ids[filepath.Join(mine, "run")]); n != 0 {
		t.Errorf("%d container(s) of the swept data dir remain", n)
	}
	if count(ids[other]) != 1 {
		t.Errorf("the sweep removed another data dir's container")
	}
}

// TestRunOutRefusesLinks: `berth run --out` never copies what a link in /data/out points to
// (a host file here): the run fails as a user error naming the path, and --out gets nothing.
func TestRunOutRefusesLinks(t *testing.T) {
	eng := enginetest.Require(t)
	img := enginetest.Busybox(t, eng)
	secret := filepath.Join(t.TempDir(), "host-secret.txt")
	if err := os.WriteFile(secret, []byte("HOST-SECRET-4711\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spec := fmt.Sprintf("name: linker\nlanguage: shell\nimage: %s\ncode: |\n  echo fine > /data/out/ok.txt\n  ln -s %s /data/out/stolen.txt\n", img, secret)
	p := filepath.Join(dir, "block.yaml")
	if err := os.WriteFile(p, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	r := berth(t, nil, "--data-dir", t.TempDir(), "run", "--out", out, p)
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "stolen.txt") || !strings.Contains(r.stdout+r.stderr, "link") {
		t.Fatalf("run: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	filepath.Walk(out, func(path string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b, _ := os.ReadFile(path)
			if strings.Contains(string(b), "HOST-SECRET") {
				t.Errorf("%s holds the host file's content", path)
			}
		}
		return nil
	})
}
