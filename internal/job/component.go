package job

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/datadir"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/storage"
	"github.com/berthproject/berth/internal/store"
)

// SyncActionTimeout bounds a sync action's run (Config.SyncActionTimeout overrides it).
const SyncActionTimeout = 30 * time.Second

// messageCut is how much of a failed component's output its user sees (head and tail).
const messageCut = 2000

// submitComponent queues a run of a component configuration.
func (m *Manager) submitComponent(ctx context.Context, s Submission) (Job, error) {
	cr := *s.Component
	if m.cfg.Storage == nil {
		return Job{}, errors.New("submit: this berth has no storage, so it cannot run components")
	}
	if cr.Action == "" {
		cr.Action = "run"
	}
	if err := m.cfg.checkNetwork(cr.Component.Network); err != nil {
		return Job{}, err
	}
	// A processor runs with its own network, so the policy applies to each one too.
	for stage, procs := range map[string][]ProcessorRun{"before": cr.Before, "after": cr.After} {
		for i, p := range procs {
			if err := m.cfg.checkNetwork(p.Component.Network); err != nil {
				var pe *PolicyError
				if errors.As(err, &pe) {
					pe.Field = fmt.Sprintf("processors.%s[%d].network", stage, i)
				}
				return Job{}, err
			}
		}
	}
	if _, err := m.cfg.effectiveLimits(cr.Component.Limits); err != nil {
		return Job{}, err
	}
	b := spec.Block{Name: cr.Config.ID, Language: spec.LangShell, Image: cr.Component.Image,
		Limits: cr.Component.Limits, Network: cr.Component.Network}
	if cr.Action != "run" {
		// A sync action gets SyncActionTimeout from its start (image preparation not counted).
		b.Limits.Timeout = spec.Duration(SyncActionTimeout)
		if m.cfg.SyncActionTimeout > 0 {
			b.Limits.Timeout = spec.Duration(m.cfg.SyncActionTimeout)
		}
		b.Name = cr.Component.ID + ":" + cr.Action
	}
	blockJSON, _ := json.Marshal(b)
	j := Job{ID: newID(), Kind: KindComponent, Name: cr.Config.ID, Owner: s.Owner, State: StateQueued, Block: b,
		Component: &cr, CreatedAt: time.Now().UTC()}
	row := toRow(j)
	row.Block = string(blockJSON)
	if cr.Component.ForwardToken && s.Token != "" {
		// Before the job is queued, so a worker never runs it without its token.
		m.mu.Lock()
		m.tokens[j.ID] = s.Token
		m.mu.Unlock()
	}
	return m.enqueue(ctx, j, row)
}

// componentWorkspace writes the /data folder of the common interface: config.json, the mapped
// input tables and files with their manifests (read-only for the component) and the state.
func (r *run) componentWorkspace(ctx context.Context) (string, error) {
	m := r.m
	cr := r.j.Component
	r.workDir = filepath.Join(m.jobDir(r.j.ID), "work")
	dataDir := filepath.Join(r.workDir, "data")
	if err := datadir.Layout(dataDir); err != nil {
		return "", err
	}
	authz, err := r.authorization(ctx)
	if err != nil {
		return "", err
	}
	if err := datadir.WriteConfig(dataDir, datadir.Config{
		Parameters: r.rowCfg.Parameters, Storage: r.rowCfg.Storage,
		ImageParameters: cr.Component.ImageParameters, Action: cr.Action, Authorization: authz,
	}); err != nil {
		return "", err
	}
	st := m.cfg.Storage
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
					return "", &PolicyError{Field: fmt.Sprintf("storage.input.tables[%d].changed_since", i), Message: err.Error()}
				}
			}
			f, err := os.Create(filepath.Join(dataDir, "in", "tables", dest))
			if err != nil {
				return "", err
			}
			cols, n, err := st.Export(ctx, t.Source, f, storage.ExportOptions{Columns: t.Columns, WhereColumn: t.WhereColumn,
				WhereOperator: t.WhereOperator, WhereValues: t.WhereValues, ChangedSince: since, Limit: t.Limit})
			f.Close()
			if err != nil {
				return "", &PolicyError{Field: fmt.Sprintf("storage.input.tables[%d]", i), Message: err.Error()}
			}
			meta, _ := st.GetTable(ctx, st.DB(), t.Source)
			var size int64
			if fi, err := os.Stat(filepath.Join(dataDir, "in", "tables", dest)); err == nil {
				size = fi.Size()
			}
			if err := datadir.WriteJSON(filepath.Join(dataDir, "in", "tables", dest+".manifest"), datadir.NewTableManifest(
				meta.ID, meta.Name, m.cfg.publicURL()+"/api/v1/storage/tables/"+meta.ID, cols, meta.PrimaryKey,
				meta.Created, meta.LastChangeAt, n, size, inMeta(meta.Metadata), inColumnMeta(meta.ColumnMetadata))); err != nil {
				return "", err
			}
			fmt.Fprintf(r.system, "input: table %s -> in/tables/%s (%d rows)\n", t.Source, dest, n)
		}
		for _, sel := range r.rowCfg.Storage.Input.Files {
			files, err := st.ListFiles(ctx, sel.Tags, sel.Limit)
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
			fmt.Fprintf(r.system, "input: %d file(s) tagged %s\n", len(files), strings.Join(sel.Tags, ","))
		}
	}
	r.state = json.RawMessage("{}")
	if cr.Action == "run" && r.cfgRow != nil {
		state, version, err := m.st.GetRowState(ctx, cr.Config.ID, r.cfgRow.ID)
		if err != nil {
			return "", err
		}
		r.stateVersion, r.state = version, json.RawMessage(state)
	} else if cr.Action == "run" {
		cfgRow, err := m.st.GetConfig(ctx, cr.Config.ID)
		if err != nil {
			return "", err
		}
		r.stateVersion = cfgRow.StateVersion
		r.state = json.RawMessage(cfgRow.State)
	}
	// The whole folder is the component's: its inputs are its own copy, and Keboola's
	// components write under in/user and at the top level too.
	if err := chownTree(dataDir, m.cfg.User); err != nil {
		return "", err
	}
	return dataDir, nil
}

