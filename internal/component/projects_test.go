package component

import (
	"context"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/datadir"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/storage"
	"github.com/berthproject/berth/internal/store"
)

// runIn saves a configuration and runs it as a job of project, to its end.
func (h *harness) runIn(t *testing.T, project string, comp spec.Component, cfg spec.ComponentConfig) job.Job {
	t.Helper()
	ctx := context.Background()
	if _, err := h.submitConfigBodies(ctx, comp, cfg); err != nil {
		t.Fatal(err)
	}
	j, err := h.M.Submit(ctx, job.Submission{Owner: "tester", Project: project, Component: &job.ComponentRun{Component: comp, Config: cfg, ConfigVersion: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if j, err = h.M.Wait(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	return j
}

// TestComponentMappingStaysInItsProject: a job's input mapping reads its own project's
// tables and files and buckets shared with it; another project's table fails the job as a
// missing one does; output goes to its own project only (a shared bucket is read-only), and
// within its storage quota, all or nothing.
func TestComponentMappingStaysInItsProject(t *testing.T) {
	h, st := componentHarness(t, nil)
	ctx := context.Background()
	for _, p := range []string{"p1", "p2"} {
		if err := h.St.CreateProject(ctx, store.Project{ID: p}); err != nil {
			t.Fatal(err)
		}
	}
	loadCSV(t, st, "in.c-p1.mine", "id\n1\n", storage.LoadOptions{Project: "p1"})
	loadCSV(t, st, "in.c-p2.secret", "id\n2\n", storage.LoadOptions{Project: "p2"})
	loadCSV(t, st, "in.c-p2shared.t", "id\n3\n", storage.LoadOptions{Project: "p2"})
	if _, err := st.ShareBucket(ctx, "in.c-p2shared", "p1"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Upload(ctx, "p1", "ours.txt", strings.NewReader("1"), []string{"in"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Upload(ctx, "p2", "theirs.txt", strings.NewReader("2"), []string{"in"}); err != nil {
		t.Fatal(err)
	}
	img := h.componentImage(t, `d=/data/
echo "files=$(ls ${d}in/files/ | grep -v manifest | tr '\n' ' ')"
echo "tables=$(cat ${d}in/tables/*.csv | tr '\n' ' ')"
printf 'id\n9\n' > ${d}out/tables/res.csv
if grep -q '"big": true' ${d}config.json; then
	printf 'v\n' > ${d}out/tables/big.csv
	head -c 2000 /dev/zero | tr '\0' 'x' >> ${d}out/tables/big.csv
	echo >> ${d}out/tables/big.csv
else
	printf 'v\n1\n' > ${d}out/tables/big.csv
fi
echo made > ${d}out/files/made.txt
echo '{"tags": ["made"]}' > ${d}out/files/made.txt.manifest
`)
	comp := spec.Component{ID: "proj", Image: img}
	config := func(id string, in []string, out string, big bool) spec.ComponentConfig {
		var tables []datadir.InputTable
		for _, s := range in {
			tables = append(tables, datadir.InputTable{Source: s})
		}
		return spec.ComponentConfig{ID: id, Component: "proj", Parameters: map[string]any{"big": big},
			Storage: datadir.StorageMapping{
				Input: datadir.InputMapping{Tables: tables, Files: []datadir.InputFiles{{Tags: []string{"in"}}}},
				Output: datadir.OutputMapping{Tables: []datadir.OutputTable{
					{Source: "res.csv", Destination: out}, {Source: "big.csv", Destination: "out.c-p1.big"}}}}}
	}

	// Its own table, a shared one, its own files only; outputs land in its project.
	j := h.runIn(t, "p1", comp, config("ok", []string{"in.c-p1.mine", "in.c-p2shared.t"}, "out.c-p1.res", false))
	out := h.Output(t, j.ID, "")
	if j.State != job.StateSucceeded {
		t.Fatalf("%s/%s %s\n%s", j.State, j.Reason, j.Message, out)
	}
	if !strings.Contains(out, "_ours.txt") || strings.Contains(out, "theirs") || !strings.Contains(out, "tables=id 1 id 3") {
		t.Fatalf("inputs:\n%s", out)
	}
	if tb, err := st.GetTable(ctx, st.DB(), "out.c-p1.res"); err != nil || tb.Project != "p1" {
		t.Fatalf("output table: %+v %v", tb, err)
	}
	if fs, _ := st.Files(ctx, storage.FileQuery{Project: "p1", Tags: []string{"made"}}); len(fs) != 1 {
		t.Fatalf("output file not in p1: %+v", fs)
	}

	// Another project's table, and a missing one: the same user error, naming the table.
	for _, src := range []string{"in.c-p2.secret", "in.c-nope.t"} {
		j = h.runIn(t, "p1", comp, config("in-"+src, []string{src}, "out.c-p1.res", false))
		want := "table " + src + " is not in project p1 or shared with it"
		if j.State != job.StateFailed || j.Reason != job.ReasonUserError || !strings.Contains(j.Message, want) {
			t.Fatalf("input %s: %s/%s %q, want %q", src, j.State, j.Reason, j.Message, want)
		}
	}

	// Writing into the shared bucket: read-only here, and nothing of the job is loaded.
	j = h.runIn(t, "p1", comp, config("ro", nil, "in.c-p2shared.res", false))
	if j.State != job.StateFailed || j.Reason != job.ReasonUserError || !strings.Contains(j.Message, "read-only here") {
		t.Fatalf("output into a shared bucket: %s/%s %q", j.State, j.Reason, j.Message)
	}
	if _, err := st.GetTable(ctx, st.DB(), "in.c-p2shared.res"); err == nil {
		t.Fatal("a table was written into another project's bucket")
	}
	// Into another project's bucket that is not shared: refused too.
	j = h.runIn(t, "p1", comp, config("foreign", nil, "in.c-p2.res", false))
	if j.State != job.StateFailed || j.Reason != job.ReasonUserError || !strings.Contains(j.Message, "in use by another project") {
		t.Fatalf("output into a foreign bucket: %s/%s %q", j.State, j.Reason, j.Message)
	}

	// Over the quota: a user error naming it, and nothing of the job is stored.
	before, _ := st.ProjectUsage(ctx, st.DB(), "p1")
	limit := before + 500
	if err := h.St.SetProjectQuotas(ctx, "p1", nil, &limit); err != nil {
		t.Fatal(err)
	}
	j = h.runIn(t, "p1", comp, config("big", nil, "out.c-p1.quota", true))
	if j.State != job.StateFailed || j.Reason != job.ReasonUserError || !strings.Contains(j.Message, "storage quota") || !strings.Contains(j.Message, "max_storage_bytes") {
		t.Fatalf("over the quota: %s/%s %q", j.State, j.Reason, j.Message)
	}
	if _, err := st.GetTable(ctx, st.DB(), "out.c-p1.quota"); err == nil {
		t.Fatal("a table of the job over its quota was loaded")
	}
	if after, _ := st.ProjectUsage(ctx, st.DB(), "p1"); after != before {
		t.Fatalf("usage moved from %d to %d", before, after)
	}
}
