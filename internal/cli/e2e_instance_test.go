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
	"testing"
	"time"

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
