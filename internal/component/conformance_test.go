package component

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/job/jobtest"
	"github.com/berthproject/berth/internal/store"

	"github.com/berthproject/berth/internal/datadir"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/runtime/docker/enginetest"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/storage"
)

// The Keboola common-interface conformance suite. Each subtest is one assertion ported from
// Keboola's runner (keboola/docker-bundle, "docker-bundle"), its mapping libraries
// (keboola/platform-libraries input-mapping and output-mapping), its component library
// (keboola/python-component) and its documentation (keboola/developers-docs), as collected in
// the conformance brief; its name starts with the brief's number and the source is the
// argument of conform. Where berth deliberately differs, the comment says so and the
// assertion is berth's documented behaviour (docs/components.md).
//
// Few containers: one busybox image plays every part, chosen by KBC_COMPONENTID and
// KBC_CONFIGID. The probe configuration runs three times (the second with a before and an
// after processor); each output-mapping failure is one more run.

// conformScript is the test component. The probe prints what it sees between section marks
// and as key=value lines, then writes many outputs at once.
const conformScript = `d=/data
sec() { echo "----BEGIN $1----"; cat "$2"; echo; echo "----END $1----"; }
case "$KBC_COMPONENTID" in
conf-before)
	[ -e $d/in/state.json ] && echo "before_state=present" || echo "before_state=absent"
	echo "before_component=$KBC_COMPONENTID"
	cp -a $d/in/tables/. $d/out/tables/ && cp -a $d/in/files/. $d/out/files/
	exit 0 ;;
conf-after)
	[ -e $d/in/state.json ] && echo "after_state=present" || echo "after_state=absent"
	cp -a $d/in/tables/. $d/out/tables/ && cp -a $d/in/files/. $d/out/files/
	echo '{"by": "after-processor"}' > $d/out/state.json
	exit 0 ;;
esac
case "$KBC_CONFIGID" in
conf-h6)
	printf 'id\n1\n' > $d/out/tables/wa.csv
	echo '{"destination": "out.c-conf.h6wa", "write_always": true}' > $d/out/tables/wa.csv.manifest
	printf 'id\n1\n' > $d/out/tables/normal.csv
	echo '{"runs": 1}' > $d/out/state.json
	echo "user error from stdout"
	exit 1 ;;
conf-h7)
	printf 'id\n7\n' > $d/out/tables/write-always.csv
	exit 0 ;;
conf-h8)
	echo "----BEGIN env----"; env | grep '^KBC_' | sort; echo "----END env----"
	exit 0 ;;
conf-h2)
	sec config $d/config.json
	printf 'id\n1\n' > $d/out/tables/out.c-conf.other.csv
	echo '{"destination": "out.c-conf.x"}' > $d/out/tables/x.csv.manifest
	exit 0 ;;
conf-h10)
	echo "what the component printed"
	echo "what the component said is wrong" >&2
	exit 1 ;;
esac

# The probe.
echo "----BEGIN env----"; env | grep '^KBC_' | sort; echo "----END env----"
echo "uid=$(id -u)"
for p in in in/tables in/files in/user out out/tables out/files; do
	[ -d $d/$p ] && echo "dir:$p=yes" || echo "dir:$p=no"
done
echo "user_files=$(ls -A $d/in/user | wc -l)"
for p in top.txt in/user/u.txt in/tables/t.txt in/files/f.txt; do
	if echo x > $d/$p 2>/dev/null && [ "$(cat $d/$p)" = x ]; then echo "write:$p=ok"; else echo "write:$p=denied"; fi
done
if echo x > /tmp/scratch 2>/dev/null; then echo "tmp=ok"; else echo "tmp=denied"; fi
echo "in_tables=$(ls $d/in/tables | grep -v -e manifest -e t.txt | tr '\n' ' ')"
echo "in_files=$(ls $d/in/files | grep -v -e manifest -e f.txt | tr '\n' ' ')"
sec config $d/config.json
sec tablemanifest $d/in/tables/people.csv.manifest
sec people $d/in/tables/people.csv
sec filemanifest "$(ls $d/in/files/*.manifest | head -1)"
sec state $d/in/state.json

t=$d/out/tables
# F1/F2/F7: the legacy format with every key, header-less because it has columns.
printf '4,d\n1,z\n' > $t/legacy.csv
cat > $t/legacy.csv.manifest <<'EOF'
{"destination": "out.c-conf.legacy", "columns": ["foo", "bar"], "incremental": true, "primary_key": ["foo"],
 "distribution_key": [], "write_always": false, "delimiter": ",", "enclosure": "\"",
 "metadata": [{"key": "KBC.description", "value": "some-description"}, {"key": "bar", "value": "kochba"}],
 "column_metadata": {"bar": [{"key": "foo", "value": "gogo"}]},
 "delete_where_column": "bar", "delete_where_values": ["a", "b"], "delete_where_operator": "eq", "tags": []}
EOF
# F1/F3: the newer format with a header, schema and table metadata.
printf 'id,name\n1,ann\n2,bob\n' > $t/typed.csv
cat > $t/typed.csv.manifest <<'EOF'
{"destination": "out.c-conf.typed", "incremental": false, "write_always": false, "delimiter": ",", "enclosure": "\"",
 "manifest_type": "out", "has_header": true, "description": "Best table", "table_metadata": {"owner": "conf"},
 "schema": [{"name": "id", "data_type": {"base": {"type": "INTEGER"}}, "nullable": false, "primary_key": true},
            {"name": "name", "data_type": {"base": {"type": "STRING", "length": "20"}, "snowflake": {"type": "VARCHAR"}},
             "nullable": true, "description": "the name", "metadata": {"k": "v"}}]}
EOF
# F3/F7: the docs' manifest_type "output", sliced, header-less: the schema names the columns.
mkdir $t/sliced.csv
printf '1,x\n' > $t/sliced.csv/part1
printf '2,y\n' | gzip > $t/sliced.csv/part2.gz
echo '{"destination": "out.c-conf.sliced", "manifest_type": "output", "has_header": false, "schema": [{"name": "k", "primary_key": true}, {"name": "v"}]}' > $t/sliced.csv.manifest
# F8: the mapping wins for destination and primary key; its default incremental does not.
printf 'id,v\n2,B\n3,c\n' > $t/merged.csv
echo '{"destination": "out.c-conf.wrong", "incremental": true, "primary_key": ["v"]}' > $t/merged.csv.manifest
# F9/A9: not in the mapping, no manifest: the destination is the file name.
printf 'a\n1\n' > $t/out.c-conf.byname.csv
printf 'a\n2\n' > $t/plain.csv
f=$d/out/files
echo "report" > $f/report.txt
echo '{"tags": ["conf", "report"], "is_public": false, "is_permanent": true, "is_encrypted": true, "notify": true}' > $f/report.txt.manifest
echo "mapped" > $f/mapped.txt
echo '{"tags": ["from-manifest"], "is_permanent": true}' > $f/mapped.txt.manifest
echo "scratch" > $f/scratch.txt
echo '{"tags": ["conf-scratch"], "is_permanent": false, "is_public": true}' > $f/scratch.txt.manifest

if grep -q '"run"' $d/in/state.json; then
	echo "state=none written"
elif grep -q bar $d/in/state.json; then
	echo '{"bar": "Kochba", "run": 2}' > $d/out/state.json
else
	echo '{"bar": "Kochba"}' > $d/out/state.json
fi
`

// conform runs one ported assertion as a subtest; source is where Keboola asserts it.
func conform(t *testing.T, name, source string, f func(t *testing.T)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		defer func() {
			if t.Failed() {
				t.Logf("Keboola source: %s", source)
			}
		}()
		f(t)
	})
}

