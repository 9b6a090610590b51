package block

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berthproject/berth/internal/job"
)

// bound is how much less free space the host may have after a capped job than before: the
// job's folder is removed, so what remains is noise from whatever else runs on the machine.
const freeSpaceBound = 512 << 20

// freeBytes is the space left for root on the filesystem holding dir.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var s syscall.Statfs_t
	if err := syscall.Statfs(dir, &s); err != nil {
		t.Fatal(err)
	}
	return int64(s.Bfree) * s.Bsize
}

// TestBlockDiskLimit: a block that writes far past its /data cap is killed, ends
// failed/disk_limit with a message naming the cap, keeps nothing, and the host gets its space
// back.
func TestBlockDiskLimit(t *testing.T) {
	h := newHarness(t, nil)
	os.MkdirAll(h.Cfg.DataDir, 0o755)
	before := freeBytes(t, h.Cfg.DataDir)
	b := h.Block("dd if=/dev/zero of=/data/out/big bs=1M count=2000; echo finished")
	b.Limits.Disk = 20 << 20
	j, out := h.Run(t, b)
	if j.State != job.StateFailed || j.Reason != job.ReasonDiskLimit {
		t.Fatalf("state %s/%s (%s) exit %v out %q", j.State, j.Reason, j.Message, j.ExitCode, out)
	}
	t.Logf("message: %s", j.Message)
	if !strings.Contains(j.Message, "20MiB") || !strings.Contains(j.Message, "/data") {
		t.Errorf("message %q does not name the cap", j.Message)
	}
	if strings.Contains(out, "finished") {
		t.Errorf("the script ran to its end: %q", out)
	}
	if j.OutputDir != "" {
		t.Errorf("outputs kept at %s", j.OutputDir)
	}
	for _, p := range []string{"work", "out"} {
		if _, err := os.Lstat(filepath.Join(h.Cfg.DataDir, "jobs", j.ID, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the job's %s folder is still there: %v", p, err)
		}
	}
	if n := h.Containers(t, j.ID); n != 0 {
		t.Errorf("%d containers left for the job", n)
	}
	if after := freeBytes(t, h.Cfg.DataDir); after < before-freeSpaceBound {
		t.Errorf("free space %d MiB before, %d MiB after the job", before>>20, after>>20)
	}
}
