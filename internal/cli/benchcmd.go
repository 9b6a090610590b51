package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/berthproject/berth/internal/bench"
)

func newBenchCmd(g *globals) *cobra.Command {
	cfg := bench.DefaultConfig()
	scfg := bench.DefaultServiceConfig()
	servicesOnly, tablesOnly := false, false
	procs := envInt("BERTH_GOMAXPROCS", 0)
	tcfg := bench.DefaultTableConfig()
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure berth's overhead against raw engine calls in the same run",
		Long: `Run berth's benchmarks side by side with their baselines and print the figures last:

  P1 job_overhead_ratio   p50 of a trivial shell job through berth's whole pipeline (store,
                          workspace, image ensure, container, logs, cleanup) over p50 of raw
                          Engine API create+start+wait+remove with the same image and security
  P3 cache_hit_p99_ms     p99 of "ensure generated image" for an already-built dependency set
  P4 cold_start_ratio     first byte through the proxy of an on-demand service stopped for
                          idleness (as berth stops them), over docker start + app ready + first
                          byte measured directly
  P5 proxy_added_*_ms     what berth adds to HTTP keep-alive requests (p50, p99) and to
                          WebSocket echoes (p50), against the container's own address; every
                          request carries a bearer token, as real clients' do
  P5 cookie_added_*_ms    the same with a browser session cookie (from POST /signin)
  P5 proxy_rps_vs_nginx_c1, _c32
                          requests per second wrk gets through berth's proxy over those it gets
                          through nginx (keep-alive upstream) in front of the same container,
                          at 1 and 32 connections, same run; the raw figures are printed beside
  P5 cpu_us_per_request_* the CPU time berth's process and nginx's processes spent per request
                          in those runs (the least of the rounds): steadier than requests per
                          second on a machine that other work shares
  P8 table_load_ratio     a generated 1,000,000-row CSV (4 columns, about 32 MB) streamed into a
                          new table through the storage package, over the sqlite3 CLI's .import
                          of the same file (--table-rows scales it for quick runs)
  P8 incremental_ratio    a file of the same size loaded incrementally with a primary key into
                          that table (half the keys new), over sqlite3's .import of that file

berth's side is the server's own handler stack (API, token check, proxy) on loopback.
Needs the shell and python base images (berth runtime bootstrap shell python), and wrk and
nginx (and sqlite3 for P8) from Debian's packages (scripts/bench-prereqs.sh; make bench runs
it). --tables-only runs P8 alone, without the container engine.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if tablesOnly {
				dir, err := os.MkdirTemp("", "berth-bench-")
				if err != nil {
					return withCode(ExitFailure, err)
				}
				defer os.RemoveAll(dir)
				tres, err := bench.RunTables(cmd.Context(), tcfg, dir, g.stderr)
				if err != nil {
					return withCode(ExitFailure, fmt.Errorf("bench tables: %w", err))
				}
				bench.PrintTables(g.stdout, tres)
				return nil
			}
			// As berth server does: the proxy is measured as it serves. nginx gets as many
			// workers.
			setProcs(procs)
			eng, err := openEngine(cmd.Context(), "bench")
			if err != nil {
				return withCode(ExitFailure, err)
			}
			defer eng.Close()
			dir, err := os.MkdirTemp("", "berth-bench-")
			if err != nil {
				return withCode(ExitFailure, err)
			}
			defer os.RemoveAll(dir)
			var res bench.Result
			if !servicesOnly {
				if res, err = bench.Run(cmd.Context(), eng, cfg, dir, g.stderr); err != nil {
					return withCode(ExitFailure, fmt.Errorf("bench: %w", err))
				}
			}
			sres, err := bench.RunServices(cmd.Context(), eng, scfg, dir, g.stderr)
			if err != nil {
				return withCode(ExitFailure, fmt.Errorf("bench services: %w", err))
			}
			var tres bench.TableResult
			if !servicesOnly {
				if tres, err = bench.RunTables(cmd.Context(), tcfg, dir, g.stderr); err != nil {
					return withCode(ExitFailure, fmt.Errorf("bench tables: %w", err))
				}
				bench.Print(g.stdout, res)
			}
			bench.PrintServices(g.stdout, sres)
			if !servicesOnly {
				bench.PrintTables(g.stdout, tres)
			}
			if sres.CookieErr != nil {
				return withCode(ExitFailure, fmt.Errorf("bench: P5 session cookie: %w", sres.CookieErr))
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&procs, "gomaxprocs", procs, "as berth server's --gomaxprocs (env BERTH_GOMAXPROCS)")
	cmd.Flags().BoolVar(&servicesOnly, "services-only", false, "run only P4 and P5")
	cmd.Flags().BoolVar(&tablesOnly, "tables-only", false, "run only P8 (no container engine needed)")
	cmd.Flags().IntVar(&tcfg.Rows, "table-rows", tcfg.Rows, "P8: rows of the generated CSV (scale down for quick runs)")
	cmd.Flags().IntVar(&tcfg.Rounds, "table-rounds", tcfg.Rounds, "P8: rounds on each side; each keeps its best")
	cmd.Flags().IntVar(&cfg.Jobs, "jobs", cfg.Jobs, "P1: sequential jobs on each side")
	cmd.Flags().IntVar(&cfg.EnsureCalls, "ensures", cfg.EnsureCalls, "P3: timed ensure calls")
	cmd.Flags().IntVar(&scfg.ColdRounds, "cold-starts", scfg.ColdRounds, "P4: cold starts on each side")
	cmd.Flags().IntVar(&scfg.Requests, "requests", scfg.Requests, "P5: HTTP requests on each side")
	cmd.Flags().IntVar(&scfg.WSMessages, "ws-messages", scfg.WSMessages, "P5: WebSocket echoes on each side")
	cmd.Flags().StringVar(&scfg.Dir, "service-dir", scfg.Dir, "P4/P5: the service folder to measure")
	cmd.Flags().DurationVar(&scfg.WrkDuration, "wrk-duration", scfg.WrkDuration, "P5: length of each wrk run (whole seconds)")
	cmd.Flags().IntVar(&scfg.WrkRounds, "wrk-rounds", scfg.WrkRounds, "P5: wrk rounds; each side keeps its best")
	cmd.Flags().BoolVar(&scfg.WrkOff, "no-wrk", false, "P5: skip the wrk comparison with nginx")
	cmd.Flags().StringVar(&scfg.CPUProfile, "proxy-cpuprofile", "", "P5: write a CPU profile of berth's proxy under wrk to this file")
	return cmd
}
