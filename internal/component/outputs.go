package component

import (
	"context"
	"errors"
	"fmt"

	"github.com/berthproject/berth/internal/datadir"
	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/runtime"
	"github.com/berthproject/berth/internal/storage"
	"github.com/berthproject/berth/internal/store"
)

// outputMapping loads the component's outputs into storage and saves its state, all in one
// transaction: a malformed output or a state conflict loads nothing. With ok false (the
// component failed) only write_always tables are loaded and the state is kept, as on Keboola.
// missing is Keboola's message for mapped sources the component did not write: then too only
// the write_always tables are loaded, and the job fails with it as a user error.
func (r *run) outputMapping(ctx context.Context, dataDir string, ok bool) (missing string, err error) {
	st := r.e.cfg.Storage
	cr := r.j.Component
	outs, err := datadir.ReadOutputs(dataDir, r.rowCfg.Storage.Output, r.cfg.OutputLimits)
	if err != nil {
		return "", err
	}
	for _, w := range outs.Warnings {
		fmt.Fprintln(r.System(), w)
	}
	if ok && outs.Missing != "" {
		missing, ok = outs.Missing, false
	}
	// The outputs' CSVs stream into the table engine inside one transaction (storage.Tx): a
	// malformed table anywhere rolls back every table loaded before it.
	// Each table is spooled and checked before the transaction begins (nothing is held open
	// while a large output is read), then streams into the table engine inside one
	// transaction: a table failing to load rolls back every table loaded before it.
	type loaded struct {
		t   datadir.OutTable
		csv *storage.PreparedCSV
		n   int
	}
	var load []loaded
	defer func() {
		for _, l := range load {
			l.csv.Close()
		}
	}()
	for _, t := range outs.Tables {
		if !ok && !t.WriteAlways {
			continue
		}
		bucket, _, err := storage.SplitTableID(t.Destination)
		if err != nil {
			return "", &datadir.Error{File: "out/tables/" + t.Source, Message: err.Error()}
		}
		if err := r.mayWrite(bucket); err != nil {
			return "", &datadir.Error{File: "out/tables/" + t.Source, Message: err.Error()}
		}
		c, err := st.PrepareCSV(ctx, t.Data, t.Columns)
		if err != nil {
			return "", &datadir.Error{File: "out/tables/" + t.Source, Message: err.Error()}
		}
		load = append(load, loaded{t: t, csv: c})
	}
	tx, err := st.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	// Everything goes into the job's project, within its storage quota.
	project := r.project()
	usage, err := st.ProjectUsage(ctx, tx, project)
	if err != nil {
		return "", err
	}
	for i, p := range load {
		n, err := st.LoadPrepared(ctx, tx, p.t.Destination, p.csv, storage.LoadOptions{
			Project: project, Incremental: p.t.Incremental, PrimaryKey: p.t.PrimaryKey, Columns: p.t.Columns,
			DeleteWhereColumn: p.t.DeleteWhere, DeleteWhereValues: p.t.DeleteVals, DeleteWhereOperator: p.t.DeleteOp,
			Metadata: p.t.Metadata, ColumnMetadata: p.t.ColumnMetadata, MetadataProvider: cr.Component.ID,
		})
		if err != nil {
			return "", &datadir.Error{File: "out/tables/" + p.t.Source, Message: err.Error()}
		}
		load[i].n = n
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
			sf.SetAttributes(storage.FileAttributes{IsPermanent: f.IsPermanent, IsPublic: f.IsPublic, Notify: f.Notify})
			sf.SetProject(project)
			staged = append(staged, sf)
			if _, err := sf.Commit(ctx, tx); err != nil {
				return "", err
			}
		}
	}
	if err := st.CheckQuota(ctx, tx, project, usage); err != nil {
		return "", err
	}
	if ok {
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
		fmt.Fprintf(r.System(), "output: %s -> table %s (%d rows", p.t.Source, p.t.Destination, p.n)
		if p.t.Incremental {
			fmt.Fprint(r.System(), ", incremental")
		}
		fmt.Fprintln(r.System(), ")")
	}
	if ok {
		fmt.Fprintf(r.System(), "output: %d file(s); state saved\n", len(outs.Files))
	}
	return missing, nil
}

// mappingFailed ends a component job whose outputs could not be loaded.
func (r *run) mappingFailed(err error, exit runtime.Exit) {
	var de *datadir.Error
	var qe *storage.QuotaError
	code := exit.Code
	switch {
	case errors.As(err, &qe):
		r.End(job.StateFailed, job.ReasonUserError, "output mapping: "+qe.Error()+" (nothing of this job was loaded)", &code)
	case errors.Is(err, store.ErrStateConflict):
		r.End(job.StateFailed, job.ReasonUserError, err.Error(), &code)
	case errors.As(err, &de):
		r.End(job.StateFailed, job.ReasonUserError, "output mapping: "+de.Error()+" (nothing of this job was loaded)", &code)
	default:
		r.End(job.StateFailed, job.ReasonInternal, "output mapping: "+err.Error(), &code)
	}
}
