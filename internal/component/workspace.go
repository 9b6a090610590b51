package component

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/auth"
	"github.com/berthproject/berth/internal/authz"
	"github.com/berthproject/berth/internal/datadir"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/storage"
	"github.com/berthproject/berth/internal/store"
)

// componentWorkspace writes the /data folder of the common interface: config.json, the mapped
// input tables and files with their manifests (read-only for the component) and the state.
func (r *run) componentWorkspace(ctx context.Context) (string, error) {
	cr := r.j.Component
	r.workDir = r.WorkDir()
	dataDir := filepath.Join(r.workDir, "data")
	if err := datadir.Layout(dataDir); err != nil {
		return "", err
	}
	authz, err := r.authorization(ctx)
	if err != nil {
		return "", err
	}
	params, err := r.openParams()
	if err != nil {
		return "", err
	}
	if err := datadir.WriteConfig(dataDir, datadir.Config{
		Parameters: params, Storage: r.rowCfg.Storage,
		ImageParameters: cr.Component.ImageParameters, Action: cr.Action, Authorization: authz,
	}); err != nil {
		return "", err
	}
	st := r.e.cfg.Storage
	if cr.Action == "run" {
		for i, t := range r.rowCfg.Storage.Input.Tables {
			dest := t.Destination
			if dest == "" {
				dest = t.Source + ".csv"
			}
			var since time.Time
			if t.ChangedSince != "" {
				var err error
				if since, err = parseSince(t.ChangedSince); err != nil {
					return "", &job.PolicyError{Field: fmt.Sprintf("storage.input.tables[%d].changed_since", i), Message: err.Error()}
				}
			}
			if err := r.mayRead(ctx, t.Source); err != nil {
				return "", &job.PolicyError{Field: fmt.Sprintf("storage.input.tables[%d]", i), Message: err.Error()}
			}
			f, err := os.Create(filepath.Join(dataDir, "in", "tables", dest))
			if err != nil {
				return "", err
			}
			cols, n, err := st.Export(ctx, t.Source, f, storage.ExportOptions{Columns: t.Columns, WhereColumn: t.WhereColumn,
				WhereOperator: t.WhereOperator, WhereValues: t.WhereValues, ChangedSince: since, Limit: t.Limit})
			f.Close()
			if err != nil {
				return "", &job.PolicyError{Field: fmt.Sprintf("storage.input.tables[%d]", i), Message: err.Error()}
			}
			meta, _ := st.GetTable(ctx, st.DB(), t.Source)
			var size int64
			if fi, err := os.Stat(filepath.Join(dataDir, "in", "tables", dest)); err == nil {
				size = fi.Size()
			}
			if err := datadir.WriteJSON(filepath.Join(dataDir, "in", "tables", dest+".manifest"), datadir.NewTableManifest(
				meta.ID, meta.Name, r.e.cfg.publicURL()+"/api/v1/storage/tables/"+meta.ID, cols, meta.PrimaryKey,
				meta.Created, meta.LastChangeAt, n, size, inMeta(meta.Metadata), inColumnMeta(meta.ColumnMetadata))); err != nil {
				return "", err
			}
			fmt.Fprintf(r.System(), "input: table %s -> in/tables/%s (%d rows)\n", t.Source, dest, n)
		}
		for _, sel := range r.rowCfg.Storage.Input.Files {
			files, err := st.Files(ctx, storage.FileQuery{Project: r.project(), Tags: sel.Tags, Limit: sel.Limit})
			if err != nil {
				return "", err
			}
			for _, f := range files {
				name := fmt.Sprintf("%d_%s", f.ID, f.Name)
				if err := copyStored(ctx, st, f.ID, filepath.Join(dataDir, "in", "files", name)); err != nil {
					return "", err
				}
				if err := datadir.WriteJSON(filepath.Join(dataDir, "in", "files", name+".manifest"), datadir.FileManifest{
					ID: f.ID, Name: f.Name, Tags: orEmpty(f.Tags), SizeBytes: f.Size, Created: datadir.TS(f.Created),
					IsEncrypted: true,
				}); err != nil {
					return "", err
				}
			}
			fmt.Fprintf(r.System(), "input: %d file(s) tagged %s\n", len(files), strings.Join(sel.Tags, ","))
		}
	}
	r.state = json.RawMessage("{}")
	if cr.Action == "run" && r.cfgRow != nil {
		state, version, err := r.Store().GetRowState(ctx, cr.Config.ID, r.cfgRow.ID)
		if err != nil {
			return "", err
		}
		r.stateVersion, r.state = version, json.RawMessage(state)
	} else if cr.Action == "run" {
		cfgRow, err := r.Store().GetConfig(ctx, cr.Config.ID)
		if err != nil {
			return "", err
		}
		r.stateVersion = cfgRow.StateVersion
		r.state = json.RawMessage(cfgRow.State)
	}
	// The whole folder is the component's: its inputs are its own copy, and Keboola's
	// components write under in/user and at the top level too.
	if err := job.ChownTree(dataDir, r.cfg.User); err != nil {
		return "", err
	}
	return dataDir, nil
}

// project is the project the job runs in: its mappings read its own storage and the buckets
// shared with it, and write into its own only.
func (r *run) project() string {
	if r.j.Project == "" {
		return store.DefaultProject
	}
	return r.j.Project
}

// runAs is who a job's mappings act as: a member of the job's project, narrowed by the
// caller's token scope.
func (r *run) runAs() auth.Principal {
	p := auth.Principal{Name: r.j.Owner, Role: auth.RoleMember, Project: r.project()}
	if r.j.Component != nil {
		p.Scope = r.j.Component.Scope
	}
	return p
}

