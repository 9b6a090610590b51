package component

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/datadir"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/job/jobtest"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/storage"
)

// harness is a job manager on the real engine (jobtest) running components with this
// package's executor, over a storage of its own.
type harness struct{ *jobtest.Harness }

// testConfig is what a test may change before its harness starts: the job core's policy and
// the component executor's configuration.
type testConfig struct {
	*jobConfig
	*Config
}

type jobConfig = job.Config

// componentHarness is a harness with storage, for component jobs.
func componentHarness(t *testing.T, mutate func(*testConfig)) (*harness, *storage.Storage) {
	t.Helper()
	var stor *storage.Storage
	var ccfg Config
	h := jobtest.New(t, func(c *job.Config) {
		if mutate != nil {
			mutate(&testConfig{c, &ccfg})
		}
	}, func(h *jobtest.Harness) map[string]job.Executor {
		var err error
		if stor, err = storage.New(h.St, filepath.Join(t.TempDir(), "storage")); err != nil {
			t.Fatal(err)
		}
		ccfg.Storage = stor
		return map[string]job.Executor{job.KindComponent: New(ccfg)}
	})
	return &harness{h}, stor
}

// componentImage builds a test component: the busybox image running script as its command.
func (h *harness) componentImage(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+h.Img+"\nCOPY run.sh /run.sh\nENTRYPOINT [\"sh\", \"/run.sh\"]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "run.sh"), []byte(script), 0o644)
	ref := "berth/test-component:" + enginetest.Unique(t)
	if _, err := h.Eng.BuildImage(context.Background(), runtime.BuildSpec{ContextDir: dir, Tags: []string{ref}, Labels: enginetest.Labels(t)}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Eng.RemoveImage(context.Background(), ref) })
	return ref
}

