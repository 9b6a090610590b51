package component

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/datadir"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/spec"
)

// TestComponentDiskLimit: a component that writes past its cap ends disk_limit and nothing
// of it is loaded, not even a write_always table.
func TestComponentDiskLimit(t *testing.T) {
	h, st := componentHarness(t, nil)
	img := h.componentImage(t, `printf 'id\n1\n' > /data/out/tables/log.csv
dd if=/dev/zero of=/data/out/files/big bs=1M count=2000
echo finished
`)
	cfg := spec.ComponentConfig{ID: "w-1", Component: "w", Storage: datadir.StorageMapping{Output: datadir.OutputMapping{
		Tables: []datadir.OutputTable{{Source: "log.csv", Destination: "out.c-main.log", WriteAlways: true}}}}}
	j := h.runConfig(t, spec.Component{ID: "w", Image: img, Limits: spec.Limits{Disk: 20 << 20}}, cfg)
	if j.State != job.StateFailed || j.Reason != job.ReasonDiskLimit || !strings.Contains(j.Message, "20MiB") {
		t.Fatalf("state %s/%s (%s)", j.State, j.Reason, j.Message)
	}
	if _, err := st.GetTable(t.Context(), st.DB(), "out.c-main.log"); err == nil {
		t.Error("a table was loaded from a job that passed its disk cap")
	}
	if _, err := os.Lstat(filepath.Join(h.Cfg.DataDir, "jobs", j.ID, "work")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the job's folder is still there: %v", err)
	}
}

// TestProcessorDiskLimit: a processor is held to the job's cap too and the job ends
// disk_limit naming it; the main component never runs.
func TestProcessorDiskLimit(t *testing.T) {
	h, _ := componentHarness(t, nil)
	// Written a MiB at a time, each write closed, with a pause every 10: the cap (20 MiB) is
	// passed in about two seconds and the whole 2000 would take minutes, so the kill, not the
	// machine's speed, decides whether "finished" is printed.
	proc := h.componentImage(t, `i=0
while [ $i -lt 2000 ]; do
  dd if=/dev/zero bs=1M count=1 2>/dev/null >> /data/out/files/big
  i=$((i+1))
  [ $((i % 10)) -eq 0 ] && sleep 1
done
echo finished
`)
	main := h.componentImage(t, "echo main ran\n")
	comp := spec.Component{ID: "m", Image: main, Limits: spec.Limits{Disk: 20 << 20}}
	cfg := spec.ComponentConfig{ID: "m-1", Component: "m"}
	ctx := t.Context()
	body, _ := json.Marshal(cfg)
	compBody, _ := json.Marshal(comp)
	if err := h.St.PutComponent(ctx, comp.ID, string(compBody)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.St.PutConfig(ctx, cfg.ID, comp.ID, string(body)); err != nil {
		t.Fatal(err)
	}
	j, err := h.M.Submit(ctx, job.Submission{Owner: "tester", Component: &job.ComponentRun{Component: comp, Config: cfg, ConfigVersion: 1,
		Before: []job.ProcessorRun{{Component: spec.Component{ID: "p", Image: proc}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if j, err = h.M.Wait(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	out := h.Output(t, j.ID, "")
	if j.State != job.StateFailed || j.Reason != job.ReasonDiskLimit || !strings.Contains(j.Message, "processor p") || !strings.Contains(j.Message, "20MiB") {
		t.Fatalf("state %s/%s (%s) out %q", j.State, j.Reason, j.Message, out)
	}
	if strings.Contains(out, "main ran") || strings.Contains(out, "finished") {
		t.Errorf("ran on past the cap: %q", out)
	}
	if _, err := os.Lstat(filepath.Join(h.Cfg.DataDir, "jobs", j.ID, "work")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the job's folder is still there: %v", err)
	}
}