// mayWrite says whether the job's output mapping may write into bucket (its project's own
// buckets are checked by storage; this is the caller's bucket scope).
func (r *run) mayWrite(bucket string) error {
	if err := authz.Can(r.runAs(), authz.BucketWrite, authz.Resource{Kind: "bucket", ID: bucket, Project: r.project(), Bucket: bucket}); err != nil {
		return fmt.Errorf("bucket %s: the token that ran this job may not write it (%v)", bucket, err)
	}
	return nil
}

// mayRead says whether the job may map a table as input, as authz decides for a member of
// the job's project (narrowed by the caller's scope): a table of its project or of a bucket shared with it. Any other table
// is refused exactly as a missing one, so a job learns nothing of other projects.
func (r *run) mayRead(ctx context.Context, table string) error {
	refused := fmt.Errorf("table %s is not in project %s or shared with it", table, r.project())
	b, err := r.e.cfg.Storage.TableBucket(ctx, table)
	if errors.Is(err, storage.ErrNotFound) {
		return refused
	}
	if err != nil {
		return err
	}
	if authz.Can(r.runAs(), authz.BucketRead, authz.Resource{Kind: "table", ID: table, Project: b.Project, SharedWith: b.SharedWith, Bucket: b.ID}) != nil {
		return refused
	}
	return nil
}

// writeState gives the component in/state.json (the stored state, {} when none).
func (r *run) writeState(dataDir string) error {
	if err := datadir.WriteState(dataDir, r.state); err != nil {
		return err
	}
	return job.ChownTree(filepath.Join(dataDir, "in", "state.json"), r.cfg.User)
}

// takeState reads the component's out/state.json right after it ran and removes it, so no
// after-processor can change or drop it. A missing file clears the state.
func (r *run) takeState(dataDir string) error {
	state, has, err := datadir.ReadState(dataDir, r.cfg.OutputLimits)
	if err != nil {
		return err
	}
	r.newState, r.hasNewState = state, has
	os.Remove(filepath.Join(dataDir, "out", "state.json"))
	return nil
}

// openParams is the configuration's parameters for config.json: "#" values are stored sealed
// and opened only here, for the run, and hidden from the job's output.
func (r *run) openParams() (map[string]any, error) {
	if r.rowCfg.Parameters == nil {
		return nil, nil
	}
	b, err := json.Marshal(r.rowCfg.Parameters)
	if err != nil {
		return nil, err
	}
	var params map[string]any
	if err := json.Unmarshal(b, &params); err != nil {
		return nil, err
	}
	plain, err := r.Store().OpenHashValues(params)
	if err != nil {
		return nil, fmt.Errorf("open the configuration's # values: %w", err)
	}
	r.Hide(plain...)
	return params, nil
}

// authorization is config.json's authorization: the configuration's stored credentials as
// Keboola gives them ({"oauth_api": {"credentials": ...}}), or nil. Every string in them is
// added to what the job's output hides.
func (r *run) authorization(ctx context.Context) (map[string]any, error) {
	if r.e.cfg.Sealer == nil {
		return nil, nil
	}
	sealed, _, err := r.Store().GetCredentials(ctx, r.j.Component.Config.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	plain, err := r.e.cfg.Sealer.Open(sealed)
	if err != nil {
		return nil, fmt.Errorf("stored credentials of %s: %w", r.j.Component.Config.ID, err)
	}
	var creds any
	if err := json.Unmarshal(plain, &creds); err != nil {
		return nil, fmt.Errorf("stored credentials of %s: %w", r.j.Component.Config.ID, err)
	}
	r.Hide(stringLeaves(creds, nil)...)
	fmt.Fprintln(r.System(), "authorization: the configuration's stored credentials are given as authorization.oauth_api.credentials")
	return map[string]any{"oauth_api": map[string]any{"credentials": creds}}, nil
}

// stringLeaves lists every string in a JSON value (and every string a string holding JSON
// holds, as Keboola's #data is).
func stringLeaves(v any, out []string) []string {
	switch x := v.(type) {
	case string:
		if len(x) >= 4 {
			out = append(out, x)
		}
		var inner any
		if json.Unmarshal([]byte(x), &inner) == nil {
			if _, ok := inner.(string); !ok {
				out = stringLeaves(inner, out)
			}
		}
	case map[string]any:
		for _, e := range x {
			out = stringLeaves(e, out)
		}
	case []any:
		for _, e := range x {
			out = stringLeaves(e, out)
		}
	}
	return out
}

// inMeta is stored metadata as an input manifest lists it.
func inMeta(ms []storage.Meta) []datadir.InMeta {
	out := []datadir.InMeta{}
	for i, m := range ms {
		out = append(out, datadir.InMeta{ID: strconv.Itoa(i + 1), Key: m.Key, Value: m.Value, Provider: m.Provider, Timestamp: datadir.TS(m.Timestamp)})
	}
	return out
}

func inColumnMeta(cm map[string][]storage.Meta) map[string][]datadir.InMeta {
	out := map[string][]datadir.InMeta{}
	for c, ms := range cm {
		out[c] = inMeta(ms)
	}
	return out
}

func copyStored(ctx context.Context, st *storage.Storage, id int64, dst string) error {
	rc, _, err := st.OpenFile(ctx, id)
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func parseSince(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "-")); err == nil {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: an RFC 3339 time or a duration like 24h (that long ago)", s)
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
