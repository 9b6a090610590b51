package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/spec"
	"github.com/berthproject/berth/internal/store"
)

func newProjectCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "project",
		Short: "Create and list projects and set their quotas (on the server's machine, in its --data-dir)",
		Long: `A project is a team's space: it owns jobs, configurations, storage, services, entities and
tokens, and its quotas cap how many of its jobs run at once and how much it stores (0: no
limit). The "default" project exists from the start. Over the API an admin does the same with
POST /api/v1/projects and PATCH /api/v1/projects/ID.`,
	}
	var maxJobs int
	var maxStorage, format string
	create := &cobra.Command{
		Use:     "create ID [--max-concurrent-jobs N] [--max-storage 10GB]",
		Short:   "Create a project",
		Example: "  berth project create analytics --max-concurrent-jobs 4 --max-storage 50GB",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := store.Project{ID: args[0], MaxConcurrentJobs: maxJobs}
			if err := store.ValidProjectID(p.ID); err != nil {
				return withCode(ExitUsage, err)
			}
			if maxJobs < 0 {
				return withCode(ExitUsage, errors.New("--max-concurrent-jobs: a number of jobs, 0 for no limit"))
			}
			var err error
			if p.MaxStorageBytes, err = parseStorageQuota(maxStorage); err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), g.dataDir)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			defer st.Close()
			if err := st.CreateProject(cmd.Context(), p); errors.Is(err, store.ErrConflict) {
				return withCode(ExitUsage, fmt.Errorf("project %q exists (berth project set %s changes its quotas)", p.ID, p.ID))
			} else if err != nil {
				return withCode(ExitFailure, err)
			}
			fmt.Fprintf(g.stdout, "created project %s\n", p.ID)
			return nil
		},
	}
	create.Flags().IntVar(&maxJobs, "max-concurrent-jobs", 0, "the project's jobs that may run at once (0: no limit)")
	create.Flags().StringVar(&maxStorage, "max-storage", "0", "most the project may store, e.g. 500MB, 10GB (0: no limit)")

	var setJobs int
	var setStorage string
	set := &cobra.Command{
		Use:     "set ID [--max-concurrent-jobs N] [--max-storage SIZE]",
		Short:   "Change a project's quotas; a flag left out leaves its quota as it is",
		Example: "  berth project set analytics --max-storage 100GB",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var jobs *int
			var bytes *int64
			if cmd.Flags().Changed("max-concurrent-jobs") {
				if setJobs < 0 {
					return withCode(ExitUsage, errors.New("--max-concurrent-jobs: a number of jobs, 0 for no limit"))
				}
				jobs = &setJobs
			}
			if cmd.Flags().Changed("max-storage") {
				n, err := parseStorageQuota(setStorage)
				if err != nil {
					return err
				}
				bytes = &n
			}
			if jobs == nil && bytes == nil {
				return withCode(ExitUsage, errors.New("nothing to set: give --max-concurrent-jobs or --max-storage"))
			}
			st, err := openStore(cmd.Context(), g.dataDir)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			defer st.Close()
			if err := st.SetProjectQuotas(cmd.Context(), args[0], jobs, bytes); errors.Is(err, store.ErrNotFound) {
				return withCode(ExitUsage, fmt.Errorf("no project %q (berth project list shows them)", args[0]))
			} else if err != nil {
				return withCode(ExitFailure, err)
			}
			fmt.Fprintf(g.stdout, "set the quotas of project %s\n", args[0])
			return nil
		},
	}
	set.Flags().IntVar(&setJobs, "max-concurrent-jobs", 0, "the project's jobs that may run at once (0: no limit)")
	set.Flags().StringVar(&setStorage, "max-storage", "", "most the project may store, e.g. 500MB, 10GB (0: no limit)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List projects and their quotas",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openStore(cmd.Context(), g.dataDir)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			defer st.Close()
			ps, err := st.ListProjects(cmd.Context())
			if err != nil {
				return withCode(ExitFailure, err)
			}
			if ps == nil {
				ps = []store.Project{}
			}
			return printOut(g.stdout, format, ps, func(w io.Writer) error {
				tb := newTable(w, "ID", "MAX JOBS", "MAX STORAGE", "CREATED")
				for _, p := range ps {
					jobs, size := "-", "-"
					if p.MaxConcurrentJobs > 0 {
						jobs = strconv.Itoa(p.MaxConcurrentJobs)
					}
					if p.MaxStorageBytes > 0 {
						size = humanBytes(p.MaxStorageBytes)
					}
					tb.row(p.ID, jobs, size, humanTime(p.CreatedAt))
				}
				return tb.flush()
			})
		},
	}
	registerOutput(list, &format)
	cmd.AddCommand(create, list, set)
	return cmd
}

// parseStorageQuota reads --max-storage: a size such as 10GB, or 0 for no limit.
func parseStorageQuota(s string) (int64, error) {
	n, err := spec.ParseByteSize(s)
	if err != nil {
		return 0, withCode(ExitUsage, fmt.Errorf("--max-storage: %w", err))
	}
	return int64(n), nil
}