// runConfig saves a configuration of a component and runs it to its end.
func (h *harness) runConfig(t *testing.T, comp spec.Component, cfg spec.ComponentConfig) job.Job {
	t.Helper()
	ctx := context.Background()
	j, err := h.submitConfig(t, comp, cfg)
	if err != nil {
		t.Fatal(err)
	}
	j, err = h.M.Wait(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (h *harness) submitConfig(t *testing.T, comp spec.Component, cfg spec.ComponentConfig) (job.Job, error) {
	t.Helper()
	ctx := context.Background()
	if _, err := h.submitConfigBodies(ctx, comp, cfg); err != nil {
		t.Fatal(err)
	}
	return h.M.Submit(ctx, job.Submission{Owner: "tester", Component: &job.ComponentRun{Component: comp, Config: cfg, ConfigVersion: 1}})
}

// submitConfigBodies stores a component and, once, its configuration.
func (h *harness) submitConfigBodies(ctx context.Context, comp spec.Component, cfg spec.ComponentConfig) (int, error) {
	body, _ := json.Marshal(cfg)
	compBody, _ := json.Marshal(comp)
	if err := h.St.PutComponent(ctx, comp.ID, string(compBody)); err != nil {
		return 0, err
	}
	if _, err := h.St.GetConfig(ctx, cfg.ID); err == nil {
		return 0, nil
	}
	return h.St.PutConfig(ctx, cfg.ID, comp.ID, string(body))
}

func exportCSV(t *testing.T, st *storage.Storage, id string) string {
	t.Helper()
	var b bytes.Buffer
	if _, _, err := st.Export(context.Background(), id, &b, storage.ExportOptions{}); err != nil {
		t.Fatalf("export %s: %v", id, err)
	}
	return b.String()
}

func loadCSV(t *testing.T, st *storage.Storage, id, csvText string, o storage.LoadOptions) {
	t.Helper()
	cols, rows, err := storage.ReadCSV(strings.NewReader(csvText), o.Columns)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Load(context.Background(), st.DB(), id, cols, rows, o); err != nil {
		t.Fatal(err)
	}
}

// TestExampleComponentCarriesState: the example component (examples/component-sales) reads a
// table, writes a table and a file with manifests and a state; the second run sees the first
// run's state, and its incremental output upserts by the primary key.
func TestExampleComponentCarriesState(t *testing.T) {
	h, st := componentHarness(t, nil)
	ctx := context.Background()
	if _, err := h.Eng.InspectImage(ctx, "berth/python:3.11"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the python base is missing: `make test` bootstraps it")
		}
		t.Skip("python base not built")
	}
	ref := "berth/test-component-sales:" + enginetest.Unique(t)
	if _, err := h.Eng.BuildImage(ctx, runtime.BuildSpec{ContextDir: "../../examples/component-sales", Tags: []string{ref}, Labels: enginetest.Labels(t)}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Eng.RemoveImage(context.Background(), ref) })
	orders, _ := os.ReadFile("../../examples/component-sales/orders.csv")
	loadCSV(t, st, "in.c-sales.orders", string(orders), storage.LoadOptions{PrimaryKey: []string{"id"}})

	compJSON, _ := os.ReadFile("../../examples/component-sales/component.json")
	var m map[string]any
	json.Unmarshal(compJSON, &m)
	m["image"] = ref
	compJSON, _ = json.Marshal(m)
	comp, err := spec.ParseComponent(compJSON, "component.json")
	if err != nil {
		t.Fatal(err)
	}
	cfgJSON, _ := os.ReadFile("../../examples/component-sales/config.json")
	cfg, err := spec.ParseComponentConfig(cfgJSON, "config.json", comp)
	if err != nil {
		t.Fatal(err)
	}

	j := h.runConfig(t, *comp, *cfg)
	if j.State != job.StateSucceeded {
		t.Fatalf("first run: %s/%s %s\n%s", j.State, j.Reason, j.Message, h.Output(t, j.ID, ""))
	}
	if got := exportCSV(t, st, "out.c-sales.summary"); got != "region,orders,total\neast,1,310.00\nnorth,2,162.75\nsouth,2,99.90\nwest,1,75.10\n" {
		t.Fatalf("summary table:\n%s", got)
	}
	files, _ := st.ListFiles(ctx, []string{"sales-report", "daily"}, 0)
	if len(files) != 1 || files[0].Name != "report.txt" {
		t.Fatalf("report file: %+v", files)
	}
	row, _ := h.St.GetConfig(ctx, cfg.ID)
	if !strings.Contains(row.State, `"runs": 1`) {
		t.Fatalf("state after the first run: %s", row.State)
	}

	// New orders arrive; the second run sees the first run's state and upserts by region.
	loadCSV(t, st, "in.c-sales.orders", "id,region,amount\n7,north,1.00\n", storage.LoadOptions{Incremental: true})
	j = h.runConfig(t, *comp, *cfg)
	if j.State != job.StateSucceeded {
		t.Fatalf("second run: %s/%s %s", j.State, j.Reason, j.Message)
	}
	if out := h.Output(t, j.ID, "stdout"); !strings.Contains(out, `run 2 (previous state: {"runs": 1`) {
		t.Fatalf("the second run did not see the first run's state: %q", out)
	}
	if got := exportCSV(t, st, "out.c-sales.summary"); !strings.Contains(got, "north,3,163.75\n") || strings.Count(got, "\n") != 5 {
		t.Fatalf("summary after the incremental run:\n%s", got)
	}
	tbl, _ := st.GetTable(ctx, st.DB(), "out.c-sales.summary")
	if strings.Join(tbl.PrimaryKey, ",") != "region" {
		t.Fatalf("primary key %v", tbl.PrimaryKey)
	}
}

