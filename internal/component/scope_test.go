package component

import (
	"context"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/datadir"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/storage"
)

// TestBucketScopeNarrowsAJobsMappings: a job run with a token scoped to some buckets maps
// in only the buckets it may read and writes out only to those it may write, in its own
// project too, as Keboola's bucket permissions narrow a token's jobs.
func TestBucketScopeNarrowsAJobsMappings(t *testing.T) {
	h, st := componentHarness(t, nil)
	ctx := context.Background()
	loadCSV(t, st, "in.c-open.t", "id\n1\n", storage.LoadOptions{})
	loadCSV(t, st, "in.c-closed.t", "id\n2\n", storage.LoadOptions{})
	img := h.componentImage(t, `cat /data/in/tables/*.csv; printf 'id\n9\n' > /data/out/tables/res.csv`)
	comp := spec.Component{ID: "scoped", Image: img}
	const scope = "bucket:in.c-open:read,bucket:out.c-ok:write"
	run := func(id, in, out string) job.Job {
		t.Helper()
		cfg := spec.ComponentConfig{ID: id, Component: "scoped", Storage: datadir.StorageMapping{
			Input:  datadir.InputMapping{Tables: []datadir.InputTable{{Source: in}}},
			Output: datadir.OutputMapping{Tables: []datadir.OutputTable{{Source: "res.csv", Destination: out}}}}}
		if _, err := h.submitConfigBodies(ctx, comp, cfg); err != nil {
			t.Fatal(err)
		}
		j, err := h.M.Submit(ctx, job.Submission{Owner: "etl", Component: &job.ComponentRun{Component: comp, Config: cfg, ConfigVersion: 1, Scope: scope}})
		if err != nil {
			t.Fatal(err)
		}
		if j, err = h.M.Wait(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
		return j
	}
	if j := run("ok", "in.c-open.t", "out.c-ok.res"); j.State != job.StateSucceeded {
		t.Fatalf("within its scope: %s/%s %s", j.State, j.Reason, j.Message)
	}
	if j := run("in", "in.c-closed.t", "out.c-ok.res2"); j.State != job.StateFailed || j.Reason != job.ReasonUserError ||
		!strings.Contains(j.Message, "in.c-closed.t is not in project") {
		t.Fatalf("a bucket outside its read scope: %s/%s %q", j.State, j.Reason, j.Message)
	}
	if j := run("out", "in.c-open.t", "out.c-no.res"); j.State != job.StateFailed || j.Reason != job.ReasonUserError ||
		!strings.Contains(j.Message, "may not write") {
		t.Fatalf("a bucket outside its write scope: %s/%s %q", j.State, j.Reason, j.Message)
	}
	if _, err := st.GetTable(ctx, st.DB(), "out.c-no.res"); err == nil {
		t.Fatal("the refused output was loaded")
	}
	if _, err := st.GetTable(ctx, st.DB(), "out.c-ok.res2"); err == nil {
		t.Fatal("a job refused its input still loaded its output")
	}
}