// sections are the probe's ----BEGIN name---- … ----END name---- blocks.
func sections(out string) map[string]string {
	s := map[string]string{}
	for {
		i := strings.Index(out, "----BEGIN ")
		if i < 0 {
			return s
		}
		out = out[i+len("----BEGIN "):]
		name, rest, _ := strings.Cut(out, "----\n")
		body, rest2, ok := strings.Cut(rest, "----END "+name+"----")
		if !ok {
			return s
		}
		s[name] = strings.TrimSpace(body)
		out = rest2
	}
}

// envOf parses an env section (KEY=value lines).
func envOf(sec string) map[string]string {
	env := map[string]string{}
	for _, l := range strings.Split(sec, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	return env
}

// jsonKeys are the keys of a JSON object in the order they were written.
func jsonKeys(t *testing.T, s string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %q", s)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func jsonMap(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%v: %q", err, s)
	}
	return m
}

// at walks a decoded JSON value by object keys and array indexes ("storage.input.tables.0").
func at(v any, path string) any {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i := 0
			for _, c := range p {
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func jsonEq(t *testing.T, what string, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, w) {
		g, _ := json.Marshal(got)
		t.Errorf("%s = %s, want %s", what, g, want)
	}
}

// sortedRows is a CSV export with its data rows sorted (the header first).
func sortedRows(csvText string) string {
	lines := strings.Split(strings.TrimSuffix(csvText, "\n"), "\n")
	if len(lines) > 1 {
		sort.Strings(lines[1:])
	}
	return strings.Join(lines, "\n") + "\n"
}

// runComponent saves the configuration and runs cr (with token, for forward_token) to its end.
func (h *harness) runComponent(t *testing.T, cr job.ComponentRun, token string) job.Job {
	t.Helper()
	ctx := context.Background()
	if _, err := h.submitConfigBodies(ctx, cr.Component, cr.Config); err != nil {
		t.Fatal(err)
	}
	j, err := h.M.Submit(ctx, job.Submission{Owner: "tester", Token: token, Component: &cr})
	if err != nil {
		t.Fatal(err)
	}
	if j, err = h.M.Wait(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	return j
}

func TestKeboolaConformance(t *testing.T) {
	h, st := componentHarness(t, func(c *testConfig) {
		c.PublicURL = "https://berth.example.com:8443"
		c.ProjectID = "proj-42"
	})
	ctx := context.Background()
	img := h.componentImage(t, conformScript)

	loadCSV(t, st, "in.c-conf.people", "id,name,team\n1,ann,red\n2,bob,blue\n", storage.LoadOptions{PrimaryKey: []string{"id"}})
	loadCSV(t, st, "out.c-conf.legacy", "foo,bar\n1,a\n2,b\n3,c\n", storage.LoadOptions{PrimaryKey: []string{"foo"}})
	loadCSV(t, st, "out.c-conf.merged", "id,v\n1,a\n2,b\n", storage.LoadOptions{PrimaryKey: []string{"id"}})
	inFile, err := st.UploadFile(ctx, "notes.txt", strings.NewReader("hello"), []string{"input-tag"})
	if err != nil {
		t.Fatal(err)
	}

	comp := spec.Component{ID: "conf", Image: img, ImageParameters: map[string]any{"fooBar": "baz"},
		ForwardToken: true, ForwardTokenDetails: true, DataTypeSupport: "authoritative"}
	compBody, _ := json.Marshal(comp)
	pcomp, err := spec.ParseComponent(compBody, "component.json")
	if err != nil {
		t.Fatal(err)
	}
	// The configuration as a user stores it: the older object form of the mapping lists
	// (B33), processors (B2), and a parameter named like an environment variable (C19).
	cfgJSON := `{"id": "conf-probe", "component": "conf",
	  "parameters": {"key1": "value1", "key2": {"key3": "value3", "key4": []}, "KBC_CONFIGID": "injected"},
	  "processors": {"after": []},
	  "storage": {
	    "input": {"tables": {"0": {"source": "in.c-conf.people", "destination": "people.csv", "columns": ["id", "name"]}},
	              "files": [{"tags": ["input-tag"]}]},
	    "output": {"default_bucket": "out.c-def",
	               "tables": {"0": {"source": "merged.csv", "destination": "out.c-conf.merged", "primary_key": ["id"]}},
	               "files": [{"source": "mapped.txt", "tags": ["from-mapping"]}]}}}`
	cfg, err := spec.ParseComponentConfig([]byte(cfgJSON), "config.json", pcomp)
	if err != nil {
		t.Fatal(err)
	}
	const token = "berth_conftoken_0123456789"
	// The probe runs as row row-7 of its configuration (a row with no parameters or mapping of
	// its own), so its state is the row's (DB RunnerTest::testExecutorStoreStateRows).
	probe := job.ComponentRun{Component: comp, Config: *cfg, ConfigVersion: 3, Action: "run", Rows: []spec.ConfigRow{{ID: "row-7"}},
		TokenID: "tok_conf01", TokenName: "conformance runner"}
	rowState := func() store.ConfigRow {
		s, v, _ := h.St.GetRowState(ctx, "conf-probe", "row-7")
		return store.ConfigRow{State: s, StateVersion: v}
	}

	// Run 1: the probe.
	j1 := h.runComponent(t, probe, token)
	out1 := h.Output(t, j1.ID, "stdout")
	sys1 := h.Output(t, j1.ID, "system")
	if j1.State != job.StateSucceeded {
		t.Fatalf("probe: %s/%s %s\n%s\n%s", j1.State, j1.Reason, j1.Message, h.Output(t, j1.ID, ""), sys1)
	}
	v1, s1 := jobtest.ProbeValues(out1), sections(out1)
	env := envOf(s1["env"])
	conf := jsonMap(t, s1["config"])
	stateAfter1 := rowState()
	exports := map[string]string{}
	for _, id := range []string{"out.c-conf.legacy", "out.c-conf.typed", "out.c-conf.sliced", "out.c-conf.merged", "out.c-conf.byname", "out.c-def.plain"} {
		exports[id] = exportCSV(t, st, id)
	}
	files1 := map[string][]storage.File{}
	for _, tag := range []string{"report", "from-mapping", "from-manifest", "conf-scratch"} {
		files1[tag], _ = st.ListFiles(ctx, []string{tag}, 0)
	}

	// Run 2: a before and an after processor around the component.
	run2 := probe
	run2.Before = []job.ProcessorRun{{Component: spec.Component{ID: "conf-before", Image: img}}}
	run2.After = []job.ProcessorRun{{Component: spec.Component{ID: "conf-after", Image: img}}}
	j2 := h.runComponent(t, run2, token)
	out2 := h.Output(t, j2.ID, "stdout")
	if j2.State != job.StateSucceeded {
		t.Fatalf("probe with processors: %s/%s %s\n%s", j2.State, j2.Reason, j2.Message, h.Output(t, j2.ID, ""))
	}
	v2, s2 := jobtest.ProbeValues(out2), sections(out2)
	stateAfter2 := rowState()

	// Run 3: the component writes no state.
	j3 := h.runComponent(t, probe, token)
	if j3.State != job.StateSucceeded {
		t.Fatalf("third probe: %s/%s %s", j3.State, j3.Reason, j3.Message)
	}
	stateAfter3 := rowState()

	// The output-mapping failures, one run each.
	plain := spec.Component{ID: "conf", Image: img, ImageParameters: map[string]any{"fooBar": "baz"}}
	// Each runs as the same token as the probe; the one of H8 in debug mode.
	fail := func(id string, out datadir.OutputMapping) (job.Job, string) {
		mode := ""
		if id == "conf-h8" {
			mode = "debug"
		}
		j := h.runComponent(t, job.ComponentRun{Component: plain, Config: spec.ComponentConfig{ID: id, Component: "conf",
			Storage: datadir.StorageMapping{Output: out}}, ConfigVersion: 1, Action: "run", Mode: mode,
			TokenID: "tok_conf01", TokenName: "conformance runner"}, "")
		return j, h.Output(t, j.ID, "stdout")
	}
	j6, _ := fail("conf-h6", datadir.OutputMapping{Tables: []datadir.OutputTable{
		{Source: "normal.csv", Destination: "out.c-conf.h6normal"},
		{Source: "absent.csv", Destination: "out.c-conf.h6absent"}}})
	j7, _ := fail("conf-h7", datadir.OutputMapping{Tables: []datadir.OutputTable{
		{Source: "write-always.csv", Destination: "out.c-conf.h7wa", WriteAlways: true},
		{Source: "non-existent.csv", Destination: "out.c-conf.h7ne"},
		{Source: "sliced.csv", Destination: "out.c-conf.h7sliced"}}})
	j8, out8 := fail("conf-h8", datadir.OutputMapping{Tables: []datadir.OutputTable{
		{Source: "write-always.csv", Destination: "out.c-conf.h8wa", WriteAlways: true}}})
	j2f, out2f := fail("conf-h2", datadir.OutputMapping{})
	j10, _ := fail("conf-h10", datadir.OutputMapping{})

	// A. Data folder.

	// docker-bundle src/Docker/Runner/WorkingDirectory.php::createWorkingDir
	conform(t, "A1 the runner creates in/tables, in/files, in/user, out/tables, out/files", "DB src/Docker/Runner/WorkingDirectory.php::createWorkingDir", func(t *testing.T) {
		for _, p := range []string{"in", "in/tables", "in/files", "in/user", "out", "out/tables", "out/files"} {
			if v1["dir:"+p] != "yes" {
				t.Errorf("/data/%s: %q", p, v1["dir:"+p])
			}
		}
	})
	// docker-bundle commit 3df121f3 "fix(container): pre-generate /in/user folder"
	conform(t, "A2 in/user is pre-created, empty", "DB commit 3df121f3 \"fix(container): pre-generate /in/user folder\"", func(t *testing.T) {
		if v1["user_files"] != "0" {
			t.Errorf("in/user holds %s entries", v1["user_files"])
		}
	})
	// docker-bundle Container.php::getRunCommand (--user $(id -u):$(id -g)); berth runs the
	// component as its configured non-root user, who owns the whole /data tree.
	conform(t, "A4 the whole /data is writable by the container's non-root user", "DB Container.php::getRunCommand; JQ ComponentSpecification::runAsRoot", func(t *testing.T) {
		if v1["uid"] == "0" || v1["uid"] == "" {
			t.Errorf("uid %q", v1["uid"])
		}
		for _, p := range []string{"top.txt", "in/user/u.txt", "in/tables/t.txt", "in/files/f.txt"} {
			if v1["write:"+p] != "ok" {
				t.Errorf("/data/%s: %s", p, v1["write:"+p])
			}
		}
	})
	// docker-bundle WorkingDirectory::moveOutputToInput; test WorkingDirectoryTest::testWorkingDirectoryMove
	conform(t, "A7 after a before-processor in/user exists again, empty, and in/ is writable", "DB WorkingDirectory::moveOutputToInput; test WorkingDirectoryTest::testWorkingDirectoryMove", func(t *testing.T) {
		if v2["dir:in/user"] != "yes" || v2["user_files"] != "0" {
			t.Errorf("in/user after the before-processor: %q, %q entries", v2["dir:in/user"], v2["user_files"])
		}
		for _, p := range []string{"in/user/u.txt", "in/tables/t.txt", "top.txt"} {
			if v2["write:"+p] != "ok" {
				t.Errorf("/data/%s after the before-processor: %s", p, v2["write:"+p])
			}
		}
		if v2["in_tables"] != "people.csv" {
			t.Errorf("in/tables after the before-processor: %q", v2["in_tables"])
		}
	})
	// developers-docs extend/common-interface/folders.md § "Root Folder /data/" (scratch space is /tmp)
	conform(t, "A8 /tmp is scratch space the component can write", "DOCS extend/common-interface/folders.md § \"Root Folder /data/\"", func(t *testing.T) {
		if v1["tmp"] != "ok" {
			t.Errorf("/tmp: %q", v1["tmp"])
		}
	})
	// developers-docs folders.md § "/data/out/tables"; output-mapping Writer/FileWriter::uploadFiles
	conform(t, "A9 every table in out/tables is loaded, not only the mapped ones", "DOCS folders.md § \"/data/out/tables\", § \"/data/out/files\"; OM Writer/FileWriter::uploadFiles", func(t *testing.T) {
		if exports["out.c-conf.byname"] != "a\n1\n" {
			t.Errorf("unmapped table: %q", exports["out.c-conf.byname"])
		}
		if f := files1["report"]; len(f) != 1 {
			t.Errorf("unmapped file: %+v", f)
		}
	})
	// developers-docs folders.md § "/data/in/files"; input-mapping File/Strategy/Local::getFileDestinationPath
	conform(t, "A10 an input file is named {id}_{name}", "DOCS folders.md § \"/data/in/files\"; IM File/Strategy/Local::getFileDestinationPath", func(t *testing.T) {
		if want := itoa(inFile.ID) + "_notes.txt"; v1["in_files"] != want {
			t.Errorf("in/files: %q, want %q", v1["in_files"], want)
		}
	})
	// input-mapping Helper/PathHelper::getDestinationFilePath
	conform(t, "A11 an input table's file is its destination", "IM Helper/PathHelper::getDestinationFilePath; DOCS config-file.md § \"Tables\"", func(t *testing.T) {
		if v1["in_tables"] != "people.csv" || s1["people"] != "id,name\n1,ann\n2,bob" {
			t.Errorf("in/tables: %q, people.csv: %q", v1["in_tables"], s1["people"])
		}
	})

	// B. config.json.

	// docker-bundle Tests/Runner/ConfigFileTest::testDefinitionParameters
	conform(t, "B2 runtime and processors are removed", "DB Runner/ConfigFile::createConfigFile; test ConfigFileTest::testDefinitionParameters", func(t *testing.T) {
		for _, k := range []string{"runtime", "processors"} {
			if _, ok := conf[k]; ok {
				t.Errorf("config.json has %s", k)
			}
		}
	})
	// docker-bundle ConfigFile::createConfigFile (image_parameters)
	conform(t, "B3 image_parameters are the component's", "DB ConfigFile::createConfigFile; Runner::runImages", func(t *testing.T) {
		jsonEq(t, "image_parameters", conf["image_parameters"], `{"fooBar": "baz"}`)
	})
	// docker-bundle Tests/Runner/ConfigFileTest::testEmptyConfig
	conform(t, "B4 action is run", "DB ConfigFile::createConfigFile; test ConfigFileTest::testEmptyConfig", func(t *testing.T) {
		if conf["action"] != "run" {
			t.Errorf("action %v", conf["action"])
		}
	})
	// docker-bundle Tests/Runner/ConfigFileTest::testConfig
	conform(t, "B5 shared_code_row_ids is always there, []", "DB Configuration/Container.php; tests ConfigFileTest::testConfig, ConfigurationAdapterTest::testConfigurationEmpty", func(t *testing.T) {
		jsonEq(t, "shared_code_row_ids", conf["shared_code_row_ids"], `[]`)
	})
	// docker-bundle Tests/Docker/Configuration/ConfigurationAdapterTest::testConfigurationEmpty
	conform(t, "B6 empty parameters, storage and authorization are {}", "DB Configuration/Adapter::normalizeConfig; test ConfigurationAdapterTest::testConfigurationEmpty", func(t *testing.T) {
		c := sections(out2f)["config"]
		for _, k := range []string{`"parameters": {}`, `"storage": {}`, `"authorization": {}`} {
			if !strings.Contains(c, k) {
				t.Errorf("config.json lacks %s:\n%s", k, c)
			}
		}
		jsonEq(t, "authorization", conf["authorization"], `{}`)
	})
	// docker-bundle Tests/Runner/ConfigFileTest::testConfig
	conform(t, "B7 the config file's keys, in order, and the parameters as given", "DB Tests/Runner/ConfigFileTest::testConfig", func(t *testing.T) {
		c := sections(out2f)["config"]
		if got := strings.Join(jsonKeys(t, c), ","); got != "parameters,image_parameters,action,shared_code_row_ids,storage,authorization" {
			t.Errorf("keys %s", got)
		}
		jsonEq(t, "config.json", jsonMap(t, c), `{"parameters": {}, "image_parameters": {"fooBar": "baz"}, "action": "run", "shared_code_row_ids": [], "storage": {}, "authorization": {}}`)
		jsonEq(t, "parameters", conf["parameters"], `{"key1": "value1", "key2": {"key3": "value3", "key4": []}, "KBC_CONFIGID": "injected"}`)
	})
	// input-mapping tests/Configuration/TableConfigurationTest data set BasicConfiguration
	conform(t, "B12 input table mapping defaults", "IM Configuration/Table.php; test TableConfigurationTest data set BasicConfiguration", func(t *testing.T) {
		tb := at(conf, "storage.input.tables.0").(map[string]any)
		for k, want := range map[string]string{"source": `"in.c-conf.people"`, "destination": `"people.csv"`, "columns": `["id", "name"]`,
			"column_types": `[]`, "where_values": `[]`, "where_operator": `"eq"`, "overwrite": `false`, "keep_internal_timestamp_column": `true`} {
			jsonEq(t, k, tb[k], want)
		}
		for _, k := range []string{"days", "changed_since"} {
			if _, ok := tb[k]; ok {
				t.Errorf("%s has a default: %v", k, tb[k])
			}
		}
	})
	// input-mapping tests/Configuration/FileConfigurationTest::testOverwriteDefault, testEmptyTagsRemoved
	conform(t, "B15 input file mapping: overwrite true, empty keys removed", "IM Configuration/File.php; tests FileConfigurationTest::testOverwriteDefault, testEmptyTagsRemoved", func(t *testing.T) {
		jsonEq(t, "storage.input.files[0]", at(conf, "storage.input.files.0"), `{"tags": ["input-tag"], "overwrite": true}`)
	})
	// output-mapping tests/Configuration/TableTest::testBasicConfiguration
	conform(t, "B17 output table mapping defaults, the exact set", "OM Configuration/Table/BaseConfiguration.php; test TableTest::testBasicConfiguration", func(t *testing.T) {
		jsonEq(t, "storage.output.tables[0]", at(conf, "storage.output.tables.0"), `{"source": "merged.csv", "destination": "out.c-conf.merged",
			"incremental": false, "primary_key": ["id"], "columns": [], "distribution_key": [], "delete_where_values": [],
			"delete_where_operator": "eq", "delimiter": ",", "enclosure": "\"", "metadata": [], "column_metadata": [],
			"write_always": false, "tags": [], "schema": []}`)
	})
	// output-mapping tests/Configuration/FileTest::testConfiguration
	conform(t, "B21 output file mapping defaults", "OM Configuration/File/Manifest.php, Configuration/File.php; test FileTest::testConfiguration", func(t *testing.T) {
		jsonEq(t, "storage.output.files[0]", at(conf, "storage.output.files.0"), `{"source": "mapped.txt", "tags": ["from-mapping"],
			"is_public": false, "is_permanent": false, "is_encrypted": true, "notify": false}`)
	})
	// docker-bundle ConfigurationAdapterTest::getJsonConfigFileTemplate; output-mapping TableTest
	conform(t, "B32 empty maps inside mappings are written as []", "DB test ConfigurationAdapterTest::getJsonConfigFileTemplate; OM TableTest", func(t *testing.T) {
		for _, w := range []string{`"column_metadata": []`, `"where_values": []`, `"column_types": []`} {
			if !strings.Contains(s1["config"], w) {
				t.Errorf("config.json lacks %s", w)
			}
		}
	})
	// Derived in the brief (no Keboola test): the object form {"0": {...}} is read as a list and
	// written back as an array.
	conform(t, "B33 the older object form of a mapping list is written as an array", "derived; PC interface.py::Configuration.tables_input_mapping", func(t *testing.T) {
		for _, p := range []string{"storage.input.tables", "storage.output.tables"} {
			if l, ok := at(conf, p).([]any); !ok || len(l) != 1 {
				t.Errorf("%s = %v", p, at(conf, p))
			}
		}
	})

	// C. Environment. docker-bundle src/Docker/Runner/Environment.php::getEnvironmentVariables,
	// tests Tests/RunnerPart2/EnvironmentTest::*.

	conform(t, "C1 KBC_DATADIR is /data/", "DB Environment.php::getEnvironmentVariables", func(t *testing.T) {
		if env["KBC_DATADIR"] != "/data/" {
			t.Errorf("%q", env["KBC_DATADIR"])
		}
	})
	// berth's run id is the job id.
	conform(t, "C2 KBC_RUNID is the run id", "DB Environment.php; Container::getRunCommand", func(t *testing.T) {
		if env["KBC_RUNID"] != j1.ID {
			t.Errorf("%q, want %q", env["KBC_RUNID"], j1.ID)
		}
	})
	conform(t, "C3 KBC_PROJECTID is the project's id", "DB Environment.php (tokenInfo.owner.id)", func(t *testing.T) {
		if env["KBC_PROJECTID"] != "proj-42" {
			t.Errorf("%q", env["KBC_PROJECTID"])
		}
	})
	// test testExecutorForwardDetails: parameters.KBC_CONFIGID has no effect.
	conform(t, "C4 KBC_CONFIGID is the configuration id", "DB Environment::__construct; test testExecutorForwardDetails", func(t *testing.T) {
		if env["KBC_CONFIGID"] != "conf-probe" {
			t.Errorf("%q", env["KBC_CONFIGID"])
		}
	})
	conform(t, "C5 KBC_CONFIGVERSION is the configuration's version", "DB Environment.php ((string) $this->configVersion)", func(t *testing.T) {
		if env["KBC_CONFIGVERSION"] != "3" {
			t.Errorf("%q", env["KBC_CONFIGVERSION"])
		}
	})
	conform(t, "C6 KBC_COMPONENTID is the image's component, a processor's own", "DB Runner::runImages ($image->getSourceComponent())", func(t *testing.T) {
		if env["KBC_COMPONENTID"] != "conf" || v2["before_component"] != "conf-before" {
			t.Errorf("component %q, processor %q", env["KBC_COMPONENTID"], v2["before_component"])
		}
	})
	conform(t, "C7 KBC_STACKID is the host of the API URL", "DB Environment.php (parse_url($url, PHP_URL_HOST))", func(t *testing.T) {
		if env["KBC_STACKID"] != "berth.example.com" {
			t.Errorf("%q", env["KBC_STACKID"])
		}
	})
	// berth: no S3 or ABS staging; files are local (deliberate difference, docs/components.md).
	conform(t, "C8 KBC_STAGING_FILE_PROVIDER (berth: local)", "DB Environment.php (tokenInfo.owner.fileStorageProvider)", func(t *testing.T) {
		if env["KBC_STAGING_FILE_PROVIDER"] != "local" {
			t.Errorf("%q", env["KBC_STAGING_FILE_PROVIDER"])
		}
	})
	// test testExecutorEnvs; berth gives queuev2 (so Keboola's libraries keep write_always,
	// python-component interface.py::is_legacy_queue) and new-native-types when the component
	// declares a data type support: a deliberate difference, berth has no project features.
	conform(t, "C9 KBC_PROJECT_FEATURE_GATES (berth: queuev2, new-native-types)", "DB Environment.php; test testExecutorEnvs", func(t *testing.T) {
		if env["KBC_PROJECT_FEATURE_GATES"] != "queuev2,new-native-types" {
			t.Errorf("%q", env["KBC_PROJECT_FEATURE_GATES"])
		}
	})
	conform(t, "C10 KBC_COMPONENT_RUN_MODE is run, or debug for a debug run", "DB Environment.php", func(t *testing.T) {
		env8 := envOf(sections(out8)["env"])
		if env["KBC_COMPONENT_RUN_MODE"] != "run" || env8["KBC_COMPONENT_RUN_MODE"] != "debug" {
			t.Errorf("run: %q; debug run: %q", env["KBC_COMPONENT_RUN_MODE"], env8["KBC_COMPONENT_RUN_MODE"])
		}
	})
	// test testDataTypeSupportWithoutFeature: absent without it.
	conform(t, "C11 KBC_DATA_TYPE_SUPPORT is the component's, absent without one", "DB Runner::runImages; JQ ComponentSpecification::getDataTypesSupport; test testDataTypeSupportWithoutFeature", func(t *testing.T) {
		env8 := envOf(sections(out8)["env"])
		if env["KBC_DATA_TYPE_SUPPORT"] != "authoritative" {
			t.Errorf("with: %q", env["KBC_DATA_TYPE_SUPPORT"])
		}
		if v, ok := env8["KBC_DATA_TYPE_SUPPORT"]; ok || env8["KBC_PROJECT_FEATURE_GATES"] != "queuev2" {
			t.Errorf("without: %q, gates %q", v, env8["KBC_PROJECT_FEATURE_GATES"])
		}
	})
	// test testExecutorForwardToken passes an empty row id: then it is absent.
	conform(t, "C12 KBC_CONFIGROWID is the row id, absent without one", "DB Environment.php; test testExecutorForwardToken", func(t *testing.T) {
		env8 := envOf(sections(out8)["env"])
		if _, ok := env8["KBC_CONFIGROWID"]; ok || env["KBC_CONFIGROWID"] != "row-7" {
			t.Errorf("with: %q; without: %q", env["KBC_CONFIGROWID"], env8["KBC_CONFIGROWID"])
		}
	})
	// berth has no branches (deliberate difference): never set.
	conform(t, "C13 KBC_BRANCHID is absent (berth has no branches)", "DB Environment.php", func(t *testing.T) {
		if v, ok := env["KBC_BRANCHID"]; ok {
			t.Errorf("%q", v)
		}
	})
	// The token is the caller's; it never shows in the stored output.
	conform(t, "C14 KBC_TOKEN with forward_token, hidden in the output", "DB Environment.php; test testExecutorForwardToken", func(t *testing.T) {
		env8 := envOf(sections(out8)["env"])
		if env["KBC_TOKEN"] != "[hidden]" || strings.Contains(out1, token) {
			t.Errorf("with forward_token: %q", env["KBC_TOKEN"])
		}
		if v, ok := env8["KBC_TOKEN"]; ok {
			t.Errorf("without forward_token: %q", v)
		}
	})
	conform(t, "C15 KBC_URL with forward_token", "DB Environment.php; test testExecutorForwardToken", func(t *testing.T) {
		env8 := envOf(sections(out8)["env"])
		if env["KBC_URL"] != "https://berth.example.com:8443" {
			t.Errorf("with forward_token: %q", env["KBC_URL"])
		}
		if v, ok := env8["KBC_URL"]; ok {
			t.Errorf("without forward_token: %q", v)
		}
	})
	// test testExecutorForwardDetails: the token's id and description and the project's name
	// with forward_token_details, never the token; none of them without it.
	conform(t, "C16 KBC_PROJECTNAME, KBC_TOKENID, KBC_TOKENDESC with forward_token_details", "DB Environment.php; test testExecutorForwardDetails", func(t *testing.T) {
		env8 := envOf(sections(out8)["env"])
		if env["KBC_TOKENID"] != "tok_conf01" || env["KBC_TOKENDESC"] != "conformance runner" || env["KBC_PROJECTNAME"] != "berth" {
			t.Errorf("with forward_token_details: id %q desc %q project %q", env["KBC_TOKENID"], env["KBC_TOKENDESC"], env["KBC_PROJECTNAME"])
		}
		for _, k := range []string{"KBC_TOKENID", "KBC_TOKENDESC", "KBC_PROJECTNAME"} {
			if v, ok := env8[k]; ok {
				t.Errorf("without forward_token_details: %s=%q", k, v)
			}
		}
	})
	conform(t, "C19 no other KBC_* variables", "DB Environment.php; test testExecutorForwardDetails", func(t *testing.T) {
		var keys []string
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		want := "KBC_COMPONENTID,KBC_COMPONENT_RUN_MODE,KBC_CONFIGID,KBC_CONFIGROWID,KBC_CONFIGVERSION,KBC_DATADIR,KBC_DATA_TYPE_SUPPORT," +
			"KBC_PROJECTID,KBC_PROJECTNAME,KBC_PROJECT_FEATURE_GATES,KBC_RUNID,KBC_STACKID,KBC_STAGING_FILE_PROVIDER,KBC_TOKEN,KBC_TOKENDESC,KBC_TOKENID,KBC_URL"
		if got := strings.Join(keys, ","); got != want {
			t.Errorf("KBC_* = %s\nwant     %s", got, want)
		}
	})

	// D, E. Input manifests.

	tm := s1["tablemanifest"]
	// input-mapping Helper/ManifestCreator::writeTableManifest
	conform(t, "D1 input table manifest keys, in order", "IM Helper/ManifestCreator::writeTableManifest", func(t *testing.T) {
		want := []string{"id", "uri", "name", "primary_key", "distribution_key", "created", "last_change_date", "last_import_date", "columns", "metadata", "column_metadata"}
		got := jsonKeys(t, tm)
		i := 0
		for _, k := range got {
			if i < len(want) && k == want[i] {
				i++
			}
		}
		if i != len(want) {
			t.Errorf("keys %v: want %v in this order", got, want)
		}
		m := jsonMap(t, tm)
		if m["id"] != "in.c-conf.people" || m["uri"] != "https://berth.example.com:8443/api/v1/storage/tables/in.c-conf.people" {
			t.Errorf("id %v uri %v", m["id"], m["uri"])
		}
		jsonEq(t, "primary_key", m["primary_key"], `["id"]`)
	})
	// input-mapping tests/Helper/ManifestCreatorTest data set "json format with columns override"
	conform(t, "D3 columns are the mapping's, column_metadata one entry per column", "IM ManifestCreator; test ManifestCreatorTest data set \"json format with columns override\"", func(t *testing.T) {
		m := jsonMap(t, tm)
		jsonEq(t, "columns", m["columns"], `["id", "name"]`)
		jsonEq(t, "column_metadata", m["column_metadata"], `{"id": [], "name": []}`)
	})
	// input-mapping Configuration/Table/Manifest.php
	conform(t, "D4 metadata is an array, column_metadata an object", "IM Configuration/Table/Manifest.php", func(t *testing.T) {
		m := jsonMap(t, tm)
		if _, ok := m["metadata"].([]any); !ok {
			t.Errorf("metadata %T", m["metadata"])
		}
		if _, ok := m["column_metadata"].(map[string]any); !ok {
			t.Errorf("column_metadata %T", m["column_metadata"])
		}
	})
	conform(t, "D5 name is the storage table's name", "IM ManifestCreator ($tableInfo['name'])", func(t *testing.T) {
		if m := jsonMap(t, tm); m["name"] != "people" {
			t.Errorf("name %v", m["name"])
		}
	})
	fm := s1["filemanifest"]
	// input-mapping tests/Helper/ManifestCreatorTest::testCreateFileManifest (assertSame(array_keys…))
	conform(t, "E1 input file manifest keys, exactly and in order", "IM Helper/ManifestCreator::createFileManifest; test ManifestCreatorTest::testCreateFileManifest", func(t *testing.T) {
		if got := strings.Join(jsonKeys(t, fm), ","); got != "id,name,created,is_public,is_encrypted,is_sliced,tags,max_age_days,size_bytes" {
			t.Errorf("keys %s", got)
		}
	})
	conform(t, "E2 id, size_bytes and max_age_days are integers", "IM Configuration/File/Manifest.php; ManifestCreator", func(t *testing.T) {
		jsonEq(t, "file manifest", pick(jsonMap(t, fm), "id", "size_bytes", "max_age_days", "tags"),
			`{"id": `+itoa(inFile.ID)+`, "size_bytes": 5, "max_age_days": 0, "tags": ["input-tag"]}`)
		for _, k := range []string{"id", "size_bytes", "max_age_days"} {
			if strings.Contains(fm, `"`+k+`": "`) || strings.Contains(fm, `"`+k+`": 5.`) {
				t.Errorf("%s is not an integer: %s", k, fm)
			}
		}
	})
	conform(t, "E4 name is the stored file's name, without the id", "IM ManifestCreator ($fileInfo['name'])", func(t *testing.T) {
		if m := jsonMap(t, fm); m["name"] != "notes.txt" {
			t.Errorf("name %v", m["name"])
		}
	})

	// F. Output table manifests.

	// output-mapping Configuration/Table/Manifest.php + BaseConfiguration.php: every key is
	// accepted (berth warns of a key it does not know; none of these is one).
	conform(t, "F1 every key of both manifest formats is accepted", "OM Configuration/Table/Manifest.php + BaseConfiguration.php", func(t *testing.T) {
		if strings.Contains(sys1, "warning:") {
			t.Errorf("warnings for known keys:\n%s", sys1)
		}
		if exports["out.c-conf.legacy"] == "" || exports["out.c-conf.typed"] == "" {
			t.Errorf("not loaded")
		}
	})
	// python-component test test_create_and_write_table_manifest (the legacy format with every
	// key); developers-docs out-tables-manifests.md
	conform(t, "F2 the legacy format: incremental, primary key, delete_where", "DOCS manifest-files/out-tables-manifests.md; PC test test_create_and_write_table_manifest", func(t *testing.T) {
		if got := sortedRows(exports["out.c-conf.legacy"]); got != "foo,bar\n1,z\n3,c\n4,d\n" {
			t.Errorf("legacy table:\n%s", got)
		}
		if tb, _ := st.GetTable(ctx, st.DB(), "out.c-conf.legacy"); strings.Join(tb.PrimaryKey, ",") != "foo" {
			t.Errorf("primary key %v", tb.PrimaryKey)
		}
	})
	// developers-docs out-tables-manifests-native-types.md; output-mapping
	// LoadTableTaskCreator::buildLoadOptions (has_header: the first line is the header)
	conform(t, "F3 the newer format: has_header, schema with primary_key", "DOCS manifest-files/out-tables-manifests-native-types.md; OM Manifest.php", func(t *testing.T) {
		if got := exports["out.c-conf.typed"]; got != "id,name\n1,ann\n2,bob\n" {
			t.Errorf("typed table:\n%s", got)
		}
		if tb, _ := st.GetTable(ctx, st.DB(), "out.c-conf.typed"); strings.Join(tb.PrimaryKey, ",") != "id" {
			t.Errorf("primary key %v", tb.PrimaryKey)
		}
		// manifest_type "output" as the docs write it; a sliced table takes its columns from the schema.
		if got := exports["out.c-conf.sliced"]; got != "k,v\n1,x\n2,y\n" {
			t.Errorf("sliced typed table:\n%s", got)
		}
	})
	// developers-docs out-tables-manifests.md; folders.md § "Sliced Tables"
	conform(t, "F7 with columns the CSV has no header", "DOCS out-tables-manifests.md; folders.md § \"Sliced Tables\"", func(t *testing.T) {
		if !strings.Contains(exports["out.c-conf.legacy"], "4,d\n") {
			t.Errorf("the first line was taken as a header:\n%s", exports["out.c-conf.legacy"])
		}
	})
	// output-mapping Writer/Helper/ConfigurationMerger::mergeConfigurations
	conform(t, "F8 mapping wins, but its default incremental does not undo the manifest's", "OM Writer/Helper/ConfigurationMerger::mergeConfigurations", func(t *testing.T) {
		if got := exports["out.c-conf.merged"]; sortedRows(got) != "id,v\n1,a\n2,B\n3,c\n" {
			t.Errorf("merged table:\n%s", got)
		}
		if _, err := st.GetTable(ctx, st.DB(), "out.c-conf.wrong"); err == nil {
			t.Error("the manifest's destination won over the mapping's")
		}
	})
	// output-mapping Writer/Table/TableConfigurationResolver::ensureConfigurationDestination;
	// berth's default_bucket is a bucket name, Keboola's a flag naming the configuration's
	// bucket (deliberate difference).
	conform(t, "F9 destination from the file name, or the default bucket", "OM Writer/Table/TableConfigurationResolver::ensureConfigurationDestination, resolveDestinationName", func(t *testing.T) {
		if exports["out.c-conf.byname"] != "a\n1\n" || exports["out.c-def.plain"] != "a\n2\n" {
			t.Errorf("byname %q, plain %q", exports["out.c-conf.byname"], exports["out.c-def.plain"])
		}
	})

	// G. Output file manifests.

	// output-mapping tests/Configuration/File/ManifestTest
	conform(t, "G1 a file manifest with every key loads with its tags", "OM Configuration/File/Manifest.php; test ManifestTest", func(t *testing.T) {
		f := files1["report"]
		if len(f) != 1 || f[0].Name != "report.txt" || strings.Join(f[0].Tags, ",") != "conf,report" {
			t.Errorf("report file: %+v", f)
		}
	})
	// Keboola keeps a file that is not permanent 15 days (DOCS manifest-files/out-files-manifests.md).
	conform(t, "G2 file attributes kept; a file that is not permanent expires after 15 days", "OM Configuration/File/Manifest.php; DOCS out-files-manifests.md", func(t *testing.T) {
		r, sc := files1["report"], files1["conf-scratch"]
		if len(r) != 1 || !r[0].IsPermanent || !r[0].Notify || r[0].IsPublic || r[0].Expires != nil {
			t.Errorf("report file: %+v", r)
		}
		if len(sc) != 1 || sc[0].IsPermanent || !sc[0].IsPublic || sc[0].Expires == nil || sc[0].Expires.Sub(sc[0].Created) != storage.FileRetention {
			t.Errorf("scratch file: %+v", sc)
		}
	})
	// output-mapping Writer/FileWriter::uploadFiles (elseif ($configFromMapping || !$configFromManifest))
	conform(t, "G3 a mapping entry replaces the file's manifest", "OM Writer/FileWriter::uploadFiles", func(t *testing.T) {
		f := files1["from-mapping"]
		if len(f) != 1 || f[0].Name != "mapped.txt" || strings.Join(f[0].Tags, ",") != "from-mapping" {
			t.Errorf("mapped file: %+v", f)
		}
		if f := files1["from-manifest"]; len(f) != 0 {
			t.Errorf("the manifest's tags were used: %+v", f)
		}
	})

	// H. Output-mapping failures.

	// docker-bundle test RunnerTest::testExecutorFillsInputFilesStateAndInputTableResultOnUserError
	conform(t, "H1 missing sources: a user error naming them, joined by ', '", "OM SourcesValidator/LocalSourcesValidator::validatePhysicalFilesWithConfiguration; DB test RunnerTest::testExecutorFillsInputFilesStateAndInputTableResultOnUserError", func(t *testing.T) {
		if j7.State != job.StateFailed || j7.Reason != job.ReasonUserError || j7.Message != `Table sources not found: "non-existent.csv", "sliced.csv"` {
			t.Errorf("%s/%s %q", j7.State, j7.Reason, j7.Message)
		}
	})
	// output-mapping LocalSourcesValidator::validatePhysicalFilesWithManifest
	conform(t, "H2 a manifest without its data is an orphan", "OM LocalSourcesValidator::validatePhysicalFilesWithManifest", func(t *testing.T) {
		if j2f.Reason != job.ReasonUserError || !strings.Contains(j2f.Message, `Found orphaned table manifest: "x.csv.manifest"`) {
			t.Errorf("%s/%s %q", j2f.State, j2f.Reason, j2f.Message)
		}
		if _, err := st.GetTable(ctx, st.DB(), "out.c-conf.other"); err == nil {
			t.Error("a table was loaded from a job with an orphaned manifest")
		}
	})
	// docker-bundle tests testOutputTablesOnJobFailureManifest, testOutputTablesOnJobFailureOriginalErrorNotConcealed
	conform(t, "H6 a failed component: only write_always tables load, its own error is kept", "DB Runner::runComponent; tests testOutputTablesOnJobFailureManifest, testOutputTablesOnJobFailureOriginalErrorNotConcealed", func(t *testing.T) {
		if j6.Reason != job.ReasonUserError || j6.Message != "user error from stdout" {
			t.Errorf("%s/%s %q", j6.State, j6.Reason, j6.Message)
		}
		if got := exportCSV(t, st, "out.c-conf.h6wa"); got != "id\n1\n" {
			t.Errorf("write_always (manifest) table: %q", got)
		}
		if _, err := st.GetTable(ctx, st.DB(), "out.c-conf.h6normal"); err == nil {
			t.Error("a table without write_always was loaded from a failed job")
		}
	})
	// docker-bundle test testOutputTablesOnJobFailureRecoverableOutputMappingError
	conform(t, "H7 a missing source after success: the write_always table still loads", "DB test testOutputTablesOnJobFailureRecoverableOutputMappingError", func(t *testing.T) {
		if got := exportCSV(t, st, "out.c-conf.h7wa"); got != "id\n7\n" {
			t.Errorf("write_always table: %q", got)
		}
	})
	// docker-bundle test testOutputTablesOnJobFailureNonRecoverableOutputMappingError
	conform(t, "H8 a missing write_always source fails naming it, nothing created", "DB test testOutputTablesOnJobFailureNonRecoverableOutputMappingError", func(t *testing.T) {
		if j8.Reason != job.ReasonUserError || j8.Message != `Table sources not found: "write-always.csv"` {
			t.Errorf("%s/%s %q", j8.State, j8.Reason, j8.Message)
		}
		if _, err := st.GetTable(ctx, st.DB(), "out.c-conf.h8wa"); err == nil {
			t.Error("the missing write_always table was created")
		}
	})
	// docker-bundle Container::handleContainerFailure; test ContainerErrorHandlingTest::testGraceful
	conform(t, "H10 the message is stderr when there is one, else stdout", "DB Container::handleContainerFailure; test ContainerErrorHandlingTest::testGraceful", func(t *testing.T) {
		if j10.Reason != job.ReasonUserError || j10.Message != "what the component said is wrong" {
			t.Errorf("stderr and stdout: %s %q", j10.Reason, j10.Message)
		}
		if j6.Message != "user error from stdout" {
			t.Errorf("stdout only: %q", j6.Message)
		}
	})

	// I. State.

	// docker-bundle Tests/Runner/StateFileTest::testCreateStateFileWithEmptyState
	conform(t, "I1 in/state.json is {} with no stored state", "DB Runner/StateFile::createStateFile; test StateFileTest::testCreateStateFileWithEmptyState", func(t *testing.T) {
		if s1["state"] != "{}" {
			t.Errorf("in/state.json %q", s1["state"])
		}
		if !strings.Contains(s2["state"], `"bar": "Kochba"`) {
			t.Errorf("the second run's in/state.json %q", s2["state"])
		}
	})
	// docker-bundle tests RunnerTest::testExecutorBeforeProcessorNoState, testExecutorAfterProcessorNoState
	conform(t, "I2 processors never see state.json", "DB Runner::runImages; tests RunnerTest::testExecutorBeforeProcessorNoState, testExecutorAfterProcessorNoState", func(t *testing.T) {
		if v2["before_state"] != "absent" || v2["after_state"] != "absent" {
			t.Errorf("before %q, after %q", v2["before_state"], v2["after_state"])
		}
	})
	// docker-bundle test RunnerTest::testExecutorAfterProcessorNoState (['bar' => 'Kochba'] stored)
	conform(t, "I3 the component's state is stored; an after-processor cannot change it", "DB StateFile::loadStateFromFile, Runner::runImages; test testExecutorAfterProcessorNoState", func(t *testing.T) {
		if !strings.Contains(stateAfter1.State, `"bar": "Kochba"`) {
			t.Errorf("after run 1: %q", stateAfter1.State)
		}
		if !strings.Contains(stateAfter2.State, `"run": 2`) || strings.Contains(stateAfter2.State, "after-processor") {
			t.Errorf("after run 2 (with processors): %q", stateAfter2.State)
		}
	})
	// docker-bundle tests StateFileTest::testLoadStateFromFileMissingStateFile, RunnerTest::testClearStateWithNamespace
	conform(t, "I4 no out/state.json clears the state", "DB tests StateFileTest::testLoadStateFromFileMissingStateFile, RunnerTest::testClearStateWithNamespace; DOCS config-file.md § \"State File\"", func(t *testing.T) {
		if stateAfter3.State != "{}" {
			t.Errorf("after run 3: %q", stateAfter3.State)
		}
	})
	// docker-bundle test testExecutorStoreStateWithProcessorError ("State must not be changed")
	conform(t, "I6 a failed job stores no state", "DB Runner::run, shouldStoreState; test testExecutorStoreStateWithProcessorError", func(t *testing.T) {
		if row, _ := h.St.GetConfig(ctx, "conf-h6"); row.State != "{}" {
			t.Errorf("state %q", row.State)
		}
	})
}

func pick(m map[string]any, keys ...string) map[string]any {
	out := map[string]any{}
	for _, k := range keys {
		out[k] = m[k]
	}
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestPythonComponentLikeKeboolaLibraries runs a Python component (testdata/kbc-py) that
// writes its outputs the way keboola.component does: a legacy table manifest with every key,
// a second table in the format the environment asks for (new with KBC_DATA_TYPE_SUPPORT
// authoritative, legacy without), a file manifest with is_permanent, is_encrypted and notify,
// files under /data/in/user and at /data/ top level, and the stored OAuth credentials read
// from authorization.oauth_api.credentials. Its outputs must land exactly.
func TestPythonComponentLikeKeboolaLibraries(t *testing.T) {
	sealer, err := auth.LoadOrCreateKey(filepath.Join(t.TempDir(), "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	h, st := componentHarness(t, func(c *testConfig) { c.Sealer = sealer })
	ctx := context.Background()
	if _, err := h.Eng.InspectImage(ctx, "berth/python:3.11"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the python base is missing: `make test` bootstraps it")
		}
		t.Skip("python base not built")
	}
	ref := "berth/test-kbc-py:" + enginetest.Unique(t)
	if _, err := h.Eng.BuildImage(ctx, runtime.BuildSpec{ContextDir: "testdata/kbc-py", Tags: []string{ref}, Labels: enginetest.Labels(t)}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Eng.RemoveImage(context.Background(), ref) })
	loadCSV(t, st, "in.c-py.orders", "id,region,amount\n1,east,10\n2,west,5\n3,east,7\n", storage.LoadOptions{PrimaryKey: []string{"id"}})
	loadCSV(t, st, "out.c-py.regions", "region,total\ngone,1\neast,0\n", storage.LoadOptions{PrimaryKey: []string{"region"}})

	// The shape of docker-bundle's AuthorizationTest::testOauthDecrypt: #data is a JSON string.
	creds := map[string]any{"id": "test-credentials-45", "authorizedFor": "", "creator": map[string]any{"id": "3800", "description": "tester"},
		"created": "2016-02-09 09:47:16", "#data": `{"access_token": "abc123"}`, "oauthVersion": "2.0", "appKey": "123456", "#appSecret": "654321"}
	cfg := spec.ComponentConfig{ID: "kbc-py-1", Component: "kbc-py", Parameters: map[string]any{"drop_regions": []any{"gone"}},
		Storage: datadir.StorageMapping{Input: datadir.InputMapping{Tables: []datadir.InputTable{{Source: "in.c-py.orders", Destination: "orders.csv"}}}}}
	credsJSON, _ := json.Marshal(creds)
	sealed, err := sealer.Seal(credsJSON)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.St.PutCredentials(ctx, cfg.ID, sealed); err != nil {
		t.Fatal(err)
	}
	run := func(dataTypes string) (job.Job, map[string]string) {
		comp := spec.Component{ID: "kbc-py", Image: ref, DataTypeSupport: dataTypes}
		j := h.runComponent(t, job.ComponentRun{Component: comp, Config: cfg, ConfigVersion: 1, Action: "run"}, "")
		out := h.Output(t, j.ID, "")
		if j.State != job.StateSucceeded {
			t.Fatalf("%s/%s %s\n%s\n%s", j.State, j.Reason, j.Message, out, h.Output(t, j.ID, "system"))
		}
		if sys := h.Output(t, j.ID, "system"); strings.Contains(sys, "warning:") {
			t.Errorf("a manifest key the library writes was not known:\n%s", sys)
		}
		return j, jobtest.ProbeValues(h.Output(t, j.ID, "stdout"))
	}
	check := func(run int) {
		t.Helper()
		if got := sortedRows(exportCSV(t, st, "out.c-py.regions")); got != "region,total\neast,17\nwest,5\n" {
			t.Errorf("run %d: regions (incremental, delete_where gone):\n%s", run, got)
		}
		if got := exportCSV(t, st, "out.c-py.orders_copy"); got != "id,region,amount\n1,east,10\n2,west,5\n3,east,7\n" {
			t.Errorf("run %d: orders_copy:\n%s", run, got)
		}
		for id, pk := range map[string]string{"out.c-py.regions": "region", "out.c-py.orders_copy": "id"} {
			if tb, _ := st.GetTable(ctx, st.DB(), id); strings.Join(tb.PrimaryKey, ",") != pk {
				t.Errorf("run %d: %s primary key %v", run, id, tb.PrimaryKey)
			}
		}
		// Manifest metadata is kept as the table's and its columns' metadata, in either format.
		meta := func(ms []storage.Meta) map[string]string {
			out := map[string]string{}
			for _, m := range ms {
				out[m.Key] = m.Value
			}
			return out
		}
		if tb, _ := st.GetTable(ctx, st.DB(), "out.c-py.regions"); meta(tb.Metadata)["KBC.description"] != "Totals by region" ||
			meta(tb.Metadata)["source"] != "in.c-py.orders" || meta(tb.ColumnMetadata["total"])["KBC.datatype.basetype"] != "NUMERIC" ||
			tb.Metadata[0].Provider != "kbc-py" {
			t.Errorf("run %d: regions metadata %+v %+v", run, tb.Metadata, tb.ColumnMetadata)
		}
		if tb, _ := st.GetTable(ctx, st.DB(), "out.c-py.orders_copy"); meta(tb.Metadata)["owner"] != "kbc-py" ||
			meta(tb.ColumnMetadata["region"])["KBC.description"] != "where" {
			t.Errorf("run %d: orders_copy metadata %+v %+v", run, tb.Metadata, tb.ColumnMetadata)
		}
		files, _ := st.ListFiles(ctx, []string{"kbc-py"}, 0)
		if len(files) != run || files[0].Name != "report.txt" || strings.Join(files[0].Tags, ",") != "kbc-py,report" {
			t.Errorf("run %d: report files %+v", run, files)
		} else {
			rc, _, _ := st.OpenFile(ctx, files[0].ID)
			b, _ := io.ReadAll(rc)
			rc.Close()
			if string(b) != "3 orders in 2 regions\n" {
				t.Errorf("run %d: report %q", run, b)
			}
		}
		if row, _ := h.St.GetConfig(ctx, cfg.ID); strings.ReplaceAll(row.State, " ", "") != fmt.Sprintf(`{"runs":%d}`, run) {
			t.Errorf("run %d: state %q", run, row.State)
		}
	}

	// Run 1: data types authoritative, so the library writes the new format for its second table.
	_, v := run("authoritative")
	for k, want := range map[string]string{"oauth_app_key_digits": "6:True", "oauth_token_length": "6", "user_file": "ok", "top_file": "ok",
		"format": "new legacy_queue=False"} {
		if v[k] != want {
			t.Errorf("%s = %q, want %q", k, v[k], want)
		}
	}
	legacyMan, newMan := jsonMap(t, v["manifest:regions.csv"]), jsonMap(t, v["manifest:orders_copy.csv"])
	for _, k := range []string{"destination", "columns", "incremental", "primary_key", "write_always", "delimiter", "enclosure",
		"metadata", "column_metadata", "delete_where_column", "delete_where_values", "delete_where_operator"} {
		if _, ok := legacyMan[k]; !ok {
			t.Errorf("the legacy manifest lacks %s: %v", k, legacyMan)
		}
	}
	for _, k := range []string{"manifest_type", "has_header", "schema", "table_metadata", "write_always"} {
		if _, ok := newMan[k]; !ok {
			t.Errorf("the new manifest lacks %s: %v", k, newMan)
		}
	}
	check(1)

	// Run 2: no data type support: both tables in the legacy format; the state carries on.
	_, v = run("")
	if v["format"] != "legacy legacy_queue=False" {
		t.Errorf("format %q", v["format"])
	}
	if m := jsonMap(t, v["manifest:orders_copy.csv"]); m["manifest_type"] != nil || m["columns"] != nil || m["primary_key"] == nil {
		t.Errorf("the legacy manifest of a table with a header: %v", m)
	}
	check(2)
}