// writeState gives the component in/state.json (the stored state, {} when none).
func (r *run) writeState(dataDir string) error {
	if err := datadir.WriteState(dataDir, r.state); err != nil {
		return err
	}
	return chownTree(filepath.Join(dataDir, "in", "state.json"), r.m.cfg.User)
}

// takeState reads the component's out/state.json right after it ran and removes it, so no
// after-processor can change or drop it. A missing file clears the state.
func (r *run) takeState(dataDir string) error {
	state, has, err := datadir.ReadState(dataDir, r.m.cfg.OutputLimits)
	if err != nil {
		return err
	}
	r.newState, r.hasNewState = state, has
	os.Remove(filepath.Join(dataDir, "out", "state.json"))
	return nil
}

// authorization is config.json's authorization: the configuration's stored credentials as
// Keboola gives them ({"oauth_api": {"credentials": ...}}), or nil. Every string in them is
// added to what the job's output hides.
func (r *run) authorization(ctx context.Context) (map[string]any, error) {
	m := r.m
	if m.cfg.Sealer == nil {
		return nil, nil
	}
	sealed, _, err := m.st.GetCredentials(ctx, r.j.Component.Config.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	plain, err := m.cfg.Sealer.Open(sealed)
	if err != nil {
		return nil, fmt.Errorf("stored credentials of %s: %w", r.j.Component.Config.ID, err)
	}
	var creds any
	if err := json.Unmarshal(plain, &creds); err != nil {
		return nil, fmt.Errorf("stored credentials of %s: %w", r.j.Component.Config.ID, err)
	}
	r.hide(stringLeaves(creds, nil)...)
	fmt.Fprintln(r.system, "authorization: the configuration's stored credentials are given as authorization.oauth_api.credentials")
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

// componentTask is the container of a component run: the image's own command, /data, the
// common interface's environment, and the same confinement as blocks.
func (r *run) componentTask(ref, dataDir string) runtime.TaskSpec {
	m := r.m
	cr := r.j.Component
	t := TaskFor(m.cfg, r.j.Block, ref, r.j.ID, dataDir, dataDir)
	t.Cmd = nil
	t.WorkingDir = ""
	t.Mounts = []runtime.Mount{{Source: dataDir, Target: DataDir}}
	for k, v := range r.componentEnv(cr.Component) {
		t.Env[k] = v
	}
	t.Env["BERTH_COMPONENT_ID"] = cr.Component.ID
	t.Env["BERTH_CONFIG_ID"] = cr.Config.ID
	if cr.Component.ForwardToken && r.token != "" {
		t.Env["KBC_TOKEN"] = r.token
		t.Env["KBC_URL"] = m.cfg.publicURL()
		t.Env["KBC_PROJECTNAME"] = orDefault(m.cfg.ProjectName, "berth")
	}
	delete(t.Env, "PYTHONDONTWRITEBYTECODE")
	return t
}

// componentEnv is the environment Keboola's runner gives every image of a job (the component
// and each processor, which sees its own id as KBC_COMPONENTID), with berth's values where
// berth has the concept: see docs/components.md.
func (r *run) componentEnv(comp spec.Component) map[string]string {
	m := r.m
	cr := r.j.Component
	env := map[string]string{
		"KBC_DATADIR":               DataDir + "/",
		"KBC_RUNID":                 r.j.ID,
		"KBC_PROJECTID":             orDefault(m.cfg.ProjectID, "berth"),
		"KBC_CONFIGID":              cr.Config.ID,
		"KBC_CONFIGVERSION":         strconv.Itoa(cr.ConfigVersion),
		"KBC_COMPONENTID":           comp.ID,
		"KBC_STACKID":               m.cfg.stackID(),
		"KBC_STAGING_FILE_PROVIDER": "local",
		"KBC_COMPONENT_RUN_MODE":    orDefault(cr.Mode, "run"),
		// queuev2: Keboola's libraries drop write_always on the legacy queue.
		"KBC_PROJECT_FEATURE_GATES": "queuev2",
	}
	if r.cfgRow != nil {
		env["KBC_CONFIGROWID"] = r.cfgRow.ID
	}
	if dts := cr.Component.DataTypeSupport; dts != "" {
		env["KBC_DATA_TYPE_SUPPORT"] = dts
		env["KBC_PROJECT_FEATURE_GATES"] = "queuev2,new-native-types"
	}
	return env
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// failureMessage is what the user of a failed component sees: for a user error (exit 1) its
// stderr (or its stdout when it wrote nothing to stderr), cut to the first and last 2000 characters; for an application error a generic
// message with an id the operator finds the full output by.
func (r *run) failureMessage(code int) string {
	if code == 1 {
		// As Keboola: the component's stderr; when it wrote none, its stdout.
		chunks, _ := r.out.snapshot()
		var errOut, stdOut strings.Builder
		for _, c := range chunks {
			switch c.Stream {
			case "stderr":
				errOut.WriteString(c.Text)
			case "stdout":
				stdOut.WriteString(c.Text)
			}
		}
		msg := strings.TrimSpace(errOut.String())
		if msg == "" {
			msg = strings.TrimSpace(stdOut.String())
		}
		if msg == "" {
			msg = "No error message."
		}
		return cutMiddle(msg, messageCut)
	}
	var b [6]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	r.m.log.Error("component application error", "job", r.j.ID, "error_id", id, "exit", code)
	fmt.Fprintf(r.system, "application error %s: exit code %d\n", id, code)
	return fmt.Sprintf("the component failed with an application error (exit code %d); error id %s, the full output is kept for the operator", code, id)
}

func cutMiddle(s string, n int) string {
	rs := []rune(s)
	if len(rs) <= 2*n {
		return s
	}
	return string(rs[:n]) + "\n…\n" + string(rs[len(rs)-n:])
}

// outputMapping loads the component's outputs into storage and saves its state, all in one
// transaction: a malformed output or a state conflict loads nothing. With ok false (the
// component failed) only write_always tables are loaded and the state is kept, as on Keboola.
// missing is Keboola's message for mapped sources the component did not write: then too only
// the write_always tables are loaded, and the job fails with it as a user error.
func (r *run) outputMapping(ctx context.Context, dataDir string, ok bool) (missing string, err error) {
	m := r.m
	st := m.cfg.Storage
	cr := r.j.Component
	outs, err := datadir.ReadOutputs(dataDir, r.rowCfg.Storage.Output, m.cfg.OutputLimits)
	if err != nil {
		return "", err
	}
	for _, w := range outs.Warnings {
		fmt.Fprintln(r.system, w)
	}
	if ok && outs.Missing != "" {
		missing, ok = outs.Missing, false
	}
	type parsed struct {
		t    datadir.OutTable
		cols []string
		rows [][]string
	}
	var load []parsed
	for _, t := range outs.Tables {
		if !ok && !t.WriteAlways {
			continue
		}
		cols, rows, err := storage.ReadCSV(t.Data, t.Columns)
		if err != nil {
			return "", &datadir.Error{File: "out/tables/" + t.Source, Message: err.Error()}
		}
		if _, _, err := storage.SplitTableID(t.Destination); err != nil {
			return "", &datadir.Error{File: "out/tables/" + t.Source, Message: err.Error()}
		}
		load = append(load, parsed{t, cols, rows})
	}
	tx, err := st.DB().BeginTx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	for _, p := range load {
		if err := st.Load(ctx, tx, p.t.Destination, p.cols, p.rows, storage.LoadOptions{
			Incremental: p.t.Incremental, PrimaryKey: p.t.PrimaryKey,
			DeleteWhereColumn: p.t.DeleteWhere, DeleteWhereValues: p.t.DeleteVals, DeleteWhereOperator: p.t.DeleteOp,
			Metadata: p.t.Metadata, ColumnMetadata: p.t.ColumnMetadata, MetadataProvider: cr.Component.ID,
		}); err != nil {
			return "", &datadir.Error{File: "out/tables/" + p.t.Source, Message: err.Error()}
		}
	}
	var staged []*storage.StagedFile
	defer func() {
		for _, sf := range staged {
			sf.Discard()
		}
	}()
	if ok {
		for _, f := range outs.Files {
			in, err := f.Open()
			if err != nil {
				return "", err
			}
			sf, err := st.Stage(f.Name, in, f.Tags)
			in.Close()
			if err != nil {
				return "", &datadir.Error{File: "out/files/" + f.Name, Message: err.Error()}
			}
			staged = append(staged, sf)
			if _, err := sf.Commit(ctx, tx); err != nil {
				return "", err
			}
		}
		// A missing state file clears the state.
		s := "{}"
		if r.hasNewState {
			s = string(r.newState)
		}
		if r.cfgRow != nil {
			err = store.SaveRowState(ctx, tx, cr.Config.ID, r.cfgRow.ID, s, r.stateVersion)
		} else {
			err = store.SaveState(ctx, tx, cr.Config.ID, s, r.stateVersion)
		}
		if err != nil {
			return "", err
		}
	}
	if err := tx.Commit(); err != nil {
		return "", err
	}
	for _, sf := range staged {
		if err := sf.Finish(); err != nil {
			return "", err
		}
	}
	staged = nil
	for _, p := range load {
		fmt.Fprintf(r.system, "output: %s -> table %s (%d rows", p.t.Source, p.t.Destination, len(p.rows))
		if p.t.Incremental {
			fmt.Fprint(r.system, ", incremental")
		}
		fmt.Fprintln(r.system, ")")
	}
	if ok {
		fmt.Fprintf(r.system, "output: %d file(s); state saved\n", len(outs.Files))
	}
	return missing, nil
}

// runProcessors runs a stage's processors in order over the job's data folder. Before
// processors read the mapped inputs and their output becomes the component's in/; after
// processors read the component's out/ (the previous processor's output) and their output is
// what gets mapped. A failure names the processor.
func (r *run) runProcessors(ctx context.Context, stage string, procs []ProcessorRun, dataDir string) error {
	for i, p := range procs {
		name := fmt.Sprintf("processor %s (%s #%d)", p.Component.ID, stage, i+1)
		pdir := filepath.Join(r.workDir, fmt.Sprintf("proc-%s-%d", stage, i))
		if err := datadir.Layout(pdir); err != nil {
			return err
		}
		os.RemoveAll(filepath.Join(pdir, "in"))
		from := filepath.Join(dataDir, "in")
		if stage == "after" {
			from = filepath.Join(dataDir, "out")
			// What the component (or the processor before) wrote is handed on only when it
			// holds nothing a container should not leave there.
			if err := datadir.Check(dataDir, "out", r.m.cfg.OutputLimits); err != nil {
				return fmt.Errorf("hand-over to %s: %w", name, err)
			}
		}
		if err := os.Rename(from, filepath.Join(pdir, "in")); err != nil {
			return err
		}
		if err := datadir.WriteConfig(pdir, datadir.Config{Parameters: p.Parameters, Action: "run",
			ImageParameters: p.Component.ImageParameters}); err != nil {
			return err
		}
		if err := chownTree(filepath.Join(pdir, "out"), r.m.cfg.User); err != nil {
			return err
		}
		// The processor may read its input but not change it.
		if err := chownTree(filepath.Join(pdir, "in"), "0:0"); err != nil {
			return err
		}
		fmt.Fprintf(r.system, "%s: starting\n", name)
		t0 := time.Now()
		code, err := r.runAux(ctx, p.Component, pdir)
		r.timing("processor", t0, p.Component.ID)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if code != 0 {
			return &ProcessorError{Name: name, Code: code}
		}
		// Its output is the next step's input.
		dest := filepath.Join(dataDir, "in")
		if stage == "after" {
			dest = filepath.Join(dataDir, "out")
		}
		if err := datadir.Check(pdir, "out", r.m.cfg.OutputLimits); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := os.Rename(filepath.Join(pdir, "out"), dest); err != nil {
			return err
		}
		// As Keboola's moveOutputToInput: the next image finds tables, files (and in/user)
		// again, and the whole folder is its own to write: the inputs are a copy.
		subs := []string{"tables", "files"}
		if stage == "before" {
			subs = append(subs, "user")
		}
		for _, sub := range subs {
			if err := os.MkdirAll(filepath.Join(dest, sub), 0o755); err != nil {
				return err
			}
		}
		if err := chownTree(dest, r.m.cfg.User); err != nil {
			return err
		}
		os.RemoveAll(pdir)
	}
	return nil
}

// ProcessorError is a processor that exited non-zero.
type ProcessorError struct {
	Name string
	Code int
}

func (e *ProcessorError) Error() string {
	return fmt.Sprintf("%s failed with exit code %d", e.Name, e.Code)
}

// processorTask is a processor's container over dir: the job's confinement and the common
// interface, but run as itself. Its limits and network are its own definition's (network none
// unless it asks for one the admin allows), and it never gets the caller's token, whatever the
// main component or the processor's definition say about forward_token.
func (r *run) processorTask(comp spec.Component, dir string) (runtime.TaskSpec, error) {
	m := r.m
	if err := m.cfg.checkNetwork(comp.Network); err != nil {
		return runtime.TaskSpec{}, err
	}
	if _, err := m.cfg.effectiveLimits(comp.Limits); err != nil {
		return runtime.TaskSpec{}, err
	}
	b := spec.Block{Name: comp.ID, Language: spec.LangShell, Image: comp.Image, Limits: comp.Limits, Network: comp.Network}
	t := TaskFor(m.cfg, b, comp.Image, r.j.ID, dir, dir)
	t.Cmd = nil
	t.WorkingDir = ""
	t.Mounts = []runtime.Mount{{Source: dir, Target: DataDir}}
	project := m.cfg.ProjectID
	if project == "" {
		project = "berth"
	}
	cr := r.j.Component
	t.Env["KBC_DATADIR"] = DataDir + "/"
	t.Env["KBC_RUNID"] = r.j.ID
	t.Env["KBC_PROJECTID"] = project
	t.Env["KBC_CONFIGID"] = cr.Config.ID
	t.Env["KBC_COMPONENTID"] = comp.ID
	t.Env["BERTH_COMPONENT_ID"] = comp.ID
	t.Env["BERTH_CONFIG_ID"] = cr.Config.ID
	delete(t.Env, "PYTHONDONTWRITEBYTECODE")
	return t, nil
}

// runAux runs one more container of this job (a processor) over dir, as itself (see
// processorTask), and returns its exit code. Its output joins the job's.
func (r *run) runAux(ctx context.Context, comp spec.Component, dir string) (int, error) {
	m := r.m
	t, err := r.processorTask(comp, dir)
	if err != nil {
		return 0, err
	}
	lim, err := m.cfg.effectiveLimits(comp.Limits)
	if err != nil {
		return 0, err
	}
	r.measureDiskBase()
	id, err := m.rt.Start(ctx, t)
	if err != nil {
		if id != "" {
			m.rt.Remove(context.WithoutCancel(ctx), id)
		}
		return 0, err
	}
	defer m.rt.Remove(context.WithoutCancel(ctx), id)
	stdout := newStreamWriter("stdout", r.out, r.redact)
	stderr := newStreamWriter("stderr", r.out, r.redact)
	wctx, cancel := context.WithTimeout(ctx, time.Duration(lim.Timeout))
	defer cancel()
	// The job's /data cap holds across its processors; a processor may ask for less.
	diskCap := int64(lim.Disk)
	if jl, err := m.cfg.effectiveLimits(r.j.Block.Limits); err == nil && (diskCap <= 0 || (jl.Disk > 0 && int64(jl.Disk) < diskCap)) {
		diskCap = int64(jl.Disk)
	}
	dw := r.watchDisk(id, diskCap)
	ex, err := m.rt.Wait(wctx, id)
	overCap := dw.stop()
	m.rt.Logs(context.WithoutCancel(ctx), id, false, stdout, stderr)
	stdout.Flush()
	stderr.Flush()
	if overCap {
		return 0, &DiskLimitError{Message: dw.message()}
	}
	if err != nil {
		return 0, fmt.Errorf("wait: %w", err)
	}
	return ex.Code, nil
}
