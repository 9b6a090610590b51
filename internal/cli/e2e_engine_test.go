package cli_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
)

// TestRunAndServerSayWhatTheEngineEnforces: `berth run` and `berth server` print, at start-up,
// one line of what the engine can enforce: its cgroup version, its storage quota, its CPUs,
// its GPU runtime.
func TestRunAndServerSayWhatTheEngineEnforces(t *testing.T) {
	eng := enginetest.Require(t)
	ctx := context.Background()
	if _, err := eng.InspectImage(ctx, "berth/shell"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the shell base is missing: `make test` bootstraps it")
		}
		t.Skip("shell base not built")
	}
	caps, err := eng.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	says := func(who, out string) {
		t.Helper()
		var line string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "berth: engine: ") {
				line = l
			}
		}
		quota := "no per-container disk quota"
		if caps.StorageQuota {
			quota = "(per-container disk quota)"
		}
		for _, want := range []string{"docker ", "cgroup v" + caps.CgroupVersion, "storage " + caps.StorageDriver, quota,
			fmt.Sprintf("%d CPU", caps.CPUs), "GPU runtime"} {
			if !strings.Contains(line, want) {
				t.Fatalf("%s: engine line %q does not say %q; output:\n%s", who, line, want, out)
			}
		}
	}

	r := berth(t, nil, "--data-dir", t.TempDir(), "run", "../../examples/shell-hello/block.yaml")
	if r.code != 0 {
		t.Fatalf("berth run exited %d\n%s", r.code, r.stderr)
	}
	says("berth run", r.stderr)
	if r := berth(t, nil, "--data-dir", t.TempDir(), "run", "-q", "../../examples/shell-hello/block.yaml"); strings.Contains(r.stderr, "berth: engine:") {
		t.Fatalf("berth run -q printed the engine line:\n%s", r.stderr)
	}

	dataDir := t.TempDir()
	sum := sha256.Sum256([]byte(dataDir))
	t.Cleanup(func() {
		eng.Sweep(context.Background(), map[string]string{runtime.LabelTest: "1", runtime.LabelInstance: "srv-" + hex.EncodeToString(sum[:])[:10]})
	})
	s := startServer(t, dataDir, freePort(t))
	says("berth server", s.log.String())
}
