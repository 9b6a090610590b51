package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/storage"
)

func newComponentCmd(g *globals) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "component",
		Short: "Register and list components (images speaking the common interface)",
		Long: `A component is an image run through the common interface: it reads /data/config.json
and /data/in (tables and files with manifests, state.json) and writes /data/out. Register it
once (admin token), then create configurations for it (berth config).`,
	}
	cf.register(cmd)
	var build, gitURL, gitRef string
	var shared bool
	reg := &cobra.Command{
		Use:   "register FILE.json",
		Short: "Register (or update) a component from its JSON definition",
		Long: `Register (or update) a component from its JSON definition. It is private to the token's
project (a project admin's token), or with --shared usable by every project (an admin's token).
A component id is unique on the server.`,
		Example: `  berth component register --build examples/component-sales examples/component-sales/component.json
  berth component register component.json            # its "image" is already on the engine
  berth component register --shared component.json   # every project may use it (admin)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			raw, err := readFile(args[0])
			if err != nil {
				return withCode(ExitUsage, err)
			}
			var def map[string]any
			if err := json.Unmarshal(raw, &def); err != nil {
				return withCode(ExitUsage, fmt.Errorf("%s: %w", args[0], err))
			}
			if build != "" && gitURL != "" {
				return withCode(ExitUsage, fmt.Errorf("give --build or --git, not both"))
			}
			if gitURL != "" {
				id, _ := def["id"].(string)
				ref, err := buildComponentFromGit(cmd.Context(), g, id, gitURL, gitRef)
				if err != nil {
					return withCode(ExitFailure, err)
				}
				def["image"] = ref
				raw, _ = json.Marshal(def)
			}
			if build != "" {
				id, _ := def["id"].(string)
				ref, err := buildComponentImage(cmd.Context(), g, id, build)
				if err != nil {
					return withCode(ExitFailure, err)
				}
				def["image"] = ref
				raw, _ = json.Marshal(def)
			}
			if _, err := spec.ParseComponent(raw, args[0]); err != nil {
				return withCode(ExitUsage, err)
			}
			var out spec.Component
			path := "/api/v1/components"
			if shared {
				path += "?shared=true"
			}
			if err := c.raw(cmd.Context(), http.MethodPost, path, "application/json", bytes.NewReader(raw), nil); err != nil {
				return err
			}
			json.Unmarshal(raw, &out)
			if shared {
				fmt.Fprintf(g.stdout, "registered %s (image %s), shared with every project\n", out.ID, out.Image)
			} else {
				fmt.Fprintf(g.stdout, "registered %s (image %s)\n", out.ID, out.Image)
			}
			return nil
		},
	}
	reg.Flags().StringVar(&build, "build", "", "build the image from this folder's Dockerfile first (on this machine's engine)")
	reg.Flags().StringVar(&gitURL, "git", "", "build the image from this git repository's Dockerfile (a URL, a path or file://); rebuilt only when the commit changes")
	reg.Flags().StringVar(&gitRef, "ref", "HEAD", "with --git: the branch, tag or commit to build")
	reg.Flags().BoolVar(&shared, "shared", false, "usable by every project, not only the token's (needs an admin token)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List components",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			var out struct {
				Components []listedComponent `json:"components"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/components", nil, &out); err != nil {
				return err
			}
			return printOut(g.stdout, cf.output, out.Components, func(w io.Writer) error {
				t := newTable(w, "ID", "PROJECT", "IMAGE", "ACTIONS")
				for _, c := range out.Components {
					t.row(c.ID, c.projectName(), c.Image, strings.Join(c.Actions, ","))
				}
				return t.flush()
			})
		},
	}
	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show one component's definition",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			// The API has no route for one component: the list is short, pick it from there.
			var out struct {
				Components []json.RawMessage `json:"components"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/components", nil, &out); err != nil {
				return err
			}
			for _, raw := range out.Components {
				var comp listedComponent
				if json.Unmarshal(raw, &comp) != nil || comp.ID != args[0] {
					continue
				}
				return printOut(g.stdout, cf.output, raw, func(w io.Writer) error {
					schema := "none"
					if len(comp.Schema) > 0 {
						schema = fmt.Sprintf("%d bytes", len(comp.Schema))
					}
					return fields(w, "id", comp.ID, "project", comp.projectName(), "image", comp.Image, "actions", strings.Join(comp.Actions, ","), "schema", schema)
				})
			}
			return withCode(ExitUsage, fmt.Errorf("component %q: not found (berth component list shows the registered ones)", args[0]))
		},
	}
	var params string
	action := &cobra.Command{
		Use:     "action ID ACTION",
		Short:   "Run a component's sync action and print its JSON answer (30 s limit, no input or output mapping)",
		Example: `  berth component action my-extractor testConnection --parameters '{"host": "db"}'`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			body := map[string]any{}
			if params != "" {
				var p map[string]any
				if err := json.Unmarshal([]byte(params), &p); err != nil {
					return withCode(ExitUsage, fmt.Errorf("--parameters: %w", err))
				}
				body["parameters"] = p
			}
			b, _ := json.Marshal(body)
			return c.raw(cmd.Context(), http.MethodPost, "/api/v1/components/"+url.PathEscape(args[0])+"/actions/"+url.PathEscape(args[1]),
				"application/json", bytes.NewReader(b), g.stdout)
		},
	}
	action.Flags().StringVar(&params, "parameters", "", "the action's parameters as JSON")
	cmd.AddCommand(reg, list, get, action, newComponentPublishCmd(g, &cf),
		newDeleteCmd(g, &cf, "ID", "Delete a component (refused while a configuration uses it)", "/api/v1/components/",
			"delete the configurations using it too"))
	return cmd
}

// buildComponentImage builds DIR's Dockerfile into berth/component-<id>:<hash of the folder>,
// so an unchanged folder is not rebuilt.
func buildComponentImage(ctx context.Context, g *globals, id, dir string) (string, error) {
	h := sha256.New()
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(dir, f)
		h.Write([]byte(rel + "\x00"))
		h.Write(b)
		h.Write([]byte{0})
	}
	ref := "berth/component-" + strings.ToLower(id) + ":" + hex.EncodeToString(h.Sum(nil))[:12]
	eng, err := openEngine(ctx, "")
	if err != nil {
		return "", err
	}
	defer eng.Close()
	if _, err := eng.InspectImage(ctx, ref); err == nil {
		fmt.Fprintf(g.stderr, "berth: image %s is up to date\n", ref)
		return ref, nil
	}
	fmt.Fprintf(g.stderr, "berth: building %s from %s\n", ref, dir)
	_, err = eng.BuildImage(ctx, runtime.BuildSpec{ContextDir: dir, Tags: []string{ref}, Network: "host",
		Labels: map[string]string{runtime.LabelKind: runtime.KindComponent}}, g.stderr)
	return ref, err
}

// buildComponentFromGit builds a repository's Dockerfile at a ref into
// berth/component-<id>:<commit>: content-addressed by commit, so the same commit is never
// built twice.
func buildComponentFromGit(ctx context.Context, g *globals, id, repo, ref string) (string, error) {
	tmp, err := os.MkdirTemp("", "berth-git-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	git := func(args ...string) (string, error) {
		c := exec.CommandContext(ctx, "git", args...)
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		if err := c.Run(); err != nil {
			return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
		}
		return strings.TrimSpace(out.String()), nil
	}
	if _, err := git("clone", "--quiet", "--no-checkout", repo, tmp); err != nil {
		return "", err
	}
	commit, err := git("-C", tmp, "rev-parse", "--verify", ref+"^{commit}")
	if err != nil {
		if commit, err = git("-C", tmp, "rev-parse", "--verify", "origin/"+ref+"^{commit}"); err != nil {
			return "", fmt.Errorf("--ref %s: not a commit, branch or tag of %s", ref, repo)
		}
	}
	tag := "berth/component-" + strings.ToLower(id) + ":" + commit[:12]
	eng, err := openEngine(ctx, "")
	if err != nil {
		return "", err
	}
	defer eng.Close()
	if _, err := eng.InspectImage(ctx, tag); err == nil {
		fmt.Fprintf(g.stderr, "berth: image %s is up to date (commit %s)\n", tag, commit[:12])
		return tag, nil
	}
	archive := exec.CommandContext(ctx, "git", "-C", tmp, "archive", "--format=tar", commit)
	tarOut, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := archive.Start(); err != nil {
		return "", err
	}
	fmt.Fprintf(g.stderr, "berth: building %s from %s at commit %s\n", tag, repo, commit[:12])
	_, err = eng.BuildImage(ctx, runtime.BuildSpec{Context: tarOut, Tags: []string{tag}, Network: "host",
		Labels: map[string]string{runtime.LabelKind: runtime.KindComponent, "berth.git-commit": commit}}, g.stderr)
	werr := archive.Wait()
	if err != nil {
		return "", err
	}
	if werr != nil {
		return "", fmt.Errorf("git archive: %w", werr)
	}
	return tag, nil
}

func newConfigCmd(g *globals) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Create, run and inspect component configurations",
	}
	cf.register(cmd)
	create := &cobra.Command{
		Use:     "create FILE.json",
		Short:   "Create a configuration, or save a new version of it (parameters are checked against the component's schema)",
		Example: "  berth config create examples/component-sales/config.json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			raw, err := readFile(args[0])
			if err != nil {
				return withCode(ExitUsage, err)
			}
			var out struct {
				Config  spec.ComponentConfig `json:"config"`
				Version int                  `json:"version"`
			}
			if err := c.raw(cmd.Context(), http.MethodPost, "/api/v1/configs", "application/json", bytes.NewReader(raw), jsonInto(&out)); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "saved %s version %d\n", out.Config.ID, out.Version)
			return nil
		},
	}
	var wait, debug bool
	var row, stateRow string
	run := &cobra.Command{
		Use:   "run ID",
		Short: "Run a configuration as a job (inputs mapped, outputs loaded, state saved)",
		Long: `Run a configuration as a job. A configuration with rows runs each enabled row in order
(the configuration's parameters merged under the row's, the row's own mapping and state);
--row runs only that row, even a disabled one. --debug tells the component it runs in debug
mode (KBC_COMPONENT_RUN_MODE=debug; Keboola's libraries then log more).`,
		Example: "  berth config run sales-daily --wait\n  berth config run sales-daily --row eu --wait",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			var j job.Job
			q := url.Values{}
			if row != "" {
				q.Set("row", row)
			}
			if debug {
				q.Set("mode", "debug")
			}
			path := "/api/v1/configs/" + url.PathEscape(args[0]) + "/run"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			if err := c.do(cmd.Context(), http.MethodPost, path, nil, &j); err != nil {
				return err
			}
			if !wait {
				fmt.Fprintln(g.stdout, j.ID)
				return nil
			}
			fmt.Fprintf(g.stderr, "berth: job %s queued\n", j.ID)
			final, err := c.followLogs(cmd.Context(), j.ID, func(ch job.LogChunk) { printChunk(g.stdout, g.stderr, ch) })
			if err != nil {
				return err
			}
			printSummary(g.stderr, final)
			return jobExit(final)
		},
	}
	run.Flags().BoolVarP(&wait, "wait", "w", false, "follow the job's output and exit with its code")
	run.Flags().StringVar(&row, "row", "", "run only this row of the configuration")
	run.Flags().BoolVar(&debug, "debug", false, "run in debug mode: the component sees KBC_COMPONENT_RUN_MODE=debug")
	state := &cobra.Command{
		Use:   "state ID",
		Short: "Print a configuration's state (what its last successful run wrote to out/state.json)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			path := "/api/v1/configs/" + url.PathEscape(args[0]) + "/state"
			if stateRow != "" {
				path += "?row=" + url.QueryEscape(stateRow)
			}
			return c.raw(cmd.Context(), http.MethodGet, path, "", nil, g.stdout)
		},
	}
	state.Flags().StringVar(&stateRow, "row", "", "the state of this row of the configuration")
	creds := &cobra.Command{
		Use:   "credentials",
		Short: "Store, check or remove a configuration's OAuth-style credentials (admin token)",
		Long: `A configuration's stored credentials reach each of its runs as
authorization.oauth_api.credentials in /data/config.json. They are sealed with the data dir's key
and never shown again: "status" says only whether some are stored.`,
	}
	creds.AddCommand(&cobra.Command{
		Use:     "set ID FILE.json",
		Short:   "Store credentials (a JSON object) for a configuration, replacing earlier ones",
		Example: "  berth config credentials set sales-daily oauth.json",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			body, err := readFile(args[1])
			if err != nil {
				return withCode(ExitUsage, err)
			}
			if err := c.raw(cmd.Context(), http.MethodPut, "/api/v1/configs/"+url.PathEscape(args[0])+"/credentials", "application/json", bytes.NewReader(body), io.Discard); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "credentials of %s stored (sealed; they are not shown again)\n", args[0])
			return nil
		},
	}, &cobra.Command{
		Use: "status ID", Short: "Say whether credentials are stored for a configuration", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			return c.raw(cmd.Context(), http.MethodGet, "/api/v1/configs/"+url.PathEscape(args[0])+"/credentials", "", nil, g.stdout)
		},
	}, &cobra.Command{
		Use: "delete ID", Short: "Remove a configuration's stored credentials", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			return c.raw(cmd.Context(), http.MethodDelete, "/api/v1/configs/"+url.PathEscape(args[0])+"/credentials", "", nil, io.Discard)
		},
	})
	var component string
	list := &cobra.Command{
		Use:   "list",
		Short: "List configurations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			var out struct {
				Configs []json.RawMessage `json:"configs"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/configs?component="+url.QueryEscape(component), nil, &out); err != nil {
				return err
			}
			return printOut(g.stdout, cf.output, out.Configs, func(w io.Writer) error {
				t := newTable(w, "ID", "COMPONENT", "NAME", "VERSION", "ROWS", "UPDATED")
				for _, raw := range out.Configs {
					var v configView
					json.Unmarshal(raw, &v)
					t.row(v.Config.ID, v.Config.Component, v.Config.Name, fmt.Sprint(v.Version), fmt.Sprint(len(v.Config.Rows)), humanTime(v.UpdatedAt))
				}
				return t.flush()
			})
		},
	}
	list.Flags().StringVar(&component, "component", "", "only configurations of this component")
	get := &cobra.Command{
		Use:   "get ID",
		Short: "Show a configuration: its body, version and state",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/configs/"+url.PathEscape(args[0]), nil, &raw); err != nil {
				return err
			}
			return printOut(g.stdout, cf.output, raw, func(w io.Writer) error {
				var v configView
				json.Unmarshal(raw, &v)
				if err := fields(w, "id", v.Config.ID, "component", v.Config.Component, "name", v.Config.Name,
					"version", fmt.Sprint(v.Version), "rows", fmt.Sprint(len(v.Config.Rows)),
					"state version", fmt.Sprint(v.StateVersion), "updated", humanTime(v.UpdatedAt)); err != nil {
					return err
				}
				params, _ := json.MarshalIndent(v.Config.Parameters, "", "  ")
				_, err := fmt.Fprintf(w, "parameters:\n%s\nstate:\n%s\n", params, v.State)
				return err
			})
		},
	}
	cmd.AddCommand(create, run, state, list, get, creds,
		newDeleteCmd(g, &cf, "ID", "Delete a configuration with its versions, rows' state, state and stored credentials", "/api/v1/configs/", ""))
	return cmd
}

// configView is a configuration as the API returns it.
type configView struct {
	Config       spec.ComponentConfig `json:"config"`
	Version      int                  `json:"version"`
	State        json.RawMessage      `json:"state"`
	StateVersion int                  `json:"state_version"`
	UpdatedAt    time.Time            `json:"updated_at"`
}

// jsonInto decodes a response body into v.
func jsonInto(v any) io.Writer { return &jsonWriter{v: v} }

type jsonWriter struct {
	v   any
	buf bytes.Buffer
}

func (j *jsonWriter) Write(p []byte) (int, error) {
	j.buf.Write(p)
	json.Unmarshal(j.buf.Bytes(), j.v)
	return len(p), nil
}

func newStorageCmd(g *globals) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "storage",
		Short: "Buckets, tables (CSV in and out) and files on a berth server",
	}
	cf.register(cmd)
	client := func() (*client, error) { return cf.client(g) }

	bucket := &cobra.Command{Use: "bucket", Short: "Create, list and share buckets"}
	var shareProject string
	share := func(use, short, method string) *cobra.Command {
		c := &cobra.Command{
			Use: use + " ID --project P", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if shareProject == "" {
					return withCode(ExitUsage, fmt.Errorf("--project is required"))
				}
				c, err := client()
				if err != nil {
					return err
				}
				var b storage.Bucket
				path := "/api/v1/storage/buckets/" + url.PathEscape(args[0]) + "/shares"
				var body any = map[string]string{"project": shareProject}
				if method == http.MethodDelete {
					path, body = path+"/"+url.PathEscape(shareProject), nil
				}
				if err := c.do(cmd.Context(), method, path, body, &b); err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "bucket %s (project %s) shared with: %s\n", b.ID, b.Project, orNone(b.SharedWith))
				return nil
			},
		}
		c.Flags().StringVar(&shareProject, "project", "", "the project to share it with (or stop sharing it with)")
		return c
	}
	bucket.AddCommand(&cobra.Command{
		Use: "create ID", Short: "Create a bucket (e.g. in.c-main) in the token's project", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			return c.do(cmd.Context(), http.MethodPost, "/api/v1/storage/buckets", map[string]string{"id": args[0]}, nil)
		},
	}, &cobra.Command{
		Use: "list", Short: "List the buckets of the token's project and those shared with it", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var out struct {
				Buckets []storage.Bucket `json:"buckets"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/storage/buckets", nil, &out); err != nil {
				return err
			}
			return printOut(g.stdout, cf.output, out.Buckets, func(w io.Writer) error {
				t := newTable(w, "ID", "PROJECT", "SHARED WITH")
				for _, b := range out.Buckets {
					t.row(b.ID, b.Project, orNone(b.SharedWith))
				}
				return t.flush()
			})
		},
	}, share("share", "Share a bucket with another project, read-only there (a project admin's)", http.MethodPost),
		share("unshare", "Stop sharing a bucket with a project", http.MethodDelete))

	usage := &cobra.Command{
		Use: "usage", Short: "Show the token's project's storage usage and quota", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var out struct {
				Project string `json:"project"`
				Bytes   int64  `json:"bytes"`
				Limit   int64  `json:"limit"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/storage/usage", nil, &out); err != nil {
				return err
			}
			return printOut(g.stdout, cf.output, out, func(w io.Writer) error {
				limit := "none"
				if out.Limit > 0 {
					limit = humanBytes(out.Limit)
				}
				return fields(w, "project", out.Project, "used", humanBytes(out.Bytes), "quota", limit)
			})
		},
	}

	table := &cobra.Command{Use: "table", Short: "Load, export, preview and list tables"}
	var incremental bool
	var pk, columns string
	load := &cobra.Command{
		Use:   "load TABLE_ID FILE.csv",
		Short: "Load a CSV (RFC 4180, header row unless --columns) into a table, replacing it or --incremental",
		Example: `  berth storage table load in.c-sales.orders examples/component-sales/orders.csv
  berth storage table load in.c-sales.orders more.csv --incremental --primary-key id`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			f, err := os.Open(args[1])
			if err != nil {
				return withCode(ExitUsage, err)
			}
			defer f.Close()
			q := url.Values{}
			if incremental {
				q.Set("incremental", "1")
			}
			q.Set("primary_key", pk)
			q.Set("columns", columns)
			var t storage.Table
			if err := c.raw(cmd.Context(), http.MethodPost, "/api/v1/storage/tables/"+url.PathEscape(args[0])+"/import?"+q.Encode(), "text/csv", f, jsonInto(&t)); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s: %d rows, columns %s\n", t.ID, t.RowsCount, strings.Join(t.Columns, ","))
			return nil
		},
	}
	load.Flags().BoolVar(&incremental, "incremental", false, "upsert by the primary key (append without one) instead of replacing")
	load.Flags().StringVar(&pk, "primary-key", "", "primary key columns, comma-separated")
	load.Flags().StringVar(&columns, "columns", "", "column names of a CSV without a header row")
	var limit int
	export := &cobra.Command{
		Use: "export TABLE_ID", Short: "Write a table as CSV to stdout", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			return c.raw(cmd.Context(), http.MethodGet, fmt.Sprintf("/api/v1/storage/tables/%s/export?limit=%d", url.PathEscape(args[0]), limit), "", nil, g.stdout)
		},
	}
	export.Flags().IntVar(&limit, "limit", 0, "at most this many rows")
	preview := &cobra.Command{
		Use: "preview TABLE_ID", Short: "Show a table's first 20 rows", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			return c.raw(cmd.Context(), http.MethodGet, "/api/v1/storage/tables/"+url.PathEscape(args[0])+"/export?limit=20", "", nil, g.stdout)
		},
	}
	tlist := &cobra.Command{
		Use: "list [BUCKET]", Short: "List tables", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			b := ""
			if len(args) == 1 {
				b = args[0]
			}
			var out struct {
				Tables []storage.Table `json:"tables"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/storage/tables?bucket="+url.QueryEscape(b), nil, &out); err != nil {
				return err
			}
			return printOut(g.stdout, cf.output, out.Tables, func(w io.Writer) error {
				tb := newTable(w, "ID", "ROWS", "PRIMARY KEY", "COLUMNS", "CHANGED")
				for _, t := range out.Tables {
					tb.row(t.ID, fmt.Sprint(t.RowsCount), strings.Join(t.PrimaryKey, ","), strings.Join(t.Columns, ","), humanTime(t.LastChangeAt))
				}
				return tb.flush()
			})
		},
	}
	tget := &cobra.Command{
		Use: "get TABLE_ID", Short: "Show a table: columns, primary key, rows, times, metadata", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var t storage.Table
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/storage/tables/"+url.PathEscape(args[0]), nil, &t); err != nil {
				return err
			}
			return printOut(g.stdout, cf.output, t, func(w io.Writer) error {
				return fields(w, "id", t.ID, "bucket", t.Bucket, "name", t.Name, "rows", fmt.Sprint(t.RowsCount),
					"primary key", strings.Join(t.PrimaryKey, ","), "columns", strings.Join(t.Columns, ","),
					"created", humanTime(t.Created), "changed", humanTime(t.LastChangeAt), "metadata", fmt.Sprintf("%d entries", len(t.Metadata)))
			})
		},
	}
	table.AddCommand(load, export, preview, tlist, tget,
		newDeleteCmd(g, &cf, "ID", "Delete a table with its rows and metadata", "/api/v1/storage/tables/", ""))

	file := &cobra.Command{Use: "file", Short: "Upload, list, tag and download files"}
	var tags []string
	upload := &cobra.Command{
		Use: "upload FILE", Short: "Upload a file with tags", Args: cobra.ExactArgs(1),
		Example: "  berth storage file upload report.pdf --tag monthly --tag finance",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return withCode(ExitUsage, err)
			}
			defer f.Close()
			q := url.Values{"name": {filepath.Base(args[0])}, "tag": tags}
			var out storage.File
			if err := c.raw(cmd.Context(), http.MethodPost, "/api/v1/storage/files?"+q.Encode(), "application/octet-stream", f, jsonInto(&out)); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "file %d: %s (%d bytes, tags %s)\n", out.ID, out.Name, out.Size, strings.Join(out.Tags, ","))
			return nil
		},
	}
	upload.Flags().StringArrayVar(&tags, "tag", nil, "a tag (repeatable)")
	var listTags []string
	flist := &cobra.Command{
		Use: "list", Short: "List files (newest first), optionally only those with every --tag", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			var out struct {
				Files []storage.File `json:"files"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/storage/files?"+url.Values{"tag": listTags}.Encode(), nil, &out); err != nil {
				return err
			}
			return printOut(g.stdout, cf.output, out.Files, func(w io.Writer) error {
				t := newTable(w, "ID", "NAME", "SIZE", "TAGS", "CREATED", "EXPIRES")
				for _, f := range out.Files {
					expires := "never"
					if f.Expires != nil {
						expires = f.Expires.Local().Format("2006-01-02 15:04")
					}
					t.row(fmt.Sprint(f.ID), f.Name, humanBytes(f.Size), strings.Join(f.Tags, ","), humanTime(f.Created), expires)
				}
				return t.flush()
			})
		},
	}
	flist.Flags().StringArrayVar(&listTags, "tag", nil, "only files with this tag (repeatable)")
	var outPath string
	download := &cobra.Command{
		Use: "download ID", Short: "Write a file's content to stdout or -O PATH", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			w := g.stdout
			if outPath != "" {
				f, err := os.Create(outPath)
				if err != nil {
					return withCode(ExitUsage, err)
				}
				defer f.Close()
				w = f
			}
			return c.raw(cmd.Context(), http.MethodGet, "/api/v1/storage/files/"+url.PathEscape(args[0])+"/download", "", nil, w)
		},
	}
	download.Flags().StringVarP(&outPath, "output-file", "O", "", "write to this file")
	tag := &cobra.Command{
		Use: "tag ID TAG...", Short: "Add tags to a file", Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			return c.do(cmd.Context(), http.MethodPost, "/api/v1/storage/files/"+url.PathEscape(args[0])+"/tags", map[string]any{"tags": args[1:]}, nil)
		},
	}
	file.AddCommand(upload, flist, download, tag,
		newDeleteCmd(g, &cf, "ID", "Delete a file and its content", "/api/v1/storage/files/", ""))
	bucket.AddCommand(newDeleteCmd(g, &cf, "ID", "Delete a bucket (refused while it holds tables)", "/api/v1/storage/buckets/",
		"delete the tables it holds too"))
	cmd.AddCommand(bucket, table, file, usage)
	return cmd
}

// orNone joins a list with commas, "-" when empty.
func orNone(list []string) string {
	if len(list) == 0 {
		return "-"
	}
	return strings.Join(list, ",")
}

// listedComponent is a component as the API lists it: its definition, and the project it is
// private to (none when it is shared).
type listedComponent struct {
	spec.Component
	Project string `json:"project"`
	Shared  bool   `json:"shared"`
}

// projectName is the component's project for a table: "shared" for a shared one.
func (c listedComponent) projectName() string {
	if c.Shared || c.Project == "" {
		return "shared"
	}
	return c.Project
}
