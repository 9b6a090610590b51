package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/job"
	"github.com/berthproject/berth/internal/spec"
)

func newJobCmd(g *globals) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Submit and follow jobs on a berth server",
		Long: `Talk to a running berth server (see berth server). The server and token come from
--server and --token, else BERTH_SERVER and BERTH_TOKEN, else the current context of
berth login; on the server's own machine the admin token file in --data-dir is used when no
token is given.`,
	}
	cf.register(cmd)
	cmd.AddCommand(newJobSubmitCmd(g, &cf), newJobListCmd(g, &cf), newJobGetCmd(g, &cf),
		newJobLogsCmd(g, &cf), newJobCancelCmd(g, &cf), newJobOutputsCmd(g, &cf),
		newDeleteCmd(g, &cf, "ID", "Delete an ended job: its workspace, kept outputs, stored output and record", "/api/v1/jobs/",
			"cancel a queued or running job first, then delete it"))
	return cmd
}

// submitRequest is the body of POST /api/v1/jobs.
type submitRequest struct {
	Spec     string            `json:"spec"`
	Filename string            `json:"filename"`
	Files    map[string]string `json:"files,omitempty"`
}

func newJobSubmitCmd(g *globals, cf *clientFlags) *cobra.Command {
	var wait bool
	var out *string
	cmd := &cobra.Command{
		Use:   "submit SPEC",
		Short: "Submit a block to the server (its script file is sent along)",
		Example: `  berth job submit examples/shell-hello/block.yaml
  berth job submit --wait examples/python-csv/block.yaml   # follow the output, exit with the job's code`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			raw, files, err := readSpecFiles(args[0])
			if err != nil {
				return err
			}
			req := submitRequest{Spec: string(raw), Filename: filepath.Base(args[0]), Files: map[string]string{}}
			for k, v := range files {
				req.Files[k] = string(v)
			}
			var j job.Job
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/jobs", req, &j); err != nil {
				return err
			}
			if !wait && *out == "" {
				return printOut(g.stdout, cf.output, j, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, j.ID)
					return err
				})
			}
			fmt.Fprintf(g.stderr, "berth: job %s queued\n", j.ID)
			final, err := c.followLogs(cmd.Context(), j.ID, func(ch job.LogChunk) { printChunk(g.stdout, g.stderr, ch) })
			if err != nil {
				return err
			}
			if cf.output == formatTable {
				printSummary(g.stderr, serverJob(final))
			} else if err := printOut(g.stdout, cf.output, final, nil); err != nil {
				return err
			}
			if *out != "" {
				if err := c.fetchSubmitOutputs(cmd.Context(), g, final, *out); err != nil {
					return err
				}
			}
			return jobExit(final)
		},
	}
	cmd.Flags().BoolVarP(&wait, "wait", "w", false, "follow the job's output and exit with its code")
	out = submitOut(cmd)
	return cmd
}

// readSpecFiles reads a spec and the script it names (validated locally first, so a bad spec
// fails before anything is sent).
func readSpecFiles(path string) ([]byte, map[string][]byte, error) {
	b, files, err := spec.LoadBlock(path)
	if err != nil {
		return nil, nil, withCode(ExitUsage, err)
	}
	_ = b
	raw, err := readFile(path)
	if err != nil {
		return nil, nil, withCode(ExitUsage, err)
	}
	return raw, files, nil
}