// TestComponentDataFolderAndOutputs: the /data layout and env of the common interface,
// the component's own writable copy of the inputs, an incremental upsert, a sliced gzip table, a file with tags.
func TestComponentDataFolderAndOutputs(t *testing.T) {
	h, st := componentHarness(t, nil)
	ctx := context.Background()
	loadCSV(t, st, "in.c-main.people", "id,name,team\n1,ann,red\n2,bob,blue\n3,cid,red\n", storage.LoadOptions{PrimaryKey: []string{"id"}})
	loadCSV(t, st, "out.c-main.scores", "id,score\n1,10\n2,20\n", storage.LoadOptions{PrimaryKey: []string{"id"}})
	st.UploadFile(ctx, "notes.txt", strings.NewReader("hello"), []string{"input", "x"})
	img := h.componentImage(t, `set -e
d=$KBC_DATADIR
echo "datadir=$d run=$KBC_RUNID config=$KBC_CONFIGID component=$KBC_COMPONENTID project=$KBC_PROJECTID"
echo "action=$(grep -o '"action": "[a-z]*"' ${d}config.json)"
echo "people=$(cat ${d}in/tables/reds.csv | tr '\n' '|')"
echo "manifest=$(tr -d ' \n' < ${d}in/tables/reds.csv.manifest)"
ls ${d}in/files/ | tr '\n' ' '; echo
if echo x >> ${d}in/tables/reds.csv 2>/dev/null; then echo "inputs=writable"; else echo "inputs=readonly"; fi
printf 'id,score\n2,25\n3,30\n' > ${d}out/tables/scores.csv
echo '{"destination": "out.c-main.scores", "incremental": true, "primary_key": ["id"]}' > ${d}out/tables/scores.csv.manifest
mkdir ${d}out/tables/big.csv
printf '1,a\n2,b\n' | gzip > ${d}out/tables/big.csv/part1.gz
printf '3,"c, with comma"\n' | gzip > ${d}out/tables/big.csv/part2.gz
echo '{"destination": "out.c-main.big", "columns": ["id", "v"]}' > ${d}out/tables/big.csv.manifest
echo "result" > ${d}out/files/result.txt
echo '{"tags": ["made"]}' > ${d}out/files/result.txt.manifest
echo '{"seen": 3}' > ${d}out/state.json
`)
	comp := spec.Component{ID: "probe", Image: img}
	cfg := spec.ComponentConfig{ID: "probe-1", Component: "probe", Parameters: map[string]any{"p": 1},
		Storage: datadir.StorageMapping{Input: datadir.InputMapping{
			Tables: []datadir.InputTable{{Source: "in.c-main.people", Destination: "reds.csv", Columns: []string{"id", "name"}, WhereColumn: "team", WhereValues: []string{"red"}}},
			Files:  []datadir.InputFiles{{Tags: []string{"input"}}},
		}}}
	j := h.runConfig(t, comp, cfg)
	out := h.Output(t, j.ID, "")
	if j.State != job.StateSucceeded {
		t.Fatalf("%s/%s %s\n%s", j.State, j.Reason, j.Message, out)
	}
	v := jobtest.ProbeValues(out)
	for k, want := range map[string]string{
		"datadir": "/data/ run",
		"action":  `"action": "run"`,
		"people":  "id,name|1,ann|3,cid|",
		// Keboola's runner gives the component its own copy of the inputs, writable.
		"inputs":   "writable",
		"manifest": `{"id":"in.c-main.people","uri":"http://localhost/api/v1/storage/tables/in.c-main.people","name":"people","primary_key":["id"],"distribution_key":[],"created":`,
	} {
		if !strings.HasPrefix(v[k], want) {
			t.Errorf("%s = %q, want prefix %q", k, v[k], want)
		}
	}
	if !strings.Contains(out, "component=probe project=berth") || !strings.Contains(out, "_notes.txt ") {
		t.Errorf("env or input files missing:\n%s", out)
	}
	if got := exportCSV(t, st, "out.c-main.scores"); got != "id,score\n1,10\n2,25\n3,30\n" {
		t.Errorf("incremental upsert:\n%s", got)
	}
	if got := exportCSV(t, st, "out.c-main.big"); got != "id,v\n1,a\n2,b\n3,\"c, with comma\"\n" {
		t.Errorf("sliced gzip table:\n%s", got)
	}
	if f, _ := st.ListFiles(ctx, []string{"made"}, 0); len(f) != 1 {
		t.Errorf("output file with its tags: %+v", f)
	}
	if row, _ := h.St.GetConfig(ctx, "probe-1"); row.State != "{\"seen\": 3}\n" {
		t.Errorf("state %q", row.State)
	}
}

