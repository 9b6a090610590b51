package job_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/job"
)

// TestDeleteJob: an ended job's folder and record go; a running one is refused without force
// and, with it, cancelled, cleaned up and then deleted, leaving nothing written after.
func TestDeleteJob(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	j, _ := h.Run(t, h.Block("echo result > /data/out/r.txt"))
	dir := filepath.Dir(j.OutputDir)
	if _, err := os.Stat(filepath.Join(dir, "output.json")); err != nil {
		t.Fatalf("the job's stored output is not where expected: %v", err)
	}
	removed, err := h.M.Delete(ctx, j.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(removed, ", "); !strings.Contains(got, "kept outputs") || !strings.Contains(got, "stored output") {
		t.Fatalf("removed: %s", got)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("folder left: %v", err)
	}
	if _, err := h.M.Get(ctx, j.ID); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("record left: %v", err)
	}
	if _, err := h.M.Delete(ctx, j.ID, false); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}

	long, err := h.M.Submit(ctx, job.Submission{Block: h.Block("sleep 60"), BaseDir: h.Cfg.ShareRoots[0], Owner: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if cur, _ := h.M.Get(ctx, long.ID); cur.State == job.StateRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the job never ran")
		}
	}
	if _, err := h.M.Delete(ctx, long.ID, false); !errors.Is(err, job.ErrActive) {
		t.Fatalf("delete a running job without force: %v", err)
	}
	removed, err = h.M.Delete(ctx, long.ID, true)
	if err != nil || !strings.Contains(strings.Join(removed, ", "), "cancelled") {
		t.Fatalf("delete with force: %v %v", removed, err)
	}
	time.Sleep(200 * time.Millisecond) // anything still finishing would write now
	if _, err := os.Stat(filepath.Join(h.Cfg.DataDir, "jobs", long.ID)); !os.IsNotExist(err) {
		t.Fatalf("the cancelled job's folder is back or left: %v", err)
	}
}