func newJobListCmd(g *globals, cf *clientFlags) *cobra.Command {
	var state, project string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			q := url.Values{}
			if state != "" {
				q.Set("state", state)
			}
			if project != "" {
				q.Set("project", project)
			}
			q.Set("limit", strconv.Itoa(limit))
			var out struct {
				Jobs []job.Job `json:"jobs"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/jobs?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			return printOut(g.stdout, cf.output, out.Jobs, func(w io.Writer) error {
				t := newTable(w, "ID", "PROJECT", "NAME", "STATE", "REASON", "CREATED", "DURATION")
				for _, j := range out.Jobs {
					t.row(j.ID, j.Project, j.Name, string(j.State), string(j.Reason), humanTime(j.CreatedAt), jobDuration(j))
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only jobs in this state (queued, running, succeeded, failed, ...)")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many jobs")
	cmd.Flags().StringVar(&project, "project", "", "only this project's jobs (an admin's token sees every project's; others see their own project's)")
	return cmd
}

func newJobGetCmd(g *globals, cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show one job: state, reason, image, timings",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			var j job.Job
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/jobs/"+url.PathEscape(args[0]), nil, &j); err != nil {
				return err
			}
			return printOut(g.stdout, cf.output, j, func(w io.Writer) error {
				printSummary(w, serverJob(j))
				return nil
			})
		},
	}
}

func newJobLogsCmd(g *globals, cf *clientFlags) *cobra.Command {
	var follow bool
	var win logWindowFlags
	cmd := &cobra.Command{
		Use:   "logs ID",
		Short: "Print a job's output (stdout to stdout, stderr and berth's lines to stderr)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			if cf.output == formatYAML {
				return withCode(ExitUsage, fmt.Errorf("--output (-o): yaml is not allowed for logs; use table or json (one JSON object a line)"))
			}
			id := url.PathEscape(args[0])
			q, err := win.query()
			if err != nil {
				return err
			}
			if follow {
				_, err := c.followLogsQuery(cmd.Context(), id, q, func(ch job.LogChunk) {
					if cf.output == "json" {
						printJSONLine(g.stdout, ch)
						return
					}
					printChunk(g.stdout, g.stderr, ch)
				})
				return err
			}
			var out struct {
				Chunks []job.LogChunk `json:"chunks"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/jobs/"+id+"/logs"+strings.Replace(q, "&", "?", 1), nil, &out); err != nil {
				return err
			}
			for _, ch := range out.Chunks {
				if cf.output == "json" {
					printJSONLine(g.stdout, ch)
					continue
				}
				printChunk(g.stdout, g.stderr, ch)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the job ends")
	win.register(cmd, "the script's lines (stdout and stderr together); berth's own lines among them are kept")
	return cmd
}

func newJobCancelCmd(g *globals, cf *clientFlags) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a queued or running job (its container is stopped and removed)",
		Long: `Cancel a job. A queued job ends cancelled at once; a started one is cancelling until
its container is stopped (after the server's stop grace) and removed, then cancelled. The
answer is the job's state at that moment; --wait waits for its end and prints it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client(g)
			if err != nil {
				return err
			}
			var j job.Job
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/jobs/"+url.PathEscape(args[0])+"/cancel", nil, &j); err != nil {
				return err
			}
			if wait && !j.State.Terminal() {
				if j, err = c.waitJob(cmd.Context(), j.ID); err != nil {
					return err
				}
			}
			err = printOut(g.stdout, cf.output, j, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s %s\n", j.ID, j.State)
				return err
			})
			if err != nil || !wait || j.State == job.StateCancelled {
				return err
			}
			// It ended otherwise before the cancel took: say how, by its exit code.
			return jobExit(j)
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the job has ended (its container is gone) and print its end")
	return cmd
}

// waitJob polls the job until it has ended.
func (c *client) waitJob(ctx context.Context, id string) (job.Job, error) {
	for {
		var j job.Job
		if err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id), nil, &j); err != nil {
			return j, err
		}
		if j.State.Terminal() {
			return j, nil
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// jobExit maps a finished job to the CLI's exit code.
func jobExit(j job.Job) error {
	switch {
	case j.State == job.StateSucceeded:
		return nil
	case j.State == job.StateCancelled || j.Reason == job.ReasonCancelled:
		return withCode(ExitCancelled, nil)
	}
	switch j.Reason {
	case job.ReasonUserError:
		return withCode(ExitUserError, nil)
	case job.ReasonAppError:
		return withCode(ExitAppError, nil)
	case job.ReasonTimeout:
		return withCode(ExitTimeout, nil)
	case job.ReasonOOM:
		return withCode(ExitOOM, nil)
	case job.ReasonKilled:
		return withCode(ExitKilled, nil)
	case job.ReasonDiskLimit:
		return withCode(ExitDiskLimit, nil)
	}
	return withCode(ExitInternal, nil)
}

func jobDuration(j job.Job) string {
	if j.StartedAt == nil {
		return "-"
	}
	end := time.Now()
	if j.FinishedAt != nil {
		end = *j.FinishedAt
	}
	return fmtDur(end.Sub(*j.StartedAt))
}

// printSummary prints a job's end: state, image (cache hit or built) and where the time went.
func printSummary(w io.Writer, j job.Job) {
	status := string(j.State)
	if j.Reason != "" && j.Reason != job.ReasonCancelled {
		status += " (" + string(j.Reason) + ")"
	}
	fmt.Fprintf(w, "job %s  %s  %s\n", j.ID, j.Name, status)
	if j.Message != "" {
		fmt.Fprintf(w, "  reason:  %s\n", j.Message)
	}
	if j.ExitCode != nil {
		fmt.Fprintf(w, "  exit:    %d\n", *j.ExitCode)
	}
	if j.Image != "" {
		how := "built by this job"
		if j.ImageCacheHit {
			how = "cache hit, no build"
		}
		fmt.Fprintf(w, "  image:   %s (%s)\n", j.Image, how)
	}
	if len(j.Timings) > 0 {
		fmt.Fprint(w, "  stages: ")
		var total time.Duration
		for _, t := range j.Timings {
			d := time.Duration(t.DurationMS * float64(time.Millisecond))
			total += d
			more := ""
			if t.InProgress {
				more = "…" // still going: its time so far
			}
			fmt.Fprintf(w, " %s %s%s", t.Stage, fmtDur(d), more)
		}
		fmt.Fprintf(w, "  (total %s)\n", fmtDur(total))
	}
	if len(j.Attempts) > 1 {
		fmt.Fprintf(w, "  attempts: %d\n", len(j.Attempts))
		for _, a := range j.Attempts {
			status := string(a.State)
			if a.Reason != "" {
				status += " (" + string(a.Reason) + ")"
			}
			took := "-"
			if a.FinishedAt != nil {
				took = fmtDur(a.FinishedAt.Sub(a.StartedAt))
			}
			fmt.Fprintf(w, "    %d  %s  %s  %s", a.Number, a.StartedAt.Local().Format("15:04:05"), took, status)
			if a.Message != "" && a.State != job.StateSucceeded {
				fmt.Fprintf(w, "  %s", a.Message)
			}
			fmt.Fprintln(w)
		}
	}
	if j.OutputDir != "" {
		fmt.Fprintf(w, "  outputs: %s\n", j.OutputDir)
	}
}