// TestComponentMalformedOutputLoadsNothing: a malformed manifest fails the job as a user
// error naming the file, and nothing of the job reaches storage.
func TestComponentMalformedOutputLoadsNothing(t *testing.T) {
	h, st := componentHarness(t, nil)
	ctx := context.Background()
	loadCSV(t, st, "out.c-main.keep", "id\n1\n", storage.LoadOptions{})
	img := h.componentImage(t, `d=/data/
printf 'id\n2\n' > ${d}out/tables/out.c-main.keep.csv
printf 'a\n1\n' > ${d}out/tables/out.c-main.new.csv
echo '{"destination": "out.c-main.bad", "incremental": "yes"' > ${d}out/tables/out.c-main.new.csv.manifest
echo x > ${d}out/files/f.txt
echo '{"runs": 9}' > ${d}out/state.json
`)
	j := h.runConfig(t, spec.Component{ID: "bad", Image: img}, spec.ComponentConfig{ID: "bad-1", Component: "bad"})
	if j.State != job.StateFailed || j.Reason != job.ReasonUserError || !strings.Contains(j.Message, "out/tables/out.c-main.new.csv.manifest") {
		t.Fatalf("%s/%s %q", j.State, j.Reason, j.Message)
	}
	if got := exportCSV(t, st, "out.c-main.keep"); got != "id\n1\n" {
		t.Errorf("a table was loaded from a failed job:\n%s", got)
	}
	if _, err := st.GetTable(ctx, st.DB(), "out.c-main.new"); err == nil {
		t.Error("a new table was created by a failed job")
	}
	if f, _ := st.ListFiles(ctx, nil, 0); len(f) != 0 {
		t.Errorf("files were stored by a failed job: %+v", f)
	}
	if row, _ := h.St.GetConfig(ctx, "bad-1"); row.State != "{}" {
		t.Errorf("state saved by a failed job: %s", row.State)
	}
}

// TestComponentExitCodes: exit 1 shows the component's output; exit > 1 a generic message
// with an error id; write_always tables are loaded even when it failed.
func TestComponentExitCodes(t *testing.T) {
	h, st := componentHarness(t, nil)
	user := h.componentImage(t, "echo 'the parameter x is missing' >&2\nprintf 'id\\n1\\n' > /data/out/tables/log.csv\nexit 1\n")
	cfg := spec.ComponentConfig{ID: "u-1", Component: "u", Storage: datadir.StorageMapping{Output: datadir.OutputMapping{
		Tables: []datadir.OutputTable{{Source: "log.csv", Destination: "out.c-main.log", WriteAlways: true}}}}}
	j := h.runConfig(t, spec.Component{ID: "u", Image: user}, cfg)
	if j.Reason != job.ReasonUserError || j.Message != "the parameter x is missing" {
		t.Fatalf("exit 1: %s %q", j.Reason, j.Message)
	}
	if got := exportCSV(t, st, "out.c-main.log"); got != "id\n1\n" {
		t.Fatalf("write_always table not loaded on failure:\n%s", got)
	}
	app := h.componentImage(t, "echo 'secret internals: stack trace' >&2\nexit 2\n")
	j = h.runConfig(t, spec.Component{ID: "a", Image: app}, spec.ComponentConfig{ID: "a-1", Component: "a"})
	if j.Reason != job.ReasonAppError || strings.Contains(j.Message, "stack trace") || !strings.Contains(j.Message, "error id") {
		t.Fatalf("exit 2: %s %q", j.Reason, j.Message)
	}
	// The operator still has the full output.
	if !strings.Contains(h.Output(t, j.ID, "stderr"), "stack trace") {
		t.Fatal("the full output of an application error was not kept")
	}
}

