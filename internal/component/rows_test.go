package component

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/datadir"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/job/jobtest"
	"github.com/berthproject/berth/internal/spec"
)

// runRows saves a configuration with rows and runs it (every enabled row, or only `only`).
func (h *harness) runRows(t *testing.T, comp spec.Component, cfg spec.ComponentConfig, only string) job.Job {
	t.Helper()
	ctx := context.Background()
	if _, err := h.submitConfigBodies(ctx, comp, cfg); err != nil {
		t.Fatal(err)
	}
	rows, err := cfg.RowsToRun(only)
	if err != nil {
		t.Fatal(err)
	}
	j, err := h.M.Submit(ctx, job.Submission{Owner: "tester", Component: &job.ComponentRun{Component: comp, Config: cfg, ConfigVersion: 1, Action: "run", Rows: rows}})
	if err != nil {
		t.Fatal(err)
	}
	if j, err = h.M.Wait(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	return j
}

// TestConfigRowsRunInOrderWithMergedParametersAndOwnState: each enabled row runs in order with
// the configuration's parameters merged under its own, its own output mapping,
// KBC_CONFIGROWID, and a state of its own that the next run of that row reads; a disabled row
// runs only when asked for by id; a failing row stops the rows after it.
func TestConfigRowsRunInOrderWithMergedParametersAndOwnState(t *testing.T) {
	h, st := componentHarness(t, nil)
	img := h.componentImage(t, `set -e
d=/data
row=$KBC_CONFIGROWID
echo "row=$row params=$(tr -d ' \n' < ${d}/config.json | grep -o '"parameters":{[^}]*}[^}]*}')"
echo "state_$row=$(tr -d ' \n' < ${d}/in/state.json)"
tr -d ' \n' < ${d}/config.json | grep -q '"fail":true' && { echo "row $row fails" >&2; exit 1; }
printf 'row,n\n%s,1\n' "$row" > ${d}/out/tables/r.csv
echo "{\"row\": \"$row\"}" > ${d}/out/state.json
`)
	comp := spec.Component{ID: "rows", Image: img}
	out := func(row string) *datadir.StorageMapping {
		return &datadir.StorageMapping{Output: datadir.OutputMapping{Tables: []datadir.OutputTable{{Source: "r.csv", Destination: "out.c-rows." + row}}}}
	}
	cfg := spec.ComponentConfig{ID: "multi", Component: "rows",
		Parameters: map[string]any{"common": "c", "db": map[string]any{"host": "h", "port": 1}},
		Rows: []spec.ConfigRow{
			{ID: "first", Parameters: map[string]any{"db": map[string]any{"port": 2}}, Storage: out("first")},
			{ID: "off", IsDisabled: true, Parameters: map[string]any{"x": 1}, Storage: out("off")},
			{ID: "second", Parameters: map[string]any{"common": "mine"}, Storage: out("second")},
		}}
	j := h.runRows(t, comp, cfg, "")
	o := h.Output(t, j.ID, "")
	if j.State != job.StateSucceeded {
		t.Fatalf("%s/%s %s\n%s", j.State, j.Reason, j.Message, o)
	}
	v := jobtest.ProbeValues(o)
	if v["state_first"] != "{}" || v["state_second"] != "{}" {
		t.Errorf("first run states: %q %q", v["state_first"], v["state_second"])
	}
	if !strings.Contains(o, `row=first params="parameters":{"common":"c","db":{"host":"h","port":2}}`) {
		t.Errorf("row first: parameters not merged:\n%s", o)
	}
	if !strings.Contains(o, `row=second params="parameters":{"common":"mine","db":{"host":"h","port":1}}`) {
		t.Errorf("row second: parameters not merged:\n%s", o)
	}
	if strings.Index(o, "row=first") > strings.Index(o, "row=second") || strings.Contains(o, "row=off") {
		t.Errorf("rows out of order, or the disabled row ran:\n%s", o)
	}
	for _, r := range []string{"first", "second"} {
		if got := exportCSV(t, st, "out.c-rows."+r); got != "row,n\n"+r+",1\n" {
			t.Errorf("row %s table: %q", r, got)
		}
		if s, _, _ := h.St.GetRowState(context.Background(), "multi", r); !strings.Contains(s, `"row": "`+r+`"`) {
			t.Errorf("row %s state %q", r, s)
		}
	}
	if c, _ := h.St.GetConfig(context.Background(), "multi"); c.State != "{}" {
		t.Errorf("the configuration's own state changed: %q", c.State)
	}

	// The second run of each row reads that row's state.
	j = h.runRows(t, comp, cfg, "")
	v = jobtest.ProbeValues(h.Output(t, j.ID, ""))
	if v["state_first"] != `{"row":"first"}` || v["state_second"] != `{"row":"second"}` {
		t.Errorf("second run states: %q %q", v["state_first"], v["state_second"])
	}

	// A disabled row runs when asked for by id.
	j = h.runRows(t, comp, cfg, "off")
	if o := h.Output(t, j.ID, ""); j.State != job.StateSucceeded || !strings.Contains(o, "row=off") || strings.Contains(o, "row=first") {
		t.Fatalf("only row off: %s %s\n%s", j.State, j.Message, o)
	}

	// A failing row ends the job, naming the row; the rows after it do not run.
	cfg2 := cfg
	cfg2.ID = "multi-fail"
	cfg2.Rows = []spec.ConfigRow{{ID: "bad", Parameters: map[string]any{"fail": true}, Storage: out("bad")}, {ID: "after", Storage: out("after")}}
	j = h.runRows(t, comp, cfg2, "")
	if o := h.Output(t, j.ID, ""); j.State != job.StateFailed || j.Reason != job.ReasonUserError || !strings.Contains(j.Message, "row bad") ||
		!strings.Contains(j.Message, "row bad fails") || strings.Contains(o, "row=after") {
		t.Fatalf("failing row: %s/%s %q\n%s", j.State, j.Reason, j.Message, o)
	}
}

// TestStoredCredentialsReachTheComponentHidden: credentials stored (sealed) for a
// configuration reach the component as authorization.oauth_api.credentials, as Keboola gives
// them (docker-bundle Runner/Authorization::getAuthorization), and none of their values shows
// in the stored output.
func TestStoredCredentialsReachTheComponentHidden(t *testing.T) {
	sealer, err := auth.LoadOrCreateKey(filepath.Join(t.TempDir(), "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := componentHarness(t, func(c *testConfig) { c.Sealer = sealer })
	img := h.componentImage(t, `tr -d ' \n' < /data/config.json | grep -o '"authorization":{.*}'; echo
echo "appkey: $(grep -o '"appKey": "[^"]*"' /data/config.json)"
`)
	comp := spec.Component{ID: "oauth", Image: img}
	cfg := spec.ComponentConfig{ID: "oauth-1", Component: "oauth"}
	ctx := context.Background()
	if _, err := h.submitConfigBodies(ctx, comp, cfg); err != nil {
		t.Fatal(err)
	}
	creds := `{"id": "test-credentials-45", "authorizedFor": "", "#data": "{\"access_token\":\"tok-SECRET-1234\"}", "oauthVersion": "2.0", "appKey": "key-777777", "#appSecret": "app-secret-654321"}`
	sealed, err := sealer.Seal([]byte(creds))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.St.PutCredentials(ctx, cfg.ID, sealed); err != nil {
		t.Fatal(err)
	}
	j := h.runConfig(t, comp, cfg)
	o := h.Output(t, j.ID, "")
	if j.State != job.StateSucceeded {
		t.Fatalf("%s/%s %s\n%s", j.State, j.Reason, j.Message, o)
	}
	if !strings.Contains(o, `"authorization":{"oauth_api":{"credentials":{`) || !strings.Contains(o, `"oauthVersion":"2.0"`) {
		t.Errorf("authorization not given as oauth_api.credentials:\n%s", o)
	}
	for _, secret := range []string{"tok-SECRET-1234", "key-777777", "app-secret-654321"} {
		if strings.Contains(o, secret) {
			t.Errorf("the output shows %q:\n%s", secret, o)
		}
	}
	if !strings.Contains(o, "appkey: \"appKey\": \"[hidden]\"") {
		t.Errorf("the component did not read appKey (hidden in the output):\n%s", o)
	}
	// The stored row holds no plain text.
	raw, _, _ := h.St.GetCredentials(ctx, cfg.ID)
	if strings.Contains(string(raw), "SECRET") {
		t.Fatal("credentials stored in plain text")
	}
}

// TestStateSurvivesProcessors: the component's state is read right after it runs, so an
// after-processor (which passes on only its own out/) cannot drop it, and processors never
// see it (docker-bundle Tests/Runner/RunnerTest::testExecutorAfterProcessorNoState and
// testExecutorBeforeProcessorNoState): run 2 reads what run 1 wrote.
func TestStateSurvivesProcessors(t *testing.T) {
	h, _ := componentHarness(t, nil)
	// A processor that copies tables through and reports whether it saw a state file.
	pass := h.componentImage(t, `ls /data/in/state.json /data/out/state.json 2>/dev/null | sed 's/^/processor saw /'
cp -r /data/in/tables/. /data/out/tables/ 2>/dev/null; exit 0
`)
	main := h.componentImage(t, `s=$(tr -d ' \n' < /data/in/state.json)
echo "state_read=$s"
n=$(echo "$s" | grep -o '[0-9][0-9]*' || echo 0)
echo "{\"runs\": $((n+1))}" > /data/out/state.json
`)
	comp := spec.Component{ID: "stateful", Image: main}
	cfg := spec.ComponentConfig{ID: "stateful-1", Component: "stateful"}
	ctx := context.Background()
	if _, err := h.submitConfigBodies(ctx, comp, cfg); err != nil {
		t.Fatal(err)
	}
	chain := func() job.Job {
		cr := &job.ComponentRun{Component: comp, Config: cfg, Action: "run",
			Before: []job.ProcessorRun{{Component: spec.Component{ID: "pass-before", Image: pass}}},
			After: []job.ProcessorRun{
				{Component: spec.Component{ID: "pass-after-1", Image: pass}},
				{Component: spec.Component{ID: "pass-after-2", Image: pass}},
			}}
		j, err := h.M.Submit(ctx, job.Submission{Component: cr})
		if err != nil {
			t.Fatal(err)
		}
		j, _ = h.M.Wait(ctx, j.ID)
		return j
	}
	j := chain()
	o := h.Output(t, j.ID, "")
	if j.State != job.StateSucceeded || !strings.Contains(o, "state_read={}") {
		t.Fatalf("run 1: %s/%s %s\n%s", j.State, j.Reason, j.Message, o)
	}
	if strings.Contains(o, "processor saw") {
		t.Errorf("a processor saw the state:\n%s", o)
	}
	j = chain()
	o = h.Output(t, j.ID, "")
	if j.State != job.StateSucceeded || !strings.Contains(o, `state_read={"runs":1}`) {
		t.Fatalf("run 2 did not read run 1's state: %s/%s %s\n%s", j.State, j.Reason, j.Message, o)
	}
	if c, _ := h.St.GetConfig(ctx, cfg.ID); !strings.Contains(c.State, `"runs": 2`) {
		t.Fatalf("state after run 2: %q", c.State)
	}
}
