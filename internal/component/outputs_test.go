package component

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/job/jobtest"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/storage"
)

// storageSnapshot lists every table with its rows and every file with its content.
func storageSnapshot(t *testing.T, st *storage.Storage) string {
	t.Helper()
	ctx := context.Background()
	var lines []string
	tables, err := st.ListTables(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		lines = append(lines, "table "+tb.ID+"\n"+exportCSV(t, st, tb.ID))
	}
	files, err := st.ListFiles(ctx, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		rc, _, err := st.OpenFile(ctx, f.ID)
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		buf := make([]byte, 64<<10)
		for {
			n, err := rc.Read(buf)
			sb.Write(buf[:n])
			if err != nil {
				break
			}
		}
		rc.Close()
		lines = append(lines, fmt.Sprintf("file %s %v\n%s", f.Name, f.Tags, sb.String()))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// passwdLine is what a leaked /etc/passwd would show.
const passwdLine = "root:x:0:0"

// TestOutputLinksAreRefused: a component that places a link to a host file (or a hard link,
// or a link to a host folder) in each output place fails as a user error naming the path
// under /data, nothing of the job reaches storage, the stored state is unchanged, and the
// host file's content appears nowhere.
func TestOutputLinksAreRefused(t *testing.T) {
	h, st := componentHarness(t, nil)
	host := jobtest.NewHostFiles(t)
	ctx := context.Background()
	loadCSV(t, st, "out.c-main.keep", "id\n1\n", storage.LoadOptions{})
	img := h.componentImage(t, `set -e
d=/data/out
c=$(grep -o '"case": "[^"]*"' /data/config.json | cut -d'"' -f4)
to=$(grep -o '"target": "[^"]*"' /data/config.json | cut -d'"' -f4)
printf 'id\n2\n' > $d/tables/out.c-main.keep.csv
echo '{"ok": 1}' > $d/state.json
case $c in
table) ln -s $to $d/tables/out.c-main.x.csv ;;
file) ln -s $to $d/files/f.txt ;;
manifest) printf 'a\n1\n' > $d/tables/x.csv; ln -s $to $d/tables/x.csv.manifest ;;
state) rm $d/state.json; ln -s $to $d/state.json ;;
slice) mkdir $d/tables/s.csv; ln -s $to $d/tables/s.csv/part1; echo '{"destination": "out.c-main.s", "columns": ["a"]}' > $d/tables/s.csv.manifest ;;
dirlink) ln -s $to $d/tables/dl.csv; echo '{"destination": "out.c-main.dl", "columns": ["a"]}' > $d/tables/dl.csv.manifest ;;
filesdir) ln -s $to $d/files/sub ;;
hardlink) printf 'id\n1\n' > $d/tables/out.c-main.h.csv; ln $d/tables/out.c-main.h.csv $d/files/h.csv ;;
esac
`)
	comp := spec.Component{ID: "links", Image: img}
	cases := []struct{ name, target, path string }{
		{"table", host.CSV, "out/tables/out.c-main.x.csv"},
		{"table", "/etc/passwd", "out/tables/out.c-main.x.csv"},
		{"file", host.CSV, "out/files/f.txt"},
		{"file", "/etc/passwd", "out/files/f.txt"},
		{"manifest", host.Manifest, "out/tables/x.csv.manifest"},
		{"manifest", "/etc/passwd", "out/tables/x.csv.manifest"},
		{"state", host.State, "out/state.json"},
		{"state", "/etc/passwd", "out/state.json"},
		{"slice", host.CSV, "out/tables/s.csv/part1"},
		{"dirlink", host.Dir, "out/tables/dl.csv"},
		{"filesdir", "/etc", "out/files/sub"},
		{"hardlink", "", "out/files/h.csv"},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%s-%d", c.name, i), func(t *testing.T) {
			before := storageSnapshot(t, st)
			cfgID := fmt.Sprintf("links-%d", i)
			cfg := spec.ComponentConfig{ID: cfgID, Component: "links", Parameters: map[string]any{"case": c.name, "target": c.target}}
			j := h.runConfig(t, comp, cfg)
			out := h.Output(t, j.ID, "")
			if j.State != job.StateFailed || j.Reason != job.ReasonUserError || !strings.Contains(j.Message, c.path) || !strings.Contains(j.Message, "link") {
				t.Fatalf("want a user error naming %s as a link, got %s/%s %q\n%s", c.path, j.State, j.Reason, j.Message, out)
			}
			t.Log(j.Message)
			after := storageSnapshot(t, st)
			if after != before {
				t.Errorf("storage changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			row, _ := h.St.GetConfig(ctx, cfgID)
			if row.State != "{}" {
				t.Errorf("state saved: %q", row.State)
			}
			for _, leak := range []string{host.Marker, passwdLine} {
				for where, s := range map[string]string{"storage": after, "message": j.Message, "output": out, "state": row.State} {
					if strings.Contains(s, leak) {
						t.Errorf("host content %q leaked into the %s", leak, where)
					}
				}
			}
		})
	}
}

// TestProcessorHandOverRefusesLinks: a before processor that links its out/state.json to a
// host file does not get berth to write the state there, and a link an after processor leaves
// among the tables is refused like the component's own.
func TestProcessorHandOverRefusesLinks(t *testing.T) {
	h, st := componentHarness(t, nil)
	host := jobtest.NewHostFiles(t)
	ctx := context.Background()
	main := h.componentImage(t, "printf 'id\\n1\\n' > /data/out/tables/out.c-main.t.csv\necho '{\"n\": 1}' > /data/out/state.json\n")
	stateLink := h.componentImage(t, "ln -s "+host.Victim+" /data/out/state.json\n")
	tableLink := h.componentImage(t, "cp -r /data/in/tables/. /data/out/tables/\nln -s "+host.CSV+" /data/out/tables/out.c-main.x.csv\n")
	comp := spec.Component{ID: "pmain", Image: main}
	cfg := spec.ComponentConfig{ID: "pmain-1", Component: "pmain"}
	body := `{"id": "pmain-1", "component": "pmain"}`
	h.St.PutComponent(ctx, "pmain", `{"id": "pmain", "image": "`+main+`"}`)
	h.St.PutConfig(ctx, cfg.ID, "pmain", body)
	run := func(cr *job.ComponentRun) job.Job {
		j, err := h.M.Submit(ctx, job.Submission{Component: cr})
		if err != nil {
			t.Fatal(err)
		}
		j, _ = h.M.Wait(ctx, j.ID)
		return j
	}
	for _, c := range []struct {
		name string
		cr   *job.ComponentRun
		path string
	}{
		{"before-state", &job.ComponentRun{Component: comp, Config: cfg, Action: "run",
			Before: []job.ProcessorRun{{Component: spec.Component{ID: "statelink", Image: stateLink}}}}, "out/state.json"},
		{"after-table", &job.ComponentRun{Component: comp, Config: cfg, Action: "run",
			After: []job.ProcessorRun{{Component: spec.Component{ID: "tablelink", Image: tableLink}}}}, "out/tables/out.c-main.x.csv"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := storageSnapshot(t, st)
			j := run(c.cr)
			out := h.Output(t, j.ID, "")
			if j.State != job.StateFailed || j.Reason != job.ReasonUserError || !strings.Contains(j.Message, c.path) || !strings.Contains(j.Message, "link") {
				t.Fatalf("want a user error naming %s as a link, got %s/%s %q\n%s", c.path, j.State, j.Reason, j.Message, out)
			}
			t.Log(j.Message)
			if b, _ := os.ReadFile(host.Victim); string(b) != "ORIGINAL "+host.Marker+"\n" {
				t.Fatalf("the host file was written through the link: %q", b)
			}
			if after := storageSnapshot(t, st); after != before || strings.Contains(after, host.Marker) {
				t.Errorf("storage changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if row, _ := h.St.GetConfig(ctx, cfg.ID); row.State != "{}" {
				t.Errorf("state saved: %q", row.State)
			}
		})
	}
}

// TestOutputCaps: a state.json, a manifest or a number of output files over its cap fails
// the job with an error naming the cap, and nothing is loaded; the stored state is the one
// before.
func TestOutputCaps(t *testing.T) {
	h, st := componentHarness(t, nil)
	ctx := context.Background()
	img := h.componentImage(t, `set -e
d=/data/out
c=$(grep -o '"case": "[^"]*"' /data/config.json | cut -d'"' -f4)
printf 'id\n1\n' > $d/tables/out.c-main.capped.csv
case $c in
small) echo '{"v": 1}' > $d/state.json ;;
state) { printf '{"x": "'; head -c 2000000 /dev/zero | tr '\0' a; printf '"}'; } > $d/state.json ;;
manifest) printf 'a\n1\n' > $d/tables/m.csv; { printf '{"destination": "out.c-main.m"'; head -c 2000000 /dev/zero | tr '\0' ' '; printf '}'; } > $d/tables/m.csv.manifest ;;
files) i=0; while [ $i -lt 10001 ]; do : > $d/files/f$i; i=$((i+1)); done ;;
esac
`)
	comp := spec.Component{ID: "caps", Image: img}
	cfg := spec.ComponentConfig{ID: "caps-1", Component: "caps", Parameters: map[string]any{"case": "small"}}
	if j := h.runConfig(t, comp, cfg); j.State != job.StateSucceeded {
		t.Fatalf("small state: %s/%s %q", j.State, j.Reason, j.Message)
	}
	st.Load(ctx, st.DB(), "out.c-main.capped", []string{"id"}, [][]string{{"0"}}, storage.LoadOptions{})
	for _, c := range []struct{ name, path, limit string }{
		{"state", "out/state.json", "1 MiB"},
		{"manifest", "out/tables/m.csv.manifest", "1 MiB"},
		{"files", "out/", "10000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := storageSnapshot(t, st)
			cfg.Parameters = map[string]any{"case": c.name}
			j := h.runConfig(t, comp, cfg)
			if j.State != job.StateFailed || j.Reason != job.ReasonUserError || !strings.Contains(j.Message, c.path) || !strings.Contains(j.Message, c.limit) {
				t.Fatalf("want a user error naming %s and the limit %s, got %s/%s %q", c.path, c.limit, j.State, j.Reason, j.Message)
			}
			t.Log(j.Message)
			if after := storageSnapshot(t, st); after != before {
				t.Errorf("storage changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if row, _ := h.St.GetConfig(ctx, cfg.ID); row.State != "{\"v\": 1}\n" {
				t.Errorf("stored state changed: %.100q", row.State)
			}
		})
	}
}