// TestComponentStateConflict: two runs of one configuration at once: the later to finish
// fails clearly instead of overwriting the state the other saved.
func TestComponentStateConflict(t *testing.T) {
	h, _ := componentHarness(t, func(c *testConfig) { c.Workers = 2 })
	img := h.componentImage(t, "sleep 2\necho \"{\\\"by\\\": \\\"$KBC_RUNID\\\"}\" > /data/out/state.json\n")
	comp := spec.Component{ID: "s", Image: img}
	cfg := spec.ComponentConfig{ID: "s-1", Component: "s"}
	var jobs [2]job.Job
	var wg sync.WaitGroup
	for i := range jobs {
		j, err := h.submitConfig(t, comp, cfg)
		if err != nil {
			t.Fatal(err)
		}
		jobs[i] = j
	}
	for i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			jobs[i], _ = h.M.Wait(ctx, jobs[i].ID)
		}()
	}
	wg.Wait()
	var won, lost []job.Job
	for _, j := range jobs {
		if j.State == job.StateSucceeded {
			won = append(won, j)
		} else {
			lost = append(lost, j)
		}
	}
	if len(won) != 1 || len(lost) != 1 || !strings.Contains(lost[0].Message, "another run saved its state") {
		t.Fatalf("want one success and one state conflict: %+v / %+v", won, lost)
	}
	row, _ := h.St.GetConfig(context.Background(), "s-1")
	if !strings.Contains(row.State, won[0].ID) {
		t.Fatalf("state %s is not the winner's (%s)", row.State, won[0].ID)
	}
}

// TestProcessorChain: before processors transform the inputs the component sees, after
// processors transform its outputs in order, and a failing processor fails the job naming it.
func TestProcessorChain(t *testing.T) {
	h, st := componentHarness(t, nil)
	loadCSV(t, st, "in.c-main.words", "w\nalpha\nbeta\n", storage.LoadOptions{})
	// before: upper-cases every input table.
	upper := h.componentImage(t, `for f in /data/in/tables/*.csv; do tr a-z A-Z < $f > /data/out/tables/$(basename $f); done
cp /data/in/tables/*.manifest /data/out/tables/ 2>/dev/null; exit 0
`)
	// the component: copies its input to an output table with a marker row.
	main := h.componentImage(t, `cp /data/in/tables/words.csv /data/out/tables/words.csv; echo MAIN >> /data/out/tables/words.csv
if echo x >> /data/in/tables/words.csv 2>/dev/null; then echo "inputs=writable"; fi
`)
	// after #1 and #2: each appends its parameter, in order.
	appendRow := h.componentImage(t, `v=$(grep -o '"row": "[A-Z0-9]*"' /data/config.json | cut -d'"' -f4)
cp /data/in/tables/words.csv /data/out/tables/words.csv; echo $v >> /data/out/tables/words.csv
`)
	comp := spec.Component{ID: "main", Image: main}
	cfg := spec.ComponentConfig{ID: "chain", Component: "main", Storage: datadir.StorageMapping{
		Input:  datadir.InputMapping{Tables: []datadir.InputTable{{Source: "in.c-main.words", Destination: "words.csv"}}},
		Output: datadir.OutputMapping{Tables: []datadir.OutputTable{{Source: "words.csv", Destination: "out.c-main.words"}}},
	}}
	ctx := context.Background()
	body, _ := json.Marshal(cfg)
	compBody, _ := json.Marshal(comp)
	h.St.PutComponent(ctx, comp.ID, string(compBody))
	h.St.PutConfig(ctx, cfg.ID, comp.ID, string(body))
	run := func(cr *job.ComponentRun) job.Job {
		j, err := h.M.Submit(ctx, job.Submission{Component: cr})
		if err != nil {
			t.Fatal(err)
		}
		j, _ = h.M.Wait(ctx, j.ID)
		return j
	}
	j := run(&job.ComponentRun{Component: comp, Config: cfg, Action: "run",
		Before: []job.ProcessorRun{{Component: spec.Component{ID: "upper", Image: upper}}},
		After: []job.ProcessorRun{
			{Component: spec.Component{ID: "append", Image: appendRow}, Parameters: map[string]any{"row": "P1"}},
			{Component: spec.Component{ID: "append", Image: appendRow}, Parameters: map[string]any{"row": "P2"}},
		}})
	out := h.Output(t, j.ID, "")
	// The component's inputs are its own copy, writable, after before-processors too.
	if j.State != job.StateSucceeded || !strings.Contains(out, "inputs=writable") {
		t.Fatalf("%s/%s %s\n%s", j.State, j.Reason, j.Message, out)
	}
	if got := exportCSV(t, st, "out.c-main.words"); got != "W\nALPHA\nBETA\nMAIN\nP1\nP2\n" {
		t.Fatalf("processed table:\n%s", got)
	}
	failing := h.componentImage(t, "echo 'cannot process' >&2\nexit 3\n")
	j = run(&job.ComponentRun{Component: comp, Config: cfg, Action: "run",
		After: []job.ProcessorRun{{Component: spec.Component{ID: "broken", Image: failing}}}})
	if j.State != job.StateFailed || !strings.Contains(j.Message, "processor broken (after #1) failed with exit code 3") {
		t.Fatalf("failing processor: %s/%s %q", j.State, j.Reason, j.Message)
	}
}

// TestSyncActionLimit: a sync action runs with its action set, no mapping, and is stopped at
// its limit.
func TestSyncActionLimit(t *testing.T) {
	h, _ := componentHarness(t, func(c *testConfig) { c.SyncActionTimeout = 2 * time.Second })
	img := h.componentImage(t, `if grep -q '"action": "slow"' /data/config.json; then sleep 60; fi
grep -q '"action": "fast"' /data/config.json && echo '{"ok": true}'
ls /data/in/tables | wc -l
`)
	comp := spec.Component{ID: "act", Image: img, Actions: []string{"fast", "slow"}}
	ctx := context.Background()
	run := func(action string) job.Job {
		j, err := h.M.Submit(ctx, job.Submission{Component: &job.ComponentRun{Component: comp, Config: spec.ComponentConfig{ID: "act-" + action, Component: "act"}, Action: action}})
		if err != nil {
			t.Fatal(err)
		}
		j, _ = h.M.Wait(ctx, j.ID)
		return j
	}
	j := run("fast")
	if j.State != job.StateSucceeded || h.Output(t, j.ID, "stdout") != "{\"ok\": true}\n0\n" {
		t.Fatalf("fast action: %s %q", j.State, h.Output(t, j.ID, "stdout"))
	}
	t0 := time.Now()
	j = run("slow")
	if j.Reason != job.ReasonTimeout || time.Since(t0) > 30*time.Second {
		t.Fatalf("slow action: %s/%s after %s", j.State, j.Reason, time.Since(t0))
	}
}

// TestForwardToken: only a component that opted in gets the caller's token, and it never
// shows in the stored output; a token lost to a restart fails the job clearly.
func TestForwardToken(t *testing.T) {
	h, _ := componentHarness(t, nil)
	img := h.componentImage(t, "echo \"token=${KBC_TOKEN:-none}\"\n")
	ctx := context.Background()
	run := func(forward bool, token string) (job.Job, string) {
		comp := spec.Component{ID: "fw", Image: img, ForwardToken: forward}
		cfg := spec.ComponentConfig{ID: "fw-1", Component: "fw"}
		body, _ := json.Marshal(cfg)
		cb, _ := json.Marshal(comp)
		h.St.PutComponent(ctx, comp.ID, string(cb))
		h.St.PutConfig(ctx, cfg.ID, comp.ID, string(body))
		j, err := h.M.Submit(ctx, job.Submission{Token: token, Component: &job.ComponentRun{Component: comp, Config: cfg, Action: "run"}})
		if err != nil {
			t.Fatal(err)
		}
		j, _ = h.M.Wait(ctx, j.ID)
		return j, h.Output(t, j.ID, "stdout")
	}
	if j, out := run(false, "berth_callertoken"); j.State != job.StateSucceeded || out != "token=none\n" {
		t.Fatalf("without opt-in: %s %q", j.State, out)
	}
	if j, out := run(true, "berth_callertoken"); j.State != job.StateSucceeded || out != "token=[hidden]\n" {
		t.Fatalf("with opt-in: %s %q", j.State, out)
	}
	if j, _ := run(true, ""); j.State != job.StateFailed || !strings.Contains(j.Message, "forward_token") {
		t.Fatalf("lost token: %s %q", j.State, j.Message)
	}
}
